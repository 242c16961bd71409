#pragma once
// `kvstream load`, the multi-session scheduler benchmark, in four files: load_cmd.cpp (options and
// the order of the phases), load_run.cpp (the Runtime phases: feed, questions, idle baseline),
// load_park.cpp (park/restore by session length, KV-budget arithmetic) and load_report.cpp (text
// and JSON). This header holds what they share.

#include "cli/defaults.h"  // Check
#include "runtime/runtime.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kvs::load {

using Clock = std::chrono::steady_clock;

// Milliseconds from `a` to `b`.
inline double MsBetween(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

// Sequences one context may hold (PlanContext).
constexpr int kMaxSeqs = 256;

// The command line of `kvstream load`.
struct LoadOptions {
    std::string model;  // empty: the Qwen2.5-0.5B shape twin (Q8_0)
    int n_sessions = 32;
    int n_slots = 0;  // 0: one per session
    int n_ctx = 1024;
    double bars_per_s = 1.0;  // per session
    std::vector<std::string> csv;
    double question_gap_ms = 500;  // mean gap between questions, over all sessions
    double duration_s = 60;
    int warmup_bars = 8;
    int max_tokens = 8;
    std::uint64_t max_staleness = 0;  // QueryOptions::max_staleness of every question
    int n_threads = 2;
    std::string step_target = "auto";  // ParseStepTarget
    int prefill_chunk_tokens = EngineOptions{}.prefill_chunk_tokens;
    int n_gpu_layers = 0;
    std::uint64_t seed = 42;
    int idle_queries = 30;
    std::string park_lengths = "256,1024,4096";
    int park_reps = 5;
    std::string park_dir;
    std::string json;
    bool metrics = false;
};

// ---- The loaded phase and the idle baseline -----------------------------------------------------

// What the feeder thread did.
struct FeedStats {
    int n_bars = 0;
    int n_refused = 0;
    std::int64_t n_tokens = 0;  // accepted
    std::string first_error;
};

// One question as the client saw it.
struct QueryRecord {
    double client_ms = 0;  // submit to the future being ready
    Status status;
    QueryTimings timings;  // the engine's, when answered
};

// What the engine's steps did between two metric snapshots.
struct StepTotals {
    double n_steps = 0;
    double step_ms = 0;      // kvs_step_ms_sum
    double decode_ms = 0;    // kvs_decode_ms_sum
    double overhead_ms = 0;  // kvs_overhead_ms_sum: step time outside llama_decode
    double query_tokens = 0;
    double ingest_tokens = 0;
    double latency_bound_steps = 0;
    double parks = 0;
    double restores = 0;
    double wall_ms = 0;  // the phase's wall time

    double OverheadShare() const { return step_ms > 0 ? overhead_ms / step_ms : 0; }

    double BusyShare() const { return wall_ms > 0 ? step_ms / wall_ms : 0; }
};

// The questions of one phase and the engine's steps during it.
struct Phase {
    std::vector<QueryRecord> queries;
    StepTotals steps;
};

// Everything the Runtime phases measured.
struct LoadRun {
    Phase loaded;
    Phase idle;
    FeedStats feed;
    double pending_tokens_at_end = 0;  // ingest backlog when the feed stopped
    double drain_ms = 0;               // time to ingest what was left of it after the last answer
    std::string metrics_table;
};

// Starts a Runtime on `model` with `n_slots` resident slots, runs the loaded phase for
// duration_s, waits for the ingest backlog to drain, then runs the idle baseline.
LoadRun RunQueries(const LoadOptions& o, const std::string& model, int n_slots);

// ---- Park and restore by session length ---------------------------------------------------------

// Park and restore timings of one session at one length.
struct ParkRow {
    int n_tokens = 0;
    bool on_disk = false;
    std::size_t blob_bytes = 0;
    std::vector<double> park_ms, restore_ms;  // the engine's own timings (EngineEvent::ms)
};

// The park/restore rows, and what the park engine showed about the context.
struct ParkResult {
    std::vector<ParkRow> rows;
    int n_reserved_seqs = 0;  // context sequences besides session slots (scratch, templates)
    double prefill_tokens_per_s = 0;  // filling the session: the engine's ingest capacity
};

// One session grown to each length in turn (ascending), parked and restored `park_reps` times
// at each. With `on_disk` the host budget is 1 byte, so every blob goes to park_dir.
void MeasureParking(const LoadOptions& o,
                    const std::string& model,
                    const std::vector<int>& lengths,
                    bool on_disk,
                    ParkResult& result);

// ---- KV budget ----------------------------------------------------------------------------------

// The model's KV cache per cell, from its GGUF header.
struct KvShape {
    int n_layer = 0;
    int n_head_kv = 0;
    int head_dim = 0;
    std::int64_t bytes_per_cell = 0;  // K and V over all layers, f16
};

// Reads the KV shape from the model file's header; throws when it has no usable head count.
KvShape ReadKvShape(const std::string& model);

// Cells of one session slot: n_ctx rounded up to the cell alignment (256).
std::int64_t SlotCells(int n_ctx);

// Resident session slots for a budget: floor(budget / round_up(ctx, 256)) - reserved, capped by
// the sequences one context may hold.
std::int64_t SlotsFor(std::int64_t budget_cells, int n_ctx, int n_reserved);

// ---- Report -------------------------------------------------------------------------------------

// Every figure of one run, and how to reproduce it.
struct Report {
    std::string command;
    std::string model;
    int n_slots = 0;
    LoadRun run;
    ParkResult park;
    KvShape kv;
};

// The command line that reproduces this run, every option spelled out.
std::string ReproduceCommand(const LoadOptions& o, const std::string& model, int n_slots);

// Query latency, loaded against idle, and the p50 ratio.
void PrintLatency(const Report& r);

// Scheduler step figures per phase, the feed and the offered load.
void PrintSteps(const LoadOptions& o, const Report& r);

// Park and restore time per session length.
void PrintParking(const Report& r);

// Sessions per KV budget, resident and parked.
void PrintBudget(const Report& r);

// Writes every figure to o.json; throws when the file cannot be written.
void WriteJson(const LoadOptions& o, const Report& r);

}  // namespace kvs::load
