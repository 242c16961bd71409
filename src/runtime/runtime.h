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
//
// Durable sessions (DurableOptions::data_dir set; runtime/durable.cpp, docs/architecture.md):
// every session's settings, owner and flash questions and every append are recorded in the
// store (persist/store.h) before they are acknowledged; an append is held in the engine (not
// ingested) until its group commit succeeds, and revoked with kStorage when it fails. Snapshots
// of sessions' KV state are written by a writer thread when a session is parked, periodically,
// and at shutdown. Start restores every stored session: from its snapshot when that is intact
// and made by this model and KV settings, else from its data log, then the log after it.

#include "engine/backend.h"
#include "persist/snapshot_writer.h"
#include "persist/store.h"
#include "runtime/append_desk.h"
#include "runtime/engine.h"
#include "runtime/event_hub.h"

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace kvs {

struct TenantLimits {
    int max_sessions = 1024;
    int max_queued_queries = 256;  // queued and running, stateful and stateless
};

struct DurableOptions {
    std::string data_dir;  // empty: sessions live in memory only
    SyncPolicy sync = SyncPolicy::kFull;
    double snapshot_interval_s = 60;   // a resident session's snapshot is refreshed at most this
    int snapshot_min_tokens = 256;     // often, and once this many tokens came since the last one
    std::int64_t max_store_pages = 0;  // > 0: caps the store's size (tests: a full disk)
    // Tenants are stored by name: a session comes back to the tenant of the same name. Ids not
    // listed are stored as their number; stored names not listed get ids no key maps to.
    std::map<TenantId, std::string> tenant_names;
    // The one budget for session state copied out of the KV cache for snapshots: captures taken
    // while parking, queued for the snapshot writer or being written, and shutdown's. Over it, a
    // capture waits for a later chance (parking, periodic) or for the writer (shutdown); the
    // data log has the data meanwhile. A state larger than the whole budget is captured alone.
    std::size_t snapshot_memory_bytes = std::size_t{256} << 20;
    StoreTestHooks store_test_hooks;  // fault injection for tests (persist/store.h)
    // Tests only (a slow disk): runs on the snapshot writer's thread before each write, with the
    // most bytes it held at once so far.
    std::function<void(std::size_t)> snapshot_test_before_write;
};

struct RuntimeOptions {
    EngineOptions engine;
    DurableOptions durable;
    std::size_t max_queued_commands = 4096;
    TenantLimits tenant_limits;  // the same for every tenant
    // Most tokens a session may have accepted and not yet ingested before appends are refused
    // with kResourceExhausted ("retry"): ingest that cannot keep up pushes back instead of
    // queueing without bound. 0: twice the session's context.
    int max_ingest_backlog_tokens = 0;
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

    // Whether `tenant` has session `id` now (another tenant's session: false); any thread.
    bool Owns(TenantId tenant, SessionId id) const;

    // The session's events from now on; kNotFound for another tenant's or an unknown session.
    Result<std::shared_ptr<Subscription>> Subscribe(TenantId tenant,
                                                    SessionId id,
                                                    const SubscribeOptions& options = {});

    // Sends `closed` to every subscriber now (shutdown: before the connections go).
    void CloseSubscriptions() { hub_.CloseAll(); }

    // The engine's metrics as a table (for people) or Prometheus text (with the CPU backend as
    // kvs_cpu_backend_info{variant, features} 1). Any thread.
    std::string MetricsTable();
    std::string MetricsPrometheus();

    // The CPU backend variant the engine runs and its features (engine/backend.h). Any thread.
    const CpuBackendInfo& cpu_backend() const { return CpuBackend(); }

    MetricsRegistry& metrics() { return *metrics_; }

    // Sessions restored from the data folder at start, with their settings
    // (SessionOptions::settings), in id order.
    const std::vector<std::pair<SessionId, std::string>>& restored() const { return restored_; }

    // One page of the session's data log after `after_version`, in version order, within
    // `limits` (persist/store.h: entries and bytes of text; `more` says a limit cut it). kNotFound
    // for another tenant's or an unknown session, kUnavailable without a data folder: both
    // answered on the caller's thread. Otherwise the read runs on the store's reader thread (its
    // own read-only connection: never on the caller's thread, never waiting for a commit's
    // sync) and `reply` runs there; a read error is kInternal, never a short page.
    void ReadLog(TenantId tenant,
                 SessionId id,
                 std::uint64_t after_version,
                 LogPageLimits limits,
                 Reply<Result<LogPage>> reply) const;
    std::future<Result<LogPage>> ReadLog(TenantId tenant,
                                         SessionId id,
                                         std::uint64_t after_version,
                                         LogPageLimits limits = {}) const;

    // The loaded model (immutable; tokenizer and chat template reads are safe from any thread).
    const Model& model() const { return *model_; }

private:
    struct State;  // everything the engine thread owns
    using Command = std::function<void(State&)>;

    explicit Runtime(const RuntimeOptions& options);
    // The engine thread: opens the engine (and the durable store, restoring its sessions),
    // serves commands and steps until Stop, then saves what changed and answers what waits.
    void EngineThread(std::promise<Status> ready);
    Status OpenEngine(State& state);
    void ServeUntilStopped(State& state);
    std::deque<Command> TakeCommands();
    static void RunCommands(State& state, std::deque<Command> batch, const char* what);
    bool Enqueue(Command command);
    // A follow-up the runtime owes (a store outcome): never refused for a full queue; false
    // only once the engine thread has stopped taking commands.
    bool EnqueueAlways(Command command);

    // Durable sessions (durable.cpp, restore.cpp), on the engine thread.
    class TenantIds;
    struct RestoreTally;
    // Locks and opens the data folder; sets the engine options durable sessions need.
    Status OpenDurable(State& s, EngineOptions& engine_options);
    void StartSnapshots(State& s);
    void FinishDurable(State& s);  // shutdown: the store's last outcomes, then every change saved
    // kStorage when the stored sessions or the highest ids cannot be read (nothing is served).
    Status RestoreSessions(State& s);
    // One stored session; false when it is not restored (the reason is printed).
    bool RestoreSession(State& s, const StoredSession& st, TenantId tenant, RestoreTally& tally);
    void ReplayStored(State& s, const StoredSession& st, const std::vector<LogEntry>& log);
    void SnapshotSessions(State& s, bool all);  // the due ones, or all that changed (shutdown)
    void WriteParkCaptures(State& s);
    // A closed session's snapshot and stored data are deleted; `r` gets the store's outcome.
    void ForgetStored(State& s, SessionId id, Reply<Status> r);
    // On the snapshot writer's thread: metrics, and the engine learns what is on disk.
    void SnapshotDone(MetricsRegistry& m, const SnapshotWritten& w);
    void StoreCreated(State& s,
                      SessionId id,
                      const SessionOptions& o,
                      const Reply<Result<SessionId>>& r);
    // What the store's outcome of an append does: confirm or revoke it in the engine, answer.
    std::function<void(Status)> AppendOutcome(SessionId id,
                                              AppendResult accepted,
                                              bool wait,
                                              std::shared_ptr<Reply<Result<AppendResult>>> reply);

    template <typename T>
    // Queues `work`; `reply` gets busy_value when the queue is full. `settled` (optional) runs
    // once the command ran, was refused or met shutdown.
    void Submit(Reply<T> reply,
                std::function<void(State&, Reply<T>&)> work,
                T busy_value,
                const std::function<void()>& settled = {});

    RuntimeOptions options_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Command> commands_;        // guarded by mu_
    bool stopping_ = false;               // guarded by mu_
    bool engine_done_ = false;            // guarded by mu_: the engine thread takes no commands
    MetricsRegistry* metrics_ = nullptr;  // the engine's; set before Start returns
    FlashBoard* board_ = nullptr;         // the engine's; set before Start returns
    Store* store_ = nullptr;              // the durable store, or null; set before Start returns
    std::vector<std::pair<SessionId, std::string>> restored_;  // set before Start returns
    const Model* model_ = nullptr;  // the engine's; set before Start returns
    Counter* fast_hits_ = nullptr;  // kvs_flash_hits_total
    EventHub hub_;
    AppendDesk desk_;  // admission of appends on the callers' threads
    std::thread thread_;
};

}  // namespace kvs
