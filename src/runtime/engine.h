#pragma once
// The engine: one model and one llama_context serving many sessions, each a KV sequence that is
// advanced as data arrives and answers questions by computing only the question's and the
// answer's tokens.
//
// Thread: single-threaded by contract. Every method runs on the calling thread, which must be the
// same thread for the Engine's whole life (libllama contexts are not thread-safe). The Runtime
// (runtime/runtime.h) runs an Engine on its own engine thread behind bounded command queues.
//
// Two ways to use it:
//   - synchronous: Append / Query / QueryMany / QueryStateless submit work and run steps until
//     it is done (the demo, benchmarks and tests);
//   - stepped: Submit* queue work and return at once; each Step() plans one batch with the
//     scheduler policy (decode > query prefill > stateless prefill / ingest), runs one
//     llama_decode and reports what finished (TakeFinished, TakeEvents).
//
// Tokenization rule: every text segment (the prefix, each append, each question) is tokenized on
// its own and the tokens are concatenated; BOS leads a session when the model's tokenizer wants
// one. The stateless oracle for a session is exactly SessionTokens(id) + question tokens.
//
// Consistency (read your writes): a query answers against the session version it was admitted
// at, i.e. every append accepted before the query (`Answer::version`). Ingest of that data is
// promoted to query priority while the query waits for it; appends accepted after the query wait
// until it is done, so no data is reordered or dropped. Queries on one session run one at a time.

#include "common/metrics.h"
#include "common/status.h"
#include "common/tokens.h"
#include "engine/batch.h"
#include "engine/context.h"
#include "engine/model.h"
#include "persist/snapshot.h"
#include "query/flash.h"
#include "query/flash_board.h"
#include "query/query.h"
#include "runtime/engine_types.h"
#include "runtime/prefix_templates.h"
#include "runtime/step_metrics.h"
#include "scheduler/cost_model.h"
#include "scheduler/policy.h"
#include "session/park_store.h"
#include "session/session.h"
#include "session/slot_pool.h"

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kvs {

// An append's text checked and tokenized (no BOS, no special tokens): kTooLarge over
// `max_text_bytes`, kInvalidArgument when empty, invalid UTF-8 or without tokens. Pure: the
// runtime calls it on the caller's thread, the engine on its own.
Result<Tokens> TokenizeAppend(const Model& model,
                              std::string_view text,
                              std::size_t max_text_bytes);

// What a request waiting on a session gets when the session is closed: kNotFound (retrying cannot
// bring it back), naming the session.
Status SessionClosed(SessionId id);

class Engine {
public:
    // Loads the model and creates the context. Errors: kNotFound, kInvalidArgument, kUnavailable.
    static Result<std::unique_ptr<Engine>> Open(const EngineOptions& options);

    // ---- Sessions ------------------------------------------------------------------------
    // Prefills the prefix at once (parking an idle session when every slot is taken).
    // Errors: kResourceExhausted (max_sessions reached, or every slot busy), kInvalidArgument /
    // kTooLarge (prefix), kContextFull (the prefix does not fit a slot).
    Result<SessionId> CreateSession(const SessionOptions& options = {});

    // Errors: kNotFound. Drops queued appends and fails the session's queued queries.
    Status CloseSession(SessionId id);

    Result<SessionInfo> Info(SessionId id) const;

    // A copy of everything in the session's sequence (ingested data only).
    Result<Tokens> SessionTokens(SessionId id) const;

    std::vector<SessionId> SessionIds() const;

    // ---- Stepped use ---------------------------------------------------------------------
    // Validates, tokenizes and queues an append; returns at once with the version it will
    // produce. Errors: kNotFound, kInvalidArgument (empty, invalid UTF-8), kTooLarge,
    // kContextFull (on_full = reject: the session could not hold it with what is queued).
    Result<AppendResult> SubmitAppend(SessionId id,
                                      std::string_view text,
                                      const AppendOptions& how = {});

    // A held append is durable: it may be ingested. kNotFound when the session or the held
    // append is gone.
    Status ConfirmAppend(SessionId id, std::uint64_t version);

    // A held append could not be recorded: it leaves the queue as if never accepted (when it is
    // the last one accepted, the accepted version steps back, and a plain SubmitAppend gives that
    // version out again); queries that waited for it wait no longer. kNotFound when the session
    // or the held append is gone.
    Status RevokeAppend(SessionId id, std::uint64_t version);

    // Already tokenized data (no BOS); kInvalidArgument for an empty list or a token outside the
    // vocabulary.
    Result<AppendResult> SubmitAppendTokens(SessionId id,
                                            Tokens tokens,
                                            const AppendOptions& how = {});

    // Queues a question. Errors at once: kNotFound, kInvalidArgument, kContextFull (the
    // question + max_tokens can never fit the session's slot). Later, in TakeFinished: the
    // answer, or kContextFull when on_full = reject and the room ran out before it started.
    Result<QueryId> SubmitQuery(SessionId id, const QueryOptions& options);

    // Queues a stateless request: `context` + question prefilled from scratch on a scratch
    // sequence; the question may be empty (a plain completion of `context`). Errors:
    // kInvalidArgument, kContextFull (longer than a slot).
    Result<QueryId> SubmitStateless(Tokens context, const QueryOptions& options);

    // True while any work is queued or running.
    bool HasWork() const;

    // Plans one batch, runs one llama_decode, posts what finished.
    StepReport Step();

    std::vector<FinishedQuery> TakeFinished();

    std::vector<EngineEvent> TakeEvents();

    // ---- Synchronous use -----------------------------------------------------------------
    // Each submits and runs Step() until its own work is done (other queued work progresses
    // too). On any error the session is unchanged.
    Result<AppendResult> Append(SessionId id, std::string_view text);
    Result<AppendResult> AppendTokens(SessionId id, const Tokens& tokens);
    std::vector<Result<AppendResult>> AppendMany(std::span<const AppendRequest> requests);
    Result<Answer> Query(SessionId id, const QueryOptions& options);
    std::vector<Result<Answer>> QueryMany(std::span<const QueryRequest> requests);
    Result<Answer> QueryStateless(const Tokens& context, const QueryOptions& options);

    // Tokenizes `text` with a leading BOS when the model wants one (the stateless context of a
    // conventional engine, which tokenizes the whole accumulated text per request).
    // `parse_special`: read special-token markup (prompts rendered by a chat template).
    Result<Tokens> TokenizeContext(std::string_view text, bool parse_special = false) const;

    // ---- Durable sessions (engine_durable.cpp) -------------------------------------------
    // A stored session restored at start from its snapshot: parked, its state still in `saved.file`
    // (read and checked when it first needs a slot; a bad state then re-prefills its tokens).
    // Errors as CreateSession, and kInvalidArgument when the tokens do not start with the
    // prefix's.
    Result<SessionId> AdoptSession(const SessionOptions& options, SavedSession saved);

    // The session's tokens and state now, when it is resident, holds no running query or flash
    // evaluation and no half-ingested append, and the copy (state + 4 bytes a token) fits in
    // `max_bytes`; else nothing (a flash evaluation runs on a copy and does not hold it). The
    // snapshot version is not changed: ConfirmSnapshot does that once written.
    std::optional<SessionCapture> Capture(SessionId id, std::size_t max_bytes = SIZE_MAX);

    // A snapshot of `version` is on disk: the session's snapshot version becomes at least that.
    // No-op for a closed session.
    void ConfirmSnapshot(SessionId id, std::uint64_t version);

    // The bytes parking may copy for TakeParkCaptures until the next call (capture_on_park): a
    // park whose copy does not fit takes none (the session is snapshotted at a later chance).
    void SetParkCaptureRoom(std::size_t n_bytes) { park_capture_room_bytes_ = n_bytes; }

    // New sessions and flash questions get ids above these (ids are never reused).
    void ReserveIds(SessionId highest_session, FlashId highest_flash);

    // States copied while parking sessions (capture_on_park), taken out.
    std::vector<SessionCapture> TakeParkCaptures();

    // What snapshot files made by this engine carry and what it accepts.
    const SnapshotExpectation& snapshot_identity() const { return identity_; }

    // Parks / restores a session now (tests, tools). kNotFound; kResourceExhausted when busy.
    Status Park(SessionId id);
    Status Restore(SessionId id);

    // Runs steps until no work is left or a step can do nothing (for example while the flash
    // budget waits to refill): lets flash evaluations finish in synchronous use.
    void RunUntilIdle();

    // ---- Flash queries (query/flash.h) ---------------------------------------------------
    // Registers a question; it is evaluated at the session's current version in idle time.
    // Errors: kNotFound, kInvalidArgument, kResourceExhausted (max_flash_per_session),
    // kContextFull (question + max_tokens can never fit the session's slot).
    // `forced` > 0: this id (restoring stored questions).
    Result<FlashId> AddFlash(SessionId id, const FlashOptions& options, FlashId forced = 0);

    // Stops evaluating a question (a running evaluation is rolled back). kNotFound.
    Status RemoveFlash(SessionId id, FlashId flash);

    Result<std::vector<FlashInfo>> ListFlash(SessionId id) const;

    // Sessions' owners, accepted versions and cached flash results, readable from any thread.
    FlashBoard& flash_board() { return board_; }

    const Model& model() const { return *model_; }

    const Context& context() const { return *context_; }

    // Failures injected by tests into the context (engine/context.h, FaultPlan).
    FaultPlan& faults_for_testing() { return context_->faults(); }

    const EngineOptions& options() const { return options_; }

    int n_sessions() const { return static_cast<int>(sessions_.size()); }

    int n_slots() const { return slots_.n_slots(); }

    const ParkStore& park_store() const { return *park_; }

    // Counters and histograms (steps, tokens, parks, refusals); safe to read from any thread.
    MetricsRegistry& metrics() { return metrics_; }

private:
    using Clock = std::chrono::steady_clock;

    struct QueryJob {
        QueryId id = 0;
        SessionId session = 0;  // 0: stateless
        QueryOptions options;
        Tokens prompt;  // question tokens (stateful) or context + question (stateless)
        std::optional<QueryRun> run;
        SeqId scratch = -1;  // stateless: a scratch sequence; flash: the copy it runs on
        std::uint64_t arrival = 0;
        // Stateful: the session's accepted version at submit; flash: the version it answers.
        std::uint64_t target_version = 0;
        Clock::time_point submitted;
        Clock::time_point started;
        FlashId flash = 0;              // a flash evaluation of this question (no caller waits)
        bool finish_overtaken = false;  // flash: newer data came and it was kept to finish
        // Flash: live asks this evaluation answers (they joined it; it runs at query priority).
        std::vector<QueryId> joined;
        Clock::time_point joined_at;  // a live ask: when it joined a running evaluation

        // A flash evaluation no live ask joined: background work, charged to the time cap.
        bool unawaited_flash() const { return flash != 0 && joined.empty(); }
    };

    // A registered question, engine side (FlashBoard holds the copy other threads read).
    struct FlashQuestion {
        FlashId id = 0;
        FlashOptions options;  // question trimmed
        Tokens prompt;
        bool has_result = false;
        std::uint64_t version = 0;  // answered by the last result
        std::string answer;         // the last result's text
        Clock::time_point stale_since;
        int n_drops = 0;  // evaluations dropped in a row
        QueryId running = 0;
    };

    // Where an ingest chunk started, to undo it if the decode fails.
    struct IngestMark {
        SessionId session = 0;
        int n_tokens_before = 0;
        std::vector<int> n_done_before;  // of the pending appends the chunk touched
    };

    Engine(EngineOptions options,
           std::unique_ptr<Model> model,
           std::unique_ptr<Context> context,
           std::unique_ptr<ParkStore> park);

    // The Submit*/CreateSession bodies; the public names count refusals by reason.
    Result<SessionId> TryCreateSession(const SessionOptions& options);
    Result<AppendResult> TrySubmitAppend(SessionId id,
                                         std::string_view text,
                                         const AppendOptions& how);
    Result<AppendResult> TrySubmitAppendTokens(SessionId id,
                                               Tokens tokens,
                                               const AppendOptions& how);
    Result<QueryId> TrySubmitQuery(SessionId id, const QueryOptions& options);
    Result<QueryId> TrySubmitStateless(Tokens context, const QueryOptions& options);
    Session* FindSession(SessionId id);
    const Session* FindSession(SessionId id) const;
    Status ValidateText(std::string_view text, const char* what) const;
    Result<AppendResult> QueueAppend(Session& s, Tokens tokens, const AppendOptions& how = {});
    Status LoadSavedState(Session& s);  // the adopted snapshot's state into s.seq
    QueryId QueueQuery(QueryJob job);   // stamps arrival and puts it in the waiting queue
    Status RunUntil(const std::function<bool()>& done);

    // Step phases (engine_step.cpp).
    void DropCancelled();
    void AdmitQueries();
    Status StartStateless(QueryJob& job);
    Status StartStateful(QueryJob& job);
    bool QueryWaitsFor(SessionId id) const;
    // The tokens a session must still ingest before its first waiting query can start (0: none
    // waits, or it can start now).
    int CatchUpTokens(const Session& s) const;
    std::vector<WorkItem> CollectWork();
    double StepTargetMs(std::span<const WorkItem> work) const;
    double IdleTargetMs() const;  // the cut of steps without queries (scheduler/policy.h, 6.)
    void MaybeThrowAtSubmit();    // FaultPlan::throw_at_submit (tests)
    bool IngestStarved(std::span<const WorkItem> work, const StepPlan& plan) const;
    void BuildBatch(const StepPlan& plan, StepReport& report);
    int AddIngest(Session& s, int n_tokens);
    void FinishQueries(const Status& decoded);
    void CommitIngest(const Status& decoded);
    void ReleaseQuery(QueryJob& job);
    void FailQuery(QueryJob& job, Status status);  // the job must not be in waiting_
    void RecordStep(const StepReport& report, const Status& decoded);
    void RecordGauges();
    void CountRefusal(const Status& status);

    // Flash queries (engine_flash.cpp).
    Result<FlashQuestion> MakeFlashQuestion(const Session& s, const FlashOptions& options) const;
    FlashQuestion* FindFlash(SessionId session, FlashId flash);
    bool IsStale(const Session& s, const FlashQuestion& q) const;
    void PreemptFlash();
    void StartFlash();
    void StartFlashJob(Session& s, FlashQuestion& q);
    // An evaluation of the session that live asks joined: the session is as busy as with a
    // live query (never parked: parking cancels its evaluations).
    bool FlashAwaited(const Session& s) const;
    void CancelFlash(QueryJob& job);  // rolls back and forgets the job; the question stays stale
    void CancelSessionFlash(SessionId id);  // every evaluation running on a copy of `id`
    void FinishFlash(QueryJob& job, const Answer& answer);
    // Waiting asks that `eval` answers (the same question and settings, a version it computes)
    // stop waiting and join it; true when it has joined asks.
    bool JoinFlash(QueryJob& eval);
    void AnswerJoined(QueryJob& eval, const Answer& answer);
    void RequeueJoined(QueryJob& eval);  // back to waiting_ (the evaluation was rolled back)
    // A live answer to a registered question at a version its result is older than becomes the
    // result (no evaluation computes that version again).
    void KeepLiveResult(const QueryJob& job, const Answer& answer);
    void RecordFlashResult(const Session& s,
                           FlashQuestion& q,
                           const Answer& answer,
                           std::uint64_t version);
    static double MsBetween(Clock::time_point from, Clock::time_point to);
    // QueryTimings::wait_ms: the ask's arrival (QueryOptions::received) to its submission.
    static double WaitMs(const QueryJob& job);
    void OnAccepted(Session& s);  // an append was accepted: questions become stale
    // The questions of `s` an evaluation could start with now: stale, not evaluating, and
    // fitting, when the session is resident, idle, fully ingested and no query waits for it.
    std::vector<const FlashQuestion*> ReadyFlash(const Session& s) const;
    bool FlashCanStart() const;

    // Each running evaluation holds one copy sequence.
    int n_flash_running() const { return copies_.n_slots() - copies_.n_free(); }

    void RecordFlashGauges();

    // Residency (residency.cpp).
    // Gives `s` a slot whose cache holds exactly s.tokens: its saved state restored, or the
    // tokens re-prefilled when that state is gone or unusable. kResourceExhausted: no slot can
    // be freed now; kUnavailable: parking or the rebuild failed (the session stays parked, its
    // tokens and queued data kept, and a later call tries again).
    Status MakeResident(Session& s);
    // Loads the saved state (adopted snapshot or park store) into s.seq; an error when there is
    // none for a session with tokens, or it does not hold exactly s.tokens.
    Status LoadState(Session& s);
    Status ParkSession(Session& s);
    Session* PickVictim(const Session* keep, bool idle_only, bool same_tenant = false);
    int ResidentCount(TenantId tenant) const;
    Status Reprefill(Session& s);
    void RestoreWaiting();
    Status RollWindow(Session& s, int n_needed);

    EngineOptions options_;
    std::unique_ptr<Model> model_;
    std::unique_ptr<Context> context_;
    std::unique_ptr<ParkStore> park_;
    SlotPool slots_;
    SlotPool scratch_;
    SlotPool copies_;  // flash evaluations' copies of their sessions' sequences, one each
    std::map<SessionId, Session> sessions_;
    std::map<QueryId, QueryJob> queries_;  // queued and running
    std::deque<QueryId> waiting_;          // queued, not yet started, in arrival order
    std::vector<FinishedQuery> finished_;
    std::vector<EngineEvent> events_;
    // Remembers about 50 steps (alpha 0.02): enough to hold both single-token decode steps and
    // full prefill batches, so the fitted intercept is not skewed by a run of equal-sized steps.
    StepCostModel cost_{5.0, 1.0, 0.02};
    Batch batch_;
    std::map<SessionId, std::vector<FlashQuestion>> flash_;  // registered questions by session
    FlashId next_flash_ = 1;
    FlashBudget flash_budget_;
    Clock::time_point budget_refilled_ = Clock::now();
    FlashBoard board_;
    std::vector<QueryId> batch_queries_;    // queries with tokens in the current batch
    std::vector<IngestMark> batch_ingest_;  // sessions with data in the current batch
    SessionId next_session_ = 1;
    QueryId next_query_ = 1;
    std::uint64_t tick_ = 0;        // arrival order and LRU clock
    int n_submits_for_faults_ = 0;  // Submit* calls counted for FaultPlan::throw_at_submit
    double decode_step_ms_ = 0;     // EWMA of decode-only steps (the auto latency target's base)
    int n_starved_steps_ = 0;  // consecutive steps whose ingest the target cut below the minimum
    std::map<SessionId, SavedSession> saved_;  // adopted, state not yet loaded (tokens moved out)
    std::vector<SessionCapture> park_captures_;
    std::size_t park_capture_room_bytes_ = 0;  // what parking may still copy into park_captures_
    SnapshotExpectation identity_;
    MetricsRegistry metrics_;
    StepMetrics step_metrics_{metrics_};
    PrefixTemplates templates_;  // shared prefixes, in the template sequences
};

}  // namespace kvs
