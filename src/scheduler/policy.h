#pragma once
// The step policy: which work goes into the next llama_decode batch, and how much of each.
//
// A pure function over plain structs (no model, no threads, no libllama): the engine thread
// lists everything that wants batch room, calls PlanStep once per step, carries the plan out,
// and feeds the measured step time back with StepCostModel::Observe(plan.n_tokens, ms).
//
// Priorities, highest first:
//  1. kDecode: every decoding query gets its 1 token (oldest first when there are more
//     decoders than n_batch).
//  2. kQueryPrefill: question prompts, oldest first, as many tokens as n_batch allows. Queries
//     are never cut by the latency target, only by n_batch; a long prompt is chunked over steps.
//  3. The leftover room. While any decode or query prefill is planned and target_step_ms > 0,
//     the step's total is limited to
//         limit = min(n_batch, max(query_tokens, cost.MaxTokensWithin(target_step_ms)))
//     so a query's step stays near the target; otherwise limit = n_batch. The leftover
//     (limit - query_tokens) is split between kStatelessPrefill (oldest first) and kIngest by
//     stateless_share; a kind that wants less than its share gives the rest to the other. Within
//     ingest the room is water-filled: every session gets an equal share, sessions that want
//     less free the rest for the others, and indivisible remainders go to the oldest.
//  4. min_ingest_tokens: when ingest wants room but got less than min_ingest_tokens, its total
//     is raised to that (water-filled again) from whatever n_batch room is still free, even past
//     the target, so a storm of queries cannot starve data ingestion.
//  5. kBackground: only in steps with no decode or query prefill (nobody waits for it, so it
//     never lengthens a question's step), and only what is left of the room, oldest first.
//  6. Questions first: in a step with no decode or query prefill, ingest and background work
//     together take at most (rule 4's min_ingest_tokens floor aside, which the engine keeps at
//     or below min_idle_tokens)
//         idle_room = min(n_batch, max(min_idle_tokens, cost.MaxTokensWithin(idle_target_step_ms)))
//     tokens (n_batch when idle_target_step_ms is 0), so a question that arrives while the step
//     runs waits for at most one short step, whatever the CPU. Stateless prefill is not cut by
//     it (a client waits for it; it is cut only while queries run, by rule 3).
//
// Guarantees: no chunk has 0 tokens; no chunk exceeds its item's n_tokens_left; the plan never
// exceeds n_batch; the same input gives the same plan. "Oldest" means the lowest `arrival`; ties
// go to the lower id, then to the earlier position in `work`. Items with n_tokens_left <= 0 are
// skipped. A kDecode item's n_tokens_left is 1, or 1 + the tokens it drafted (speculative
// decoding); decoders come first and get all of it.

#include "scheduler/cost_model.h"

#include <cstdint>
#include <span>
#include <vector>

namespace kvs {

enum class WorkKind : std::uint8_t {
    kDecode,            // a query sampling its answer: 1 token per step (+ its drafts)
    kQueryPrefill,      // a query's question prompt, on top of its session
    kStatelessPrefill,  // the conventional path: a whole context prefilled from scratch
    kIngest,            // appended data entering a session's KV cache (or a flash evaluation
                        // that data waits for: it moves like ingest)
    kBackground,        // work nobody waits for (flash evaluations): idle steps only
};

// "decode", "query_prefill", "stateless_prefill", "ingest", "background".
const char* WorkKindName(WorkKind kind);

// What a work item's id names, for the engine that carries the plan out (the policy ignores it).
enum class WorkOwner : std::uint8_t {
    kQuery,    // a query (stateful, stateless or a flash evaluation): its prompt or answer
    kSession,  // a session's queued data (ingest, or catch-up at query priority)
};

struct WorkItem {          // one unit of work that wants batch room
    std::uint64_t id = 0;  // the engine's handle: a query id or a session id (`owner`)
    WorkKind kind = WorkKind::kIngest;
    int n_tokens_left = 0;      // tokens it still wants to put into batches (kDecode: 1 + drafts)
    std::uint64_t arrival = 0;  // arrival order, lower = older
    int tenant = 0;             // carried for the engine; the policy does not use it yet
    WorkOwner owner = WorkOwner::kQuery;
};

struct PlanOptions {
    int n_batch = 512;  // hard cap on tokens per step (>= 1)
    // While queries are decoding or prefilling, stateless prefill, ingest and background work are
    // cut so the predicted step time stays under this (0: no target).
    double target_step_ms = 0;
    // Ingest progress guaranteed per step even when the target is exhausted (no starvation under
    // a query storm), if batch room allows (>= 0).
    int min_ingest_tokens = 16;
    // Share of the leftover room for stateless prefill when both stateless and ingest want room;
    // the unused share flows to the other kind. In [0, 1].
    double stateless_share = 0.5;
    // Without queries in the step, ingest and background work are cut so the predicted step time
    // stays under this (0: no cut), but never below min_idle_tokens (>= 1) while they want room.
    double idle_target_step_ms = 0;
    int min_idle_tokens = 16;
};

struct PlannedChunk {
    std::uint64_t id;
    WorkKind kind;
    int n_tokens;                         // >= 1, <= the item's n_tokens_left
    WorkOwner owner = WorkOwner::kQuery;  // the item's

    bool operator==(const PlannedChunk&) const = default;
};

struct StepPlan {
    std::vector<PlannedChunk> chunks;  // in priority order (the kinds in enum order, oldest first)
    int n_tokens = 0;                  // sum over chunks, <= n_batch
    int query_tokens = 0;              // decode + query prefill
    int leftover_budget = 0;           // room the target allowed after queries (before min_ingest)
    // The target limited this step: it allowed less than n_batch and the stateless, ingest or
    // background work wanted more than the leftover it allowed; or, in a step without queries,
    // ingest and background work wanted more than the idle target allowed.
    bool latency_bound = false;
};

// Plans one step. Aborts on invalid options (n_batch < 1, min_ingest_tokens < 0, a negative or
// NaN target or idle target, stateless_share outside [0, 1], min_idle_tokens < 1).
StepPlan PlanStep(std::span<const WorkItem> work,
                  const PlanOptions& options,
                  const StepCostModel& cost);

}  // namespace kvs
