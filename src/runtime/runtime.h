#pragma once
// The runtime: an Engine on its own engine thread. Other threads talk to it only through a
// bounded queue of typed commands and get their answers back as futures.
//
// Thread-safety: every public method may be called from any thread and never waits for the
// engine: it queues a command and returns a future. When the queue is full the future is ready
// at once with kResourceExhausted ("retry"). The engine thread alone touches the Engine (and so
// libllama); between steps it drains the queue, then runs one Step() when there is work.
//
// Tenants: every call names its tenant. A session belongs to the tenant that created it;
// another tenant gets kNotFound, exactly as for a session that does not exist. Per-tenant
// limits bound sessions and queued queries (kResourceExhausted).

#include "runtime/engine.h"

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

    std::future<Result<SessionId>> CreateSession(TenantId tenant, SessionOptions options);
    std::future<Status> CloseSession(TenantId tenant, SessionId id);
    std::future<Result<SessionInfo>> Info(TenantId tenant, SessionId id);

    // Ready once the append is accepted and queued (not yet in the KV cache): the result says
    // which session version the data will produce.
    std::future<Result<AppendResult>> Append(TenantId tenant, SessionId id, std::string text);

    // Ready once the data is in the KV cache (`wait: true`).
    std::future<Result<AppendResult>> AppendAndWait(TenantId tenant,
                                                    SessionId id,
                                                    std::string text);

    std::future<Result<Answer>> Query(TenantId tenant, SessionId id, QueryOptions options);

    // A stateless request: the prompt's tokens (with BOS) + question, from scratch.
    std::future<Result<Answer>> Stateless(TenantId tenant,
                                          std::string prompt,
                                          QueryOptions options);

    // The engine's metrics as a table (for people) or Prometheus text. Any thread.
    std::string MetricsTable();
    std::string MetricsPrometheus();

private:
    struct State;  // everything the engine thread owns
    using Command = std::function<void(State&)>;

    explicit Runtime(const RuntimeOptions& options);
    void EngineThread(std::promise<Status> ready);
    bool Enqueue(Command command);

    template <typename T>
    std::future<T> Submit(std::function<void(State&, std::promise<T>&)> work, T busy_value);

    RuntimeOptions options_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Command> commands_;        // guarded by mu_
    bool stopping_ = false;               // guarded by mu_
    MetricsRegistry* metrics_ = nullptr;  // the engine's; set before Start returns
    std::thread thread_;
};

}  // namespace kvs
