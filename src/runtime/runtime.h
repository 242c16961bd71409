#pragma once
// The runtime: an Engine on its own engine thread. Other threads talk to it only through a
// bounded queue of typed commands and get their answers back as futures.
//
// Thread-safety: every public method may be called from any thread and never waits for the
// engine: it queues a command and returns a future. When the queue is full the future is ready
// at once with kResourceExhausted ("retry"). The engine thread alone touches the Engine (and so
// libllama); between steps it drains the queue, then runs one Step() when there is work.
//
// Flash queries: a query for a registered question whose cached result qualifies is answered
// on the caller's thread from the flash board (query/flash_board.h), without waiting for the
// engine thread, so a cached hit takes microseconds even while a long step runs. Subscriptions
// (runtime/event_hub.h) deliver a session's events: data ingested, flash answers, parked,
// restored, closed.
//
// Tenants: every call names its tenant. A session belongs to the tenant that created it;
// another tenant gets kNotFound, exactly as for a session that does not exist. Per-tenant
// limits bound sessions and queued queries (kResourceExhausted).

#include "runtime/engine.h"
#include "runtime/event_hub.h"

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace kvs {

struct TenantLimits {
    int max_sessions = 1024;
    int max_queued_queries = 256;  // queued and running, stateful and stateless
};

struct RuntimeOptions {
    EngineOptions engine;
    std::size_t max_queued_commands = 4096;
    TenantLimits tenant_limits;  // the same for every tenant
};

class Runtime {
public:
    // Starts the engine thread, which loads the model; returns once it is ready or failed.
    static Result<std::unique_ptr<Runtime>> Start(const RuntimeOptions& options);

    // Stops: queued work fails with kAborted, the engine thread finishes its step and exits.
    ~Runtime();
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    // Every call comes in two forms. The callback form runs `reply` exactly once: on the engine
    // thread, or on the caller's thread when the call is refused at once or answered from the
    // flash cache. A reply must be quick and must not wait for the Runtime (an HTTP server posts
    // the result to its event loop). The future form wraps it.
    template <typename T>
    using Reply = std::function<void(T)>;

    void CreateSession(TenantId tenant, SessionOptions options, Reply<Result<SessionId>> reply);
    void CloseSession(TenantId tenant, SessionId id, Reply<Status> reply);
    void Info(TenantId tenant, SessionId id, Reply<Result<SessionInfo>> reply);
    // The tenant's sessions, in id order.
    void ListSessions(TenantId tenant, Reply<Result<std::vector<SessionInfo>>> reply);
    // `wait` false: replies once the append is accepted and queued (the result says which
    // version the data will produce); true: once the data is in the KV cache.
    void Append(TenantId tenant,
                SessionId id,
                std::string text,
                bool wait,
                Reply<Result<AppendResult>> reply);
    void Query(TenantId tenant, SessionId id, QueryOptions options, Reply<Result<Answer>> reply);
    // A stateless request: the prompt's tokens (with BOS) + question, from scratch.
    // `parse_special`: the prompt may hold special-token markup (a rendered chat template).
    void Stateless(TenantId tenant,
                   std::string prompt,
                   QueryOptions options,
                   bool parse_special,
                   Reply<Result<Answer>> reply);
    void AddFlash(TenantId tenant,
                  SessionId id,
                  FlashOptions options,
                  Reply<Result<FlashId>> reply);
    void RemoveFlash(TenantId tenant, SessionId id, FlashId flash, Reply<Status> reply);

    std::future<Result<SessionId>> CreateSession(TenantId tenant, SessionOptions options);
    std::future<Status> CloseSession(TenantId tenant, SessionId id);
    std::future<Result<SessionInfo>> Info(TenantId tenant, SessionId id);
    std::future<Result<AppendResult>> Append(TenantId tenant, SessionId id, std::string text);
    std::future<Result<AppendResult>> AppendAndWait(TenantId tenant,
                                                    SessionId id,
                                                    std::string text);
    std::future<Result<Answer>> Query(TenantId tenant, SessionId id, QueryOptions options);
    std::future<Result<Answer>> Stateless(TenantId tenant,
                                          std::string prompt,
                                          QueryOptions options);

    // Flash questions (query/flash.h): registered, removed, listed with their latest results.
    std::future<Result<FlashId>> AddFlash(TenantId tenant, SessionId id, FlashOptions options);
    std::future<Status> RemoveFlash(TenantId tenant, SessionId id, FlashId flash);
    Result<std::vector<FlashInfo>> ListFlash(TenantId tenant, SessionId id) const;

    // The session's events from now on; kNotFound for another tenant's or an unknown session.
    Result<std::shared_ptr<Subscription>> Subscribe(TenantId tenant,
                                                    SessionId id,
                                                    const SubscribeOptions& options = {});

    // Sends `closed` to every subscriber now (shutdown: before the connections go).
    void CloseSubscriptions() { hub_.CloseAll(); }

    // The engine's metrics as a table (for people) or Prometheus text. Any thread.
    std::string MetricsTable();
    std::string MetricsPrometheus();

    MetricsRegistry& metrics() { return *metrics_; }

    // The loaded model (immutable; tokenizer and chat template reads are safe from any thread).
    const Model& model() const { return *model_; }

private:
    struct State;  // everything the engine thread owns
    using Command = std::function<void(State&)>;

    explicit Runtime(const RuntimeOptions& options);
    void EngineThread(std::promise<Status> ready);
    bool Enqueue(Command command);

    template <typename T>
    // Queues `work`; `reply` gets busy_value when the queue is full. `settled` (optional) runs
    // once the command ran, was refused or met shutdown.
    void Submit(Reply<T> reply,
                std::function<void(State&, Reply<T>&)> work,
                T busy_value,
                std::function<void()> settled = {});

    RuntimeOptions options_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Command> commands_;        // guarded by mu_
    bool stopping_ = false;               // guarded by mu_
    MetricsRegistry* metrics_ = nullptr;  // the engine's; set before Start returns
    FlashBoard* board_ = nullptr;         // the engine's; set before Start returns
    const Model* model_ = nullptr;        // the engine's; set before Start returns
    Counter* fast_hits_ = nullptr;        // kvs_flash_hits_total
    EventHub hub_;
    std::thread thread_;
};

}  // namespace kvs
