#pragma once
// The engine's value types: its options, what callers pass in and what they get back (runtime/
// engine.h). Plain data, no behaviour; copied across threads by the runtime.

#include "common/metrics.h"
#include "common/status.h"
#include "common/tokens.h"
#include "engine/fault_plan.h"
#include "query/draft.h"
#include "query/flash.h"
#include "query/query.h"
#include "session/session.h"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace kvs {

// How long a step that carries queries may take, so that ingest cannot slow answers down.
enum class StepTarget : std::uint8_t {
    kAuto,   // kAutoTargetFactor x the step's predicted query-only time (default); steps
             // without queries: kIdleTargetFactor x a decode-only step
    kFixed,  // EngineOptions::target_step_ms, for steps with and without queries
    kOff,    // none: ingest always fills the batch
};

// "auto", "off", or a number of milliseconds > 0 (kFixed); kInvalidArgument otherwise.
Result<std::pair<StepTarget, double>> ParseStepTarget(const std::string& text);

// "auto", "off" or the fixed target in ms (the inverse of ParseStepTarget).
std::string StepTargetText(StepTarget target, double target_step_ms);

struct EngineOptions {
    std::string model_path;
    int n_sessions = 8;                // resident session slots (one KV sequence each)
    int n_ctx_session = 4096;          // cells per slot (rounded up to 256)
    std::int64_t kv_budget_cells = 0;  // >0: slots = budget / slot cells - n_scratch
    int n_scratch = 1;                 // sequences for stateless requests
    int n_template_slots = 2;          // sequences caching shared prefixes (0: off)
    int min_template_tokens = 16;      // shorter prefixes are prefilled directly
    int max_sessions = 256;            // sessions in all, resident and parked
    int max_resident_per_tenant = 0;   // KV slots one tenant may hold at once; 0: no limit
    int n_batch = 512;                 // most tokens per decode step
    int prefill_chunk_tokens = 0;      // data tokens per step for one session; 0: n_batch
    StepTarget step_target = StepTarget::kAuto;  // the step latency target (with and without
                                                 // queries in the step)
    double target_step_ms = 0;                   // kFixed: the target (> 0 ms)
    int min_ingest_tokens = 16;     // ingest progress per step once queries have held ingest
                                    // back for kStarvedSteps steps in a row
    int n_threads = 0;              // 0: all hardware threads
    bool flash_attn = false;        // measured slower on CPU at depth (docs/benchmarks.md)
    int n_gpu_layers = 0;           // layers offloaded when libllama has a GPU backend
    bool repack_weights = true;     // ModelOptions::repack_weights (off: measurements only)
    std::string kv_type_k = "f16";  // ContextOptions::type_k / type_v
    std::string kv_type_v = "f16";
    std::size_t max_text_bytes = 1 << 20;                // one append or prefix
    std::size_t park_host_bytes = std::size_t{1} << 30;  // RAM for parked sessions
    std::string park_dir;  // spill folder past park_host_bytes; empty: none
    // Flash queries (query/flash.h).
    int max_flash_per_session = 32;  // registered questions per session
    // Evaluations running at once. Each runs on its own copy of its session's sequence, so this
    // many sequences (n_ctx_session cells each) are reserved beside the session slots.
    int flash_max_running = 2;
    double flash_max_share = 0.5;  // most engine (wall-clock) time for flash work, (0, 1]
    // Speculative decoding by prompt lookup (query/draft.h) for queries and flash evaluations,
    // while at most draft_max_decoders sequences decode at once. draft.max_draft 0: off.
    DraftOptions draft{};
    int draft_max_decoders = 4;  // measured: pays at 4 decoders, loses at 16 (docs/benchmarks.md)
    // Durable sessions: when parking a session whose snapshot is older than its version, keep a
    // copy of its state for TakeParkCaptures (the runtime writes it as a snapshot), while the
    // room SetParkCaptureRoom gave lasts.
    bool capture_on_park = false;
    FaultPlan test_faults{};  // tests only: failures injected into the context (fault_plan.h)
};

struct SessionOptions {
    std::string prefix;  // pinned text at the start (a system prompt); may be empty
    OnFull on_full = OnFull::kReject;
    TenantId tenant = 0;
    std::vector<FlashOptions> flash{};  // questions registered at creation (all or nothing)
    int max_context = 0;                // tokens the session may hold; 0 (or more): a whole slot
    SessionId id = 0;                   // > 0: this id (restoring stored sessions); 0: the next
    std::string settings{};             // opaque to the engine: the caller's own settings, kept
                                        // with the session by the durable store
};

// How an append is queued.
struct AppendOptions {
    bool held = false;          // not ingested until ConfirmAppend (it is being made durable)
    std::uint64_t version = 0;  // > 0: the version it produces (replaying a data log); must
                                // exceed the session's accepted version
    // When the server admitted it (its ingest lag starts there: before the data log's write
    // and the acknowledgement); unset: when the engine queues it (replay from the log).
    std::chrono::steady_clock::time_point accepted{};
};

// A session to adopt from a snapshot file at start: its tokens (read and checked) and the file
// whose sequence state is loaded, and checked again, when the session first needs a slot.
struct SavedSession {
    Tokens tokens;
    std::uint64_t version = 0;
    std::filesystem::path file;
};

struct SessionInfo {
    SessionId id = 0;
    TenantId tenant = 0;
    int n_tokens = 0;  // tokens in the session's sequence, prefix included
    int n_prefix_tokens = 0;
    std::uint64_t version = 0;           // the last append fully in the KV cache
    std::uint64_t accepted_version = 0;  // the last append accepted (may still be queued)
    int n_pending_tokens = 0;            // accepted, not yet ingested
    int n_ctx = 0;                       // capacity in tokens
    int room = 0;                        // n_ctx - n_tokens
    int n_cached = 0;  // tokens the KV cache holds for the session (== n_tokens; 0 if parked)
    bool resident = false;
    std::uint64_t n_dropped_tokens = 0;  // rolled out of the window (on_full = roll)
    int n_flash = 0;                     // registered flash questions
    int n_flash_stale = 0;               // of those, without a result for accepted_version
    std::uint64_t snapshot_version = 0;  // the version its last snapshot covers (0: none)
    OnFull on_full = OnFull::kReject;
};

struct AppendResult {
    int n_tokens_appended = 0;
    int n_tokens = 0;  // the session's total afterwards (synchronous appends)
    std::uint64_t version = 0;
    // The data is in the KV cache (a synchronous or waited-for append). False: accepted and
    // queued, or (durable) stored in the data log and ingested later, e.g. after a restart.
    bool ingested = false;
};

struct AppendRequest {
    SessionId session = 0;
    std::string text;
};

struct QueryRequest {
    SessionId session = 0;
    QueryOptions options;
};

using QueryId = std::uint64_t;

struct FinishedQuery {
    QueryId id = 0;
    Result<Answer> answer;
};

// Something that happened to a session, in the order it happened (subscribers get these through
// runtime/event_hub.h).
struct EngineEvent {
    enum class Kind : std::uint8_t {
        kIngested,  // data entered the KV cache: `version` is the session's new version
        kParked,    // moved out of the KV cache (`ms`)
        kRestored,  // back in the KV cache (`ms`)
        kRolled,    // on_full = roll dropped old data
        kFlash,     // a flash question was evaluated: `flash`
        kMissed,    // (event hub only) the subscriber's buffer overflowed: `n_missed` dropped
        kClosed,    // (event hub only) the session was closed or the server stops; the last one
    };
    Kind kind;
    SessionId session = 0;
    std::uint64_t version = 0;  // kIngested: the new version; kFlash: the version answered
    double ms = 0;              // kParked / kRestored: how long it took; kFlash: evaluation time

    struct Flash {
        FlashId id = 0;
        std::string question;
        std::string answer;
        double confidence = 0;
        bool changed = false;  // the answer differs from the question's previous one
    };

    Flash flash{};               // kFlash
    std::uint64_t n_missed = 0;  // kMissed
};

const char* EngineEventName(EngineEvent::Kind kind);

// What one Step() did.
struct StepReport {
    int n_tokens = 0;  // in the batch (0: nothing to do)
    int n_query_tokens = 0;
    int n_ingest_tokens = 0;
    int n_stateless_tokens = 0;
    int n_flash_tokens = 0;  // flash evaluations nobody joined (prefill and decode), any kind
    double decode_ms = 0;    // inside llama_decode
    double total_ms = 0;     // the whole step
    bool latency_bound = false;
};

// With StepTarget::kAuto, ingest may lengthen a step that carries queries by at most this
// factor (chosen from the measurements in docs/benchmarks.md; 1.2 was tried on 2026-12-07 and
// lost more to catch-up ingest, bars left queued behind the previous question, than it saved
// in decode).
inline constexpr double kAutoTargetFactor = 1.5;

// With StepTarget::kAuto, a step without queries (ingest, flash evaluations) is cut to about this
// many times the larger of a decode-only step and the step's fixed cost, so a question that
// arrives while it runs waits for at most that step (scheduler/policy.h, rule 6). At 5x the fixed
// cost, batching keeps about 80% of its throughput (docs/benchmarks.md); 3x was tried and starved
// ingest at 10k tokens of depth, where small batches lose most (the market run of 2026-12-07).
inline constexpr double kIdleTargetFactor = 5.0;

// After this many steps in a row in which the latency target left ingest less than
// min_ingest_tokens, ingest gets min_ingest_tokens per step until it catches up (no starvation
// under a query storm, no cost to occasional queries).
inline constexpr int kStarvedSteps = 8;

// Histogram buckets for millisecond timings: 0.1 ms to about 100 s.
inline const std::vector<double> kMsBuckets = ExponentialBuckets(0.1, 2.0, 21);

}  // namespace kvs
