#pragma once
// The HTTP API (docs/http_api.md): routes, authentication, request limits and the mapping of
// Runtime results to JSON, server-sent events and status codes. Handle() is the HttpServer's
// handler; it runs on an I/O thread, never waits for the engine (the Runtime replies by
// callback) and answers every request exactly once.

#include "common/metrics.h"
#include "http/auth.h"
#include "http/exchange.h"
#include "http/query_log.h"
#include "http/records.h"
#include "runtime/runtime.h"

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace kvs::http {

struct ApiLimits {
    std::size_t max_body_bytes = std::size_t{1} << 20;
    int max_json_depth = 32;
    std::size_t max_records = 1000;      // per append
    std::size_t max_query_bytes = 8192;  // a question, a prefix line, a prompt message...
    std::size_t max_text_bytes = std::size_t{1} << 20;  // an append's text or a prompt
    int max_tokens = 4096;                              // per answer
    std::size_t event_buffer = 256;                     // events buffered per subscriber
};

class Api {
public:
    Api(ApiLimits limits, ApiKeys keys, MetricsRegistry& http_metrics);

    // Serving starts when the model is loaded (503 "loading" until then); `model_id` is what
    // /v1/models lists and what OpenAI responses name.
    void SetRuntime(Runtime* runtime, std::string model_id);

    // New work answers 503 "shutting down" from now on.
    void SetStopping() { stopping_ = true; }

    void Handle(HttpRequest request, ExchangePtr exchange);

    // Requests admitted and not yet answered (streams count until they end).
    int in_flight() const { return in_flight_; }

    // Open event subscriptions (/events): they never end on their own.
    int event_streams() const { return event_streams_; }

    struct Call;  // one request being served (api.cpp)

private:
    struct Route;    // one row of the route table (api.cpp)
    struct PathIds;  // the ids a route's path names

    // The route table: {method, pattern, access, handler}, in match order (api.cpp).
    static const std::vector<Route>& Routes();
    // Finds the route of the path among those of `is_public` access and runs it, or answers 405
    // (the path matches, the method does not) or 404 (a malformed id). False when no pattern
    // matches the path: nothing is answered then.
    bool Dispatch(Call& c, bool is_public);
    // The dashboard's files; false when the path is none of the dashboard's.
    bool ServeDashboard(Call& c);

    // Routes (api.cpp: /health, /metrics, /v1/models; routes_sessions.cpp, routes_openai.cpp).
    void Health(Call& c);
    void MetricsText(Call& c);
    void CreateSession(Call& c);
    void ListSessions(Call& c);
    void GetSession(Call& c, SessionId id);
    void DeleteSession(Call& c, SessionId id);
    void AppendData(Call& c, SessionId id);
    void ReadData(Call& c, SessionId id);
    void QuerySession(Call& c, SessionId id);
    void AddFlash(Call& c, SessionId id);
    void ListFlash(Call& c, SessionId id);
    void RemoveFlash(Call& c, SessionId id, FlashId flash);
    void Events(Call& c, SessionId id);
    void Completions(Call& c, bool chat);
    void Models(Call& c);
    void RecentQueries(Call& c);

    RecordTemplate TemplateOf(SessionId id);

    ApiLimits limits_;
    ApiKeys keys_;
    MetricsRegistry& metrics_;
    std::atomic<Runtime*> runtime_{nullptr};
    std::string model_id_;
    std::atomic<bool> stopping_{false};
    std::atomic<int> in_flight_{0};
    std::atomic<int> event_streams_{0};
    std::chrono::system_clock::time_point started_ = std::chrono::system_clock::now();
    std::mutex mu_;
    std::map<SessionId, RecordTemplate> templates_;  // guarded by mu_
    // Recent session queries per tenant (the dashboard's latency chart); shared with the
    // callbacks that record into it, which may run after a request's Call is gone.
    std::shared_ptr<QueryLog> query_log_ = std::make_shared<QueryLog>();
};

}  // namespace kvs::http
