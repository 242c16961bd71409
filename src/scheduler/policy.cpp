#include "scheduler/policy.h"

#include "common/check.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <tuple>

namespace kvs {

const char* WorkKindName(WorkKind kind) {
    switch (kind) {
        case WorkKind::kDecode:
            return "decode";
        case WorkKind::kQueryPrefill:
            return "query_prefill";
        case WorkKind::kStatelessPrefill:
            return "stateless_prefill";
        case WorkKind::kIngest:
            return "ingest";
        case WorkKind::kBackground:
            return "background";
    }
    KV_FAIL("unknown WorkKind");
}

namespace {

using Items = std::vector<const WorkItem*>;

// Tokens an item wants this step: a decoder its sampled token and any drafted after it.
int Want(const WorkItem& item) {
    return item.n_tokens_left;
}

// The items of one kind that want room, oldest first (arrival, then id, then position).
Items OldestFirst(std::span<const WorkItem> work, WorkKind kind) {
    Items items;
    for (const WorkItem& item : work) {
        if (item.kind == kind && item.n_tokens_left > 0) {
            items.push_back(&item);
        }
    }
    std::stable_sort(items.begin(), items.end(), [](const WorkItem* a, const WorkItem* b) {
        return std::tie(a->arrival, a->id) < std::tie(b->arrival, b->id);
    });
    return items;
}

std::int64_t Demand(const Items& items) {
    std::int64_t total = 0;
    for (const WorkItem* item : items) {
        total += Want(*item);
    }
    return total;
}

void AddChunk(StepPlan& plan, const WorkItem& item, int n_tokens) {
    if (n_tokens > 0) {
        plan.chunks.push_back({item.id, item.kind, n_tokens, item.owner});
        plan.n_tokens += n_tokens;
    }
}

// Each item, oldest first, takes as much as it wants of `room`.
void GiveOldestFirst(const Items& items, int room, StepPlan& plan) {
    for (const WorkItem* item : items) {
        const int n = std::min(Want(*item), room);
        AddChunk(plan, *item, n);
        room -= n;
    }
}

// Max-min fair split of `budget` over `items` (oldest first): items are visited from the
// smallest want up; one that wants no more than an equal share of what is left takes its want
// and leaves the rest to the others; the remaining (larger) items split what is left equally,
// the indivisible remainder going one token each to the oldest.
std::vector<int> WaterFill(const Items& items, int budget) {
    const int n_items = static_cast<int>(items.size());
    std::vector<int> order(items.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return Want(*items[a]) < Want(*items[b]); });
    std::vector<int> grant(items.size(), 0);
    int left = budget;
    int n_open = n_items;  // items not yet satisfied
    for (const int i : order) {
        if (Want(*items[i]) > left / n_open) {
            break;  // every later item wants at least as much: the rest share equally
        }
        grant[i] = Want(*items[i]);
        left -= grant[i];
        --n_open;
    }
    int extra = n_open > 0 ? left % n_open : 0;
    for (int i = 0; i < n_items; ++i) {  // oldest first, for the remainder
        if (grant[i] == 0 && n_open > 0) {
            grant[i] = left / n_open + (extra > 0 ? 1 : 0);
            extra -= extra > 0 ? 1 : 0;
        }
    }
    return grant;
}

void GiveWaterFilled(const Items& items, int budget, StepPlan& plan) {
    const std::vector<int> grant = WaterFill(items, budget);
    for (std::size_t i = 0; i < items.size(); ++i) {
        AddChunk(plan, *items[i], grant[i]);
    }
}

// The step's token limit: n_batch, or less while queries run under a latency target.
int StepLimit(const PlanOptions& options, const StepCostModel& cost, int query_tokens) {
    if (query_tokens == 0 || options.target_step_ms <= 0) {
        return options.n_batch;
    }
    const int within_target = cost.MaxTokensWithin(options.target_step_ms);
    return std::min(options.n_batch, std::max(query_tokens, within_target));
}

// The room ingest and background work may take together: in a step without queries what the
// idle target allows (at least min_idle_tokens), else n_batch (the step limit applies).
int IdleRoom(const PlanOptions& options, const StepCostModel& cost, int query_tokens) {
    if (query_tokens > 0 || options.idle_target_step_ms <= 0) {
        return options.n_batch;
    }
    const int within = cost.MaxTokensWithin(options.idle_target_step_ms);
    return std::min(options.n_batch, std::max(options.min_idle_tokens, within));
}

struct LeftoverSplit {
    int stateless = 0;
    int ingest = 0;
};

// Splits `room` between stateless prefill and ingest by `share`; a kind that wants less than its
// share leaves the rest to the other.
LeftoverSplit SplitLeftover(int room,
                            std::int64_t stateless_want,
                            std::int64_t ingest_want,
                            double share) {
    const bool both = stateless_want > 0 && ingest_want > 0;
    const int stateless_share = both ? static_cast<int>(std::floor(room * share)) : room;
    LeftoverSplit split;
    split.stateless = static_cast<int>(std::min<std::int64_t>(stateless_want, stateless_share));
    split.ingest = static_cast<int>(std::min<std::int64_t>(ingest_want, room - split.stateless));
    split.stateless = static_cast<int>(std::min<std::int64_t>(stateless_want, room - split.ingest));
    return split;
}

void CheckOptions(const PlanOptions& options) {
    KV_CHECK(options.n_batch >= 1, "n_batch must be >= 1");
    KV_CHECK(options.min_ingest_tokens >= 0, "min_ingest_tokens must be >= 0");
    KV_CHECK(options.target_step_ms >= 0, "target_step_ms must be >= 0 (0: no target)");
    KV_CHECK(options.idle_target_step_ms >= 0, "idle_target_step_ms must be >= 0 (0: no target)");
    KV_CHECK(options.min_idle_tokens >= 1, "min_idle_tokens must be >= 1");
    KV_CHECK(options.stateless_share >= 0 && options.stateless_share <= 1,
             "stateless_share must be in [0, 1]");
}

}  // namespace

StepPlan PlanStep(std::span<const WorkItem> work,
                  const PlanOptions& options,
                  const StepCostModel& cost) {
    CheckOptions(options);
    StepPlan plan;

    // 1-2. Queries: decoders, then question prompts; only n_batch limits them.
    GiveOldestFirst(OldestFirst(work, WorkKind::kDecode), options.n_batch, plan);
    GiveOldestFirst(OldestFirst(work, WorkKind::kQueryPrefill), options.n_batch - plan.n_tokens,
                    plan);
    plan.query_tokens = plan.n_tokens;

    // 3. The leftover the latency target allows, split between stateless prefill and ingest.
    const int limit = StepLimit(options, cost, plan.query_tokens);
    plan.leftover_budget = limit - plan.query_tokens;
    const Items stateless = OldestFirst(work, WorkKind::kStatelessPrefill);
    const Items ingest = OldestFirst(work, WorkKind::kIngest);
    const Items background = OldestFirst(work, WorkKind::kBackground);
    const LeftoverSplit split = SplitLeftover(plan.leftover_budget, Demand(stateless),
                                              Demand(ingest), options.stateless_share);
    GiveOldestFirst(stateless, split.stateless, plan);

    // 4. Ingest always moves: at least min_ingest_tokens while n_batch has room. Without
    // queries (6.), ingest and background stay within the idle room.
    const int idle_room = IdleRoom(options, cost, plan.query_tokens);
    const int ingest_floor = std::min(options.min_ingest_tokens, options.n_batch - plan.n_tokens);
    const int before_ingest = plan.n_tokens;
    GiveWaterFilled(ingest, std::max(std::min(split.ingest, idle_room), ingest_floor), plan);

    // 5. Background work takes what is left of the idle room, and only in steps without queries:
    // nobody waits for it, so it never lengthens a question's step.
    const int ingested = plan.n_tokens - before_ingest;
    const int background_room = plan.query_tokens > 0 ? 0 : idle_room - ingested;
    GiveOldestFirst(background, std::max(0, std::min(limit - plan.n_tokens, background_room)),
                    plan);

    const std::int64_t background_want = plan.query_tokens > 0 ? 0 : Demand(background);
    const std::int64_t low_want = Demand(stateless) + Demand(ingest) + background_want;
    const std::int64_t data_want = Demand(ingest) + Demand(background);
    plan.latency_bound = (limit < options.n_batch && low_want > plan.leftover_budget) ||
                         (idle_room < options.n_batch && data_want > idle_room);
    return plan;
}

}  // namespace kvs
