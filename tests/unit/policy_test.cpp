#include "scheduler/policy.h"

#include "scheduler/cost_model.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <gtest/gtest.h>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace kvs {

namespace {

WorkItem Item(std::uint64_t id, WorkKind kind, int n_tokens_left, std::uint64_t arrival) {
    WorkItem item;
    item.id = id;
    item.kind = kind;
    item.n_tokens_left = n_tokens_left;
    item.arrival = arrival;
    return item;
}

WorkItem Decode(std::uint64_t id, std::uint64_t arrival) {
    return Item(id, WorkKind::kDecode, 1, arrival);
}

// Tokens planned for `id` (0 when it has no chunk).
int TokensFor(const StepPlan& plan, std::uint64_t id) {
    int total = 0;
    for (const PlannedChunk& chunk : plan.chunks) {
        total += chunk.id == id ? chunk.n_tokens : 0;
    }
    return total;
}

int TokensOfKind(const StepPlan& plan, WorkKind kind) {
    int total = 0;
    for (const PlannedChunk& chunk : plan.chunks) {
        total += chunk.kind == kind ? chunk.n_tokens : 0;
    }
    return total;
}

// 5 ms per step + 0.1 ms per token: a 20 ms target fits 150 tokens.
StepCostModel Cost() {
    return StepCostModel(5.0, 0.1);
}

PlanOptions Options(int n_batch, double target_step_ms = 0, int min_ingest_tokens = 16) {
    PlanOptions options;
    options.n_batch = n_batch;
    options.target_step_ms = target_step_ms;
    options.min_ingest_tokens = min_ingest_tokens;
    return options;
}

TEST(WorkKind, Names) {
    EXPECT_STREQ(WorkKindName(WorkKind::kDecode), "decode");
    EXPECT_STREQ(WorkKindName(WorkKind::kQueryPrefill), "query_prefill");
    EXPECT_STREQ(WorkKindName(WorkKind::kStatelessPrefill), "stateless_prefill");
    EXPECT_STREQ(WorkKindName(WorkKind::kIngest), "ingest");
    EXPECT_STREQ(WorkKindName(WorkKind::kBackground), "background");
}

TEST(PlanStep, NothingToDoGivesAnEmptyPlan) {
    const StepPlan plan = PlanStep({}, Options(512, 20), Cost());
    EXPECT_TRUE(plan.chunks.empty());
    EXPECT_EQ(plan.n_tokens, 0);
    EXPECT_EQ(plan.query_tokens, 0);
    EXPECT_EQ(plan.leftover_budget, 512);
    EXPECT_FALSE(plan.latency_bound);
}

TEST(PlanStep, WithNoQueryIngestGetsTheWholeBatch) {
    const std::vector<WorkItem> work = {Item(1, WorkKind::kIngest, 8000, 0)};
    const StepPlan plan = PlanStep(work, Options(512, 20), Cost());
    ASSERT_EQ(plan.chunks.size(), 1u);
    EXPECT_EQ(plan.chunks[0].id, 1u);
    EXPECT_EQ(plan.chunks[0].kind, WorkKind::kIngest);
    EXPECT_EQ(plan.chunks[0].n_tokens, 512);
    EXPECT_EQ(plan.n_tokens, 512);
    EXPECT_EQ(plan.leftover_budget, 512);
    EXPECT_FALSE(plan.latency_bound);
}

TEST(PlanStep, AWaitingQueryCutsIngestToTheTarget) {
    const std::vector<WorkItem> work = {Item(1, WorkKind::kIngest, 8000, 0), Decode(2, 1)};
    const StepPlan plan = PlanStep(work, Options(512, 20), Cost());
    EXPECT_EQ(TokensFor(plan, 2), 1);
    EXPECT_EQ(plan.query_tokens, 1);
    EXPECT_EQ(plan.leftover_budget, 149);  // 150 tokens fit 20 ms, one is the query's
    EXPECT_EQ(TokensFor(plan, 1), 149);
    EXPECT_EQ(plan.n_tokens, 150);
    EXPECT_LE(Cost().PredictMs(plan.n_tokens), 20.0);
    EXPECT_TRUE(plan.latency_bound);
}

TEST(PlanStep, WithoutATargetAQueryDoesNotCutIngest) {
    const std::vector<WorkItem> work = {Item(1, WorkKind::kIngest, 8000, 0), Decode(2, 1)};
    const StepPlan plan = PlanStep(work, Options(512, 0), Cost());
    EXPECT_EQ(TokensFor(plan, 1), 511);
    EXPECT_FALSE(plan.latency_bound);
}

TEST(PlanStep, QueriesAreNeverCutByTheTargetOnlyByTheBatch) {
    const StepCostModel slow(5.0, 1.0);  // 20 ms fits only 15 tokens
    std::vector<WorkItem> work = {Item(1, WorkKind::kQueryPrefill, 400, 0),
                                  Item(2, WorkKind::kIngest, 8000, 1)};
    StepPlan plan = PlanStep(work, Options(512, 20, 0), slow);
    EXPECT_EQ(TokensFor(plan, 1), 400);
    EXPECT_EQ(TokensFor(plan, 2), 0);  // the queries alone exceed the target
    EXPECT_EQ(plan.leftover_budget, 0);
    EXPECT_TRUE(plan.latency_bound);

    work[0].n_tokens_left = 1000;  // longer than a batch: chunked over steps
    plan = PlanStep(work, Options(512, 20, 0), slow);
    EXPECT_EQ(TokensFor(plan, 1), 512);
    EXPECT_EQ(plan.n_tokens, 512);
}

TEST(PlanStep, DecodeBeatsQueryPrefillBeatsIngest) {
    const std::vector<WorkItem> work = {
        Item(10, WorkKind::kIngest, 100, 0),
        Item(11, WorkKind::kQueryPrefill, 10, 1),
        Decode(12, 5),
        Decode(13, 6),
        Item(14, WorkKind::kBackground, 100, 0),
        Decode(15, 7),
        Item(16, WorkKind::kStatelessPrefill, 50, 0),
    };
    const StepPlan plan = PlanStep(work, Options(8), Cost());
    ASSERT_EQ(plan.chunks.size(), 4u);
    EXPECT_EQ(plan.chunks[0].id, 12u);
    EXPECT_EQ(plan.chunks[1].id, 13u);
    EXPECT_EQ(plan.chunks[2].id, 15u);
    EXPECT_EQ(plan.chunks[3].id, 11u);
    EXPECT_EQ(plan.chunks[3].n_tokens, 5);  // the rest of the batch
    EXPECT_EQ(plan.query_tokens, 8);
    EXPECT_EQ(plan.n_tokens, 8);
}

TEST(PlanStep, ChunksComeInPriorityOrder) {
    std::vector<WorkItem> work = {Item(1, WorkKind::kBackground, 10, 0),
                                  Item(2, WorkKind::kIngest, 10, 0),
                                  Item(3, WorkKind::kStatelessPrefill, 10, 0),
                                  Item(4, WorkKind::kQueryPrefill, 10, 0), Decode(5, 0)};
    StepPlan plan = PlanStep(work, Options(512), Cost());
    ASSERT_EQ(plan.chunks.size(), 4u);  // background waits while queries run (rule 5)
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(plan.chunks[i].id, static_cast<std::uint64_t>(5 - i));
    }
    EXPECT_EQ(plan.n_tokens, 31);

    work.resize(3);  // no queries: stateless, ingest, then background
    plan = PlanStep(work, Options(512), Cost());
    ASSERT_EQ(plan.chunks.size(), 3u);
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(plan.chunks[i].id, static_cast<std::uint64_t>(3 - i));
    }
    EXPECT_EQ(plan.n_tokens, 30);
}

// Questions first: background work (flash evaluations nobody waits for) never shares a step with
// a decoding query or a question's prefill, whatever room the batch and the target leave.
TEST(PlanStep, BackgroundWaitsWhileQueriesRun) {
    std::vector<WorkItem> work = {Item(1, WorkKind::kBackground, 12, 0), Decode(2, 1)};
    StepPlan plan = PlanStep(work, Options(512), Cost());
    EXPECT_EQ(TokensFor(plan, 1), 0);
    EXPECT_EQ(plan.n_tokens, 1);
    EXPECT_FALSE(plan.latency_bound);

    work[1] = Item(2, WorkKind::kQueryPrefill, 3, 1);
    plan = PlanStep(work, Options(512, 1000), Cost());
    EXPECT_EQ(TokensFor(plan, 1), 0);
    EXPECT_EQ(plan.n_tokens, 3);

    work.pop_back();  // the question is done: the evaluation goes on
    plan = PlanStep(work, Options(512, 1000), Cost());
    EXPECT_EQ(TokensFor(plan, 1), 12);
}

TEST(PlanStep, MoreDecodersThanTheBatchServesTheOldest) {
    std::vector<WorkItem> work;
    const std::uint64_t arrivals[] = {9, 3, 7, 1, 8, 2};
    for (std::uint64_t i = 0; i < 6; ++i) {
        work.push_back(Decode(100 + i, arrivals[i]));
    }
    const StepPlan plan = PlanStep(work, Options(4), Cost());
    ASSERT_EQ(plan.chunks.size(), 4u);
    EXPECT_EQ(plan.chunks[0].id, 103u);  // arrival 1
    EXPECT_EQ(plan.chunks[1].id, 105u);  // 2
    EXPECT_EQ(plan.chunks[2].id, 101u);  // 3
    EXPECT_EQ(plan.chunks[3].id, 102u);  // 7
}

TEST(PlanStep, ADecoderGetsItsDraftedTokensAndEmptyItemsAreSkipped) {
    const std::vector<WorkItem> work = {Item(1, WorkKind::kDecode, 5, 0),
                                        Item(2, WorkKind::kIngest, 0, 0),
                                        Item(3, WorkKind::kQueryPrefill, -4, 0)};
    const StepPlan plan = PlanStep(work, Options(512), Cost());
    ASSERT_EQ(plan.chunks.size(), 1u);
    EXPECT_EQ(plan.chunks[0].n_tokens, 5);  // its sampled token and four drafted ones
}

TEST(PlanStep, QueryPrefillsAreServedOldestFirst) {
    const std::vector<WorkItem> work = {Item(1, WorkKind::kQueryPrefill, 300, 5),
                                        Item(2, WorkKind::kQueryPrefill, 300, 4)};
    const StepPlan plan = PlanStep(work, Options(512), Cost());
    EXPECT_EQ(TokensFor(plan, 2), 300);
    EXPECT_EQ(TokensFor(plan, 1), 212);
}

// The engine loop, simulated: a query arrives while an 8000-token append is being ingested.
TEST(PlanStep, AQueryArrivingDuringALongIngestIsPlannedInTheNextStep) {
    const PlanOptions options = Options(512, 20);
    const StepCostModel cost = Cost();
    std::vector<WorkItem> work = {Item(1, WorkKind::kIngest, 8000, 0)};
    StepPlan plan = PlanStep(work, options, cost);
    EXPECT_EQ(TokensFor(plan, 1), 512);
    work[0].n_tokens_left -= 512;

    // The question (40 tokens) arrives: the very next step prefills it.
    work.push_back(Item(2, WorkKind::kQueryPrefill, 40, 1));
    plan = PlanStep(work, options, cost);
    EXPECT_EQ(TokensFor(plan, 2), 40);
    EXPECT_EQ(plan.chunks.front().id, 2u);
    EXPECT_EQ(TokensFor(plan, 1), 110);  // 150 tokens fit the target
    EXPECT_LE(cost.PredictMs(plan.n_tokens), 20.0);
    work[0].n_tokens_left -= TokensFor(plan, 1);
    work[1] = Decode(2, 1);

    // Every decode step of the answer: the query's token, ingest still moving.
    for (int step = 0; step < 20; ++step) {
        plan = PlanStep(work, options, cost);
        EXPECT_EQ(TokensFor(plan, 2), 1);
        EXPECT_EQ(TokensFor(plan, 1), 149);
        work[0].n_tokens_left -= TokensFor(plan, 1);
    }

    // The answer done, ingest gets the whole batch again.
    work.pop_back();
    plan = PlanStep(work, options, cost);
    EXPECT_EQ(TokensFor(plan, 1), 512);
}

TEST(PlanStep, TwoIngestSessionsSplitTheRoomEvenly) {
    const std::vector<WorkItem> work = {Item(1, WorkKind::kIngest, 5000, 0),
                                        Item(2, WorkKind::kIngest, 5000, 1)};
    const StepPlan plan = PlanStep(work, Options(512), Cost());
    EXPECT_EQ(TokensFor(plan, 1), 256);
    EXPECT_EQ(TokensFor(plan, 2), 256);
}

TEST(PlanStep, ASmallIngestSessionDoesNotWasteItsShare) {
    const std::vector<WorkItem> work = {Item(1, WorkKind::kIngest, 5000, 0),
                                        Item(2, WorkKind::kIngest, 50, 1),
                                        Item(3, WorkKind::kIngest, 5000, 2)};
    const StepPlan plan = PlanStep(work, Options(512), Cost());
    EXPECT_EQ(TokensFor(plan, 2), 50);
    EXPECT_EQ(TokensFor(plan, 1), 231);  // (512 - 50) / 2
    EXPECT_EQ(TokensFor(plan, 3), 231);
    EXPECT_EQ(plan.n_tokens, 512);
}

TEST(PlanStep, TheIndivisibleRemainderGoesToTheOldestIngest) {
    const std::vector<WorkItem> work = {Item(1, WorkKind::kIngest, 100, 9),
                                        Item(2, WorkKind::kIngest, 100, 3),
                                        Item(3, WorkKind::kIngest, 100, 5)};
    const StepPlan plan = PlanStep(work, Options(11, 0, 0), Cost());
    EXPECT_EQ(TokensFor(plan, 2), 4);
    EXPECT_EQ(TokensFor(plan, 3), 4);
    EXPECT_EQ(TokensFor(plan, 1), 3);
}

TEST(PlanStep, StatelessAndIngestShareTheLeftover) {
    std::vector<WorkItem> work = {Item(1, WorkKind::kStatelessPrefill, 1000, 0),
                                  Item(2, WorkKind::kIngest, 1000, 0)};
    PlanOptions options = Options(100, 0, 0);
    StepPlan plan = PlanStep(work, options, Cost());
    EXPECT_EQ(TokensFor(plan, 1), 50);
    EXPECT_EQ(TokensFor(plan, 2), 50);

    options.stateless_share = 0.25;
    plan = PlanStep(work, options, Cost());
    EXPECT_EQ(TokensFor(plan, 1), 25);
    EXPECT_EQ(TokensFor(plan, 2), 75);

    options.stateless_share = 0.0;
    plan = PlanStep(work, options, Cost());
    EXPECT_EQ(TokensFor(plan, 1), 0);
    EXPECT_EQ(TokensFor(plan, 2), 100);
}

TEST(PlanStep, AnUnusedShareFlowsToTheOtherKind) {
    std::vector<WorkItem> work = {Item(1, WorkKind::kStatelessPrefill, 10, 0),
                                  Item(2, WorkKind::kIngest, 1000, 0)};
    StepPlan plan = PlanStep(work, Options(100, 0, 0), Cost());
    EXPECT_EQ(TokensFor(plan, 1), 10);
    EXPECT_EQ(TokensFor(plan, 2), 90);

    work[0].n_tokens_left = 1000;
    work[1].n_tokens_left = 10;
    plan = PlanStep(work, Options(100, 0, 0), Cost());
    EXPECT_EQ(TokensFor(plan, 1), 90);
    EXPECT_EQ(TokensFor(plan, 2), 10);
}

TEST(PlanStep, StatelessPrefillsAreServedOldestFirstAndCutByTheTarget) {
    const std::vector<WorkItem> work = {Item(1, WorkKind::kStatelessPrefill, 100, 8),
                                        Item(2, WorkKind::kStatelessPrefill, 100, 2), Decode(3, 9)};
    const StepPlan plan = PlanStep(work, Options(512, 20), Cost());
    EXPECT_EQ(TokensFor(plan, 2), 100);
    EXPECT_EQ(TokensFor(plan, 1), 49);  // 150 - 1 - 100
    EXPECT_TRUE(plan.latency_bound);
}

TEST(PlanStep, MinIngestKeepsIngestMovingWhenTheTargetIsExhausted) {
    const StepCostModel slow(30.0, 1.0);  // even an empty step misses the 20 ms target
    const std::vector<WorkItem> work = {Item(1, WorkKind::kIngest, 8000, 0), Decode(2, 1),
                                        Decode(3, 2), Item(4, WorkKind::kBackground, 100, 0)};
    const StepPlan plan = PlanStep(work, Options(512, 20, 16), slow);
    EXPECT_EQ(plan.query_tokens, 2);
    EXPECT_EQ(plan.leftover_budget, 0);
    EXPECT_EQ(TokensFor(plan, 1), 16);
    EXPECT_EQ(TokensFor(plan, 4), 0);  // background gets nothing past the target
    EXPECT_EQ(plan.n_tokens, 18);
    EXPECT_TRUE(plan.latency_bound);
}

TEST(PlanStep, MinIngestIsSplitFairlyAndCappedByDemandAndBatch) {
    const StepCostModel slow(30.0, 1.0);
    std::vector<WorkItem> work = {Item(1, WorkKind::kIngest, 8000, 0),
                                  Item(2, WorkKind::kIngest, 8000, 1), Decode(3, 2)};
    StepPlan plan = PlanStep(work, Options(512, 20, 16), slow);
    EXPECT_EQ(TokensFor(plan, 1), 8);
    EXPECT_EQ(TokensFor(plan, 2), 8);

    work[1].n_tokens_left = 3;  // wants less than its share
    plan = PlanStep(work, Options(512, 20, 16), slow);
    EXPECT_EQ(TokensFor(plan, 1), 13);
    EXPECT_EQ(TokensFor(plan, 2), 3);

    work = {Item(1, WorkKind::kIngest, 8000, 0), Decode(2, 0), Decode(3, 0), Decode(4, 0)};
    plan = PlanStep(work, Options(10, 20, 16), slow);  // only 7 tokens of batch room left
    EXPECT_EQ(TokensFor(plan, 1), 7);
    EXPECT_EQ(plan.n_tokens, 10);
}

TEST(PlanStep, MinIngestDoesNotLowerAnIngestShareAboveIt) {
    const std::vector<WorkItem> work = {Item(1, WorkKind::kIngest, 8000, 0), Decode(2, 1)};
    const StepPlan plan = PlanStep(work, Options(512, 20, 16), Cost());
    EXPECT_EQ(TokensFor(plan, 1), 149);
}

TEST(PlanStep, BackgroundOnlyGetsLeftovers) {
    std::vector<WorkItem> work = {Item(1, WorkKind::kBackground, 1000, 0),
                                  Item(2, WorkKind::kIngest, 100, 5)};
    StepPlan plan = PlanStep(work, Options(512), Cost());
    EXPECT_EQ(TokensFor(plan, 2), 100);
    EXPECT_EQ(TokensFor(plan, 1), 412);

    work[1].n_tokens_left = 1000;  // ingest wants it all: nothing is left over
    plan = PlanStep(work, Options(512), Cost());
    EXPECT_EQ(TokensFor(plan, 1), 0);

    work = {Item(1, WorkKind::kBackground, 1000, 0), Item(2, WorkKind::kIngest, 100, 5),
            Decode(3, 6)};
    plan = PlanStep(work, Options(512, 20), Cost());  // limit 150, but a query decodes
    EXPECT_EQ(TokensFor(plan, 2), 100);
    EXPECT_EQ(TokensFor(plan, 1), 0);
    EXPECT_EQ(plan.n_tokens, 101);
}

// Questions first: a step without queries keeps ingest and background within the idle target,
// so a question that arrives meanwhile waits for at most that step.
TEST(PlanStep, IdleTargetCutsDataOnlySteps) {
    PlanOptions options = Options(512);
    options.idle_target_step_ms = 20;  // 150 tokens at 5 ms + 0.1 ms a token
    std::vector<WorkItem> work = {Item(1, WorkKind::kIngest, 8000, 0),
                                  Item(2, WorkKind::kIngest, 8000, 1)};
    StepPlan plan = PlanStep(work, options, Cost());
    EXPECT_EQ(plan.n_tokens, 150);
    EXPECT_EQ(TokensFor(plan, 1), 75);
    EXPECT_EQ(TokensFor(plan, 2), 75);
    EXPECT_TRUE(plan.latency_bound);

    work.push_back(Item(3, WorkKind::kBackground, 40, 2));  // shares the idle room, after ingest
    work[1].n_tokens_left = 10;
    plan = PlanStep(work, options, Cost());
    EXPECT_EQ(TokensFor(plan, 2), 10);
    EXPECT_EQ(TokensFor(plan, 1), 140);
    EXPECT_EQ(TokensFor(plan, 3), 0);
    work[0].n_tokens_left = 100;
    plan = PlanStep(work, options, Cost());
    EXPECT_EQ(TokensFor(plan, 3), 40);
    EXPECT_EQ(plan.n_tokens, 150);

    options.idle_target_step_ms = 1;  // below the fixed cost: min_idle_tokens still move
    plan = PlanStep(work, options, Cost());
    EXPECT_EQ(plan.n_tokens, options.min_idle_tokens);

    options.idle_target_step_ms = 0;  // no idle target: the batch fills
    work = {Item(1, WorkKind::kIngest, 8000, 0)};
    plan = PlanStep(work, options, Cost());
    EXPECT_EQ(plan.n_tokens, 512);
    EXPECT_FALSE(plan.latency_bound);
}

TEST(PlanStep, IdleTargetLeavesStatelessAndQueryStepsAlone) {
    PlanOptions options = Options(512);
    options.idle_target_step_ms = 20;
    // A stateless request is waited for: not cut by the idle target (ingest is, beside it).
    std::vector<WorkItem> work = {Item(1, WorkKind::kStatelessPrefill, 8000, 0),
                                  Item(2, WorkKind::kIngest, 8000, 1)};
    StepPlan plan = PlanStep(work, options, Cost());
    EXPECT_EQ(TokensFor(plan, 1), 256);
    EXPECT_EQ(TokensFor(plan, 2), 150);
    // With a query in the step the step target rules, not the idle one.
    options.target_step_ms = 40;  // 350 tokens
    work = {Item(1, WorkKind::kIngest, 8000, 0), Decode(2, 1)};
    plan = PlanStep(work, options, Cost());
    EXPECT_EQ(TokensFor(plan, 1), 349);
}

TEST(PlanStep, IsDeterministicAndIndependentOfInputOrder) {
    std::vector<WorkItem> work = {
        Item(1, WorkKind::kIngest, 700, 3), Decode(2, 1), Item(3, WorkKind::kIngest, 40, 2),
        Item(4, WorkKind::kStatelessPrefill, 300, 0), Item(5, WorkKind::kQueryPrefill, 60, 4)};
    const StepPlan a = PlanStep(work, Options(256, 30), Cost());
    std::reverse(work.begin(), work.end());
    const StepPlan b = PlanStep(work, Options(256, 30), Cost());
    EXPECT_EQ(a.chunks, b.chunks);
}

TEST(PlanStepDeathTest, RejectsInvalidOptions) {
    const std::vector<WorkItem> work = {Decode(1, 0)};
    PlanOptions options = Options(0);
    EXPECT_DEATH(PlanStep(work, options, Cost()), "n_batch");
    options = Options(512);
    options.stateless_share = 1.5;
    EXPECT_DEATH(PlanStep(work, options, Cost()), "stateless_share");
    options = Options(512, -1);
    EXPECT_DEATH(PlanStep(work, options, Cost()), "target_step_ms");
    options = Options(512, 0, -1);
    EXPECT_DEATH(PlanStep(work, options, Cost()), "min_ingest_tokens");
    options = Options(512);
    options.idle_target_step_ms = -1;
    EXPECT_DEATH(PlanStep(work, options, Cost()), "idle_target_step_ms");
    options = Options(512);
    options.min_idle_tokens = 0;
    EXPECT_DEATH(PlanStep(work, options, Cost()), "min_idle_tokens");
}

// ---- Randomized invariants --------------------------------------------------------------------

struct RandomCase {
    std::vector<WorkItem> work;
    PlanOptions options;
    StepCostModel cost;
};

RandomCase MakeRandomCase(std::mt19937& rng) {
    auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    RandomCase c{{}, {}, StepCostModel(uniform(0, 20), uniform(0, 100) / 100.0)};
    c.options.n_batch = uniform(0, 3) == 0 ? uniform(1, 8) : uniform(1, 600);
    c.options.target_step_ms = uniform(0, 2) == 0 ? 0.0 : uniform(1, 100);
    c.options.min_ingest_tokens = uniform(0, 64);
    c.options.stateless_share = uniform(0, 10) / 10.0;
    const int n_items = uniform(0, 24);
    for (int i = 0; i < n_items; ++i) {
        const auto kind = static_cast<WorkKind>(uniform(0, 4));
        const int n = uniform(0, 5) == 0 ? uniform(-2, 3) : uniform(1, 3000);
        c.work.push_back(Item(static_cast<std::uint64_t>(i) + 1, kind, n,
                              static_cast<std::uint64_t>(uniform(0, 10))));
    }
    return c;
}

int Want(const WorkItem& item) {
    if (item.n_tokens_left <= 0) {
        return 0;
    }
    return item.n_tokens_left;
}

bool Older(const WorkItem& a, const WorkItem& b) {
    return a.arrival != b.arrival ? a.arrival < b.arrival : a.id < b.id;
}

// The basic contract: chunk sizes, sums, order, the batch cap.
void CheckShape(const RandomCase& c, const StepPlan& plan) {
    std::map<std::uint64_t, const WorkItem*> by_id;
    for (const WorkItem& item : c.work) {
        by_id[item.id] = &item;
    }
    int sum = 0;
    int query = 0;
    std::map<std::uint64_t, int> seen;
    for (std::size_t i = 0; i < plan.chunks.size(); ++i) {
        const PlannedChunk& chunk = plan.chunks[i];
        ASSERT_TRUE(by_id.contains(chunk.id));
        const WorkItem& item = *by_id[chunk.id];
        ASSERT_EQ(chunk.kind, item.kind);
        ASSERT_GE(chunk.n_tokens, 1);
        ASSERT_LE(chunk.n_tokens, Want(item));
        ASSERT_EQ(++seen[chunk.id], 1) << "one chunk per item";
        if (i > 0) {
            ASSERT_LE(plan.chunks[i - 1].kind, chunk.kind) << "priority order";
        }
        sum += chunk.n_tokens;
        const bool is_query =
            chunk.kind == WorkKind::kDecode || chunk.kind == WorkKind::kQueryPrefill;
        query += is_query ? chunk.n_tokens : 0;
    }
    ASSERT_EQ(sum, plan.n_tokens);
    ASSERT_EQ(query, plan.query_tokens);
    ASSERT_LE(plan.n_tokens, c.options.n_batch);
}

struct Demands {
    std::int64_t query = 0;
    std::int64_t stateless = 0;
    std::int64_t ingest = 0;
    std::int64_t background = 0;
};

Demands DemandsOf(const std::vector<WorkItem>& work) {
    Demands d;
    for (const WorkItem& item : work) {
        switch (item.kind) {
            case WorkKind::kDecode:
            case WorkKind::kQueryPrefill:
                d.query += Want(item);
                break;
            case WorkKind::kStatelessPrefill:
                d.stateless += Want(item);
                break;
            case WorkKind::kIngest:
                d.ingest += Want(item);
                break;
            case WorkKind::kBackground:
                d.background += Want(item);
                break;
        }
    }
    return d;
}

// Queries: served first and greedily, oldest first within a kind; only n_batch cuts them.
void CheckQueries(const RandomCase& c, const StepPlan& plan, const Demands& d) {
    ASSERT_EQ(plan.query_tokens, std::min<std::int64_t>(d.query, c.options.n_batch));
    for (const WorkItem& a : c.work) {
        for (const WorkItem& b : c.work) {
            const bool same_queue =
                a.kind == b.kind &&
                (a.kind == WorkKind::kDecode || a.kind == WorkKind::kQueryPrefill ||
                 a.kind == WorkKind::kStatelessPrefill || a.kind == WorkKind::kBackground);
            if (same_queue && Older(a, b) && TokensFor(plan, b.id) > 0) {
                ASSERT_EQ(TokensFor(plan, a.id), Want(a)) << "a younger item was served first";
            }
        }
    }
}

// The latency limit, the leftover split, min_ingest, background, and no idle room.
void CheckLeftover(const RandomCase& c, const StepPlan& plan, const Demands& d) {
    const PlanOptions& o = c.options;
    int limit = o.n_batch;
    if (plan.query_tokens > 0 && o.target_step_ms > 0) {
        limit = std::min(o.n_batch,
                         std::max(plan.query_tokens, c.cost.MaxTokensWithin(o.target_step_ms)));
    }
    ASSERT_EQ(plan.leftover_budget, limit - plan.query_tokens);
    const int stateless = TokensOfKind(plan, WorkKind::kStatelessPrefill);
    const int ingest = TokensOfKind(plan, WorkKind::kIngest);
    const int background = TokensOfKind(plan, WorkKind::kBackground);
    ASSERT_LE(plan.query_tokens + stateless + background, std::max(limit, plan.query_tokens));
    if (plan.n_tokens > limit) {  // only min_ingest may pass the target
        ASSERT_LE(ingest, o.min_ingest_tokens);
        ASSERT_EQ(background, 0);
    }
    if (plan.query_tokens > 0) {  // background never shares a step with queries
        ASSERT_EQ(background, 0);
    }
    const std::int64_t background_want = plan.query_tokens > 0 ? 0 : d.background;
    const std::int64_t total_want = d.query + d.stateless + d.ingest + background_want;
    ASSERT_GE(plan.n_tokens, std::min<std::int64_t>(limit, total_want)) << "idle room";
    const std::int64_t ingest_floor = std::min<std::int64_t>(
        {d.ingest, o.min_ingest_tokens,
         o.n_batch - plan.query_tokens - static_cast<std::int64_t>(stateless)});
    ASSERT_GE(ingest, ingest_floor);
    if (stateless < d.stateless && ingest < d.ingest &&
        stateless + ingest == plan.leftover_budget) {
        ASSERT_EQ(stateless,
                  static_cast<int>(std::floor(plan.leftover_budget * o.stateless_share)));
    }
    if (plan.latency_bound) {
        ASSERT_LT(limit, o.n_batch);
    }
}

// Water-filling: an ingest item that got less than it wanted got at least as much as any other,
// give or take the one-token remainder.
void CheckIngestFairness(const RandomCase& c, const StepPlan& plan) {
    for (const WorkItem& a : c.work) {
        if (a.kind != WorkKind::kIngest || TokensFor(plan, a.id) >= Want(a)) {
            continue;
        }
        for (const WorkItem& b : c.work) {
            if (b.kind == WorkKind::kIngest && b.id != a.id) {
                ASSERT_LE(TokensFor(plan, b.id), TokensFor(plan, a.id) + 1);
            }
        }
    }
}

TEST(PlanStepProperty, InvariantsHoldOnRandomWork) {
    std::mt19937 rng(20240601);
    for (int iteration = 0; iteration < 4000; ++iteration) {
        RandomCase c = MakeRandomCase(rng);
        const StepPlan plan = PlanStep(c.work, c.options, c.cost);
        SCOPED_TRACE("iteration " + std::to_string(iteration));
        const Demands d = DemandsOf(c.work);
        ASSERT_NO_FATAL_FAILURE(CheckShape(c, plan));
        ASSERT_NO_FATAL_FAILURE(CheckQueries(c, plan, d));
        ASSERT_NO_FATAL_FAILURE(CheckLeftover(c, plan, d));
        ASSERT_NO_FATAL_FAILURE(CheckIngestFairness(c, plan));

        std::shuffle(c.work.begin(), c.work.end(), rng);
        ASSERT_EQ(PlanStep(c.work, c.options, c.cost).chunks, plan.chunks) << "input order";
    }
}

}  // namespace
}  // namespace kvs
