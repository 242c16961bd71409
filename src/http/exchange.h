#pragma once
// One HTTP request and the way back to its client, independent of the HTTP library: the routes
// (routes_*.cpp) see only these types, the connection (connection.cpp) implements Exchange with
// Boost.Beast.

#include "common/status.h"
#include "http/json_body.h"

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kvs::http {

struct HttpRequest {
    std::string method;                        // "GET", "POST", ...
    std::string path;                          // without the query string
    std::map<std::string, std::string> query;  // decoded query parameters
    std::string authorization;                 // the Authorization header, as sent
    std::string body;
    bool loopback = false;  // the client connected from a loopback address
};

struct HttpResponse {
    unsigned status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
};

// The way back to the client of one request. Every method may be called from any thread: the
// connection serializes them on its own executor. Exactly one of Reply or BeginStream is used.
class Exchange {
public:
    virtual ~Exchange() = default;

    // A whole response; the connection then reads the next request (keep-alive) or closes.
    virtual void Reply(HttpResponse response) = 0;

    // Starts a server-sent event stream (status 200, text/event-stream, no length: the stream
    // ends when the connection closes). Then Write queues chunks in order; End closes after the
    // queued chunks are written.
    virtual void BeginStream() = 0;
    virtual void Write(std::string chunk) = 0;
    virtual void End() = 0;

    // Pull mode for event subscriptions: the connection calls `next` whenever it has nothing left
    // to write, until it returns nothing; Wake() says more may be available. A slow client thus
    // leaves events in the (bounded) source instead of in the connection.
    virtual void Pull(std::function<std::optional<std::string>()> next) = 0;
    virtual void Wake() = 0;

    // Runs `work` on the connection's executor (an HTTP I/O thread), in order with the calls
    // before it. Replies from the engine or the store render their JSON there: those threads
    // only hand results over (common/thread_role.h; DumpJson checks it).
    virtual void Post(std::function<void()> work) = 0;

    // `on_close` runs once, on the connection's executor, when the client goes away while a
    // stream is open (a streamed query cancels its work there).
    virtual void OnClose(std::function<void()> on_close) = 0;
};

using ExchangePtr = std::shared_ptr<Exchange>;

// The HTTP status for a Status code (400, 404, 409, 413, 429, 503, 500).
unsigned HttpStatusFor(StatusCode code);

// {"error": {"code": ..., "message": ..., "type": ...}} with the status for `status`'s code;
// 429 and 503 carry Retry-After.
HttpResponse ErrorResponse(const Status& status);

// The same for a status and code name chosen by the HTTP layer (401, 404 route, 405, 501, ...).
HttpResponse ErrorResponse(unsigned http_status,
                           const std::string& code,
                           const std::string& message);

// The error object alone, as one line of JSON (for an SSE `error` event).
std::string ErrorJson(const Status& status);

// A JSON body (already serialized) with a status.
HttpResponse JsonResponse(unsigned http_status, std::string json);

// Compact JSON text; invalid UTF-8 in strings is replaced, never thrown.
std::string DumpJson(const Json& value);

// One server-sent event: "event: <name>\ndata: <json>\n\n" (no event line for an empty name).
std::string SseEvent(const std::string& name, const std::string& json);

}  // namespace kvs::http
