// Flash queries on real weights: a cached answer is the live answer at the same version, events
// only when the answer changes, live queries never wait for evaluations, overtaken evaluations
// are dropped or finished by the documented rule, removal, the time cap, and a session with 20
// questions under a fast data stream.

#include <atomic>
#include <chrono>
#include <gtest/gtest.h>
#include <memory>
#include <optional>

#include "model/flash_fixture.h"

namespace kvs::test {
namespace {

// A cached flash answer equals what a live query computes at the same version, token for token,
// and both equal the stateless oracle; a cached answer costs no engine step.
TEST_P(Flash, CachedAnswerEqualsLiveQuery) {
    auto engine = OpenEngine(Options());
    ASSERT_TRUE(engine);
    SessionOptions so{.prefix = "Notes."};
    so.flash = {F(0), F(1)};
    auto id = *engine->CreateSession(so);
    const FlashId third = *engine->AddFlash(id, F(2));
    for (int round = 0; round < 2; ++round) {
        ASSERT_TRUE(engine->Append(id, DataText(round)).ok());
        engine->RunUntilIdle();
        EXPECT_EQ(engine->Info(id)->n_flash_stale, 0);
        for (const FlashOptions& f : {F(0), F(1), F(2)}) {
            const std::uint64_t steps = CounterValue(*engine, "kvs_steps_total");
            auto cached = engine->Query(id, FlashQuery(f));
            ASSERT_TRUE(cached.ok()) << cached.status().ToString();
            EXPECT_EQ(CounterValue(*engine, "kvs_steps_total"), steps) << "a hit runs no step";
            EXPECT_TRUE(cached->cached);
            EXPECT_NE(cached->flash_id, 0U);
            EXPECT_EQ(cached->version, engine->Info(id)->version);
            auto live = engine->Query(id, Live(f));
            ASSERT_TRUE(live.ok());
            EXPECT_FALSE(live->cached);
            // The evaluation may have shared its batches with the other questions' evaluations:
            // the near-tie rule (query/agreement.h), on the live answer's logits.
            const std::string what = GetParam() + " " + f.question;
            EXPECT_TRUE(AgreeTokens(cached->tokens, *live, what + ": cached vs live"));
            if (cached->tokens == live->tokens) {
                EXPECT_EQ(cached->text, live->text);
                EXPECT_NEAR(cached->confidence, live->confidence, ConfidenceBound(*live));
            }
            EXPECT_EQ(cached->version, live->version);
            QueryOptions oracle = Live(f);
            auto stateless = engine->QueryStateless(*engine->SessionTokens(id), oracle);
            ASSERT_TRUE(stateless.ok());
            EXPECT_TRUE(Agree(*stateless, *live, what + ": stateless vs live"));
        }
    }
    // Surrounding whitespace does not matter; other options do.
    QueryOptions padded = FlashQuery(F(2));
    padded.question = "  \n" + padded.question + "\t ";
    EXPECT_TRUE(engine->Query(id, padded)->cached);
    EXPECT_EQ(engine->Query(id, padded)->flash_id, third);
    QueryOptions longer = FlashQuery(F(2));
    longer.max_tokens += 1;
    EXPECT_FALSE(engine->Query(id, longer)->cached);
}

// A result one version behind answers only a query that accepts one version of staleness.
TEST_P(Flash, StaleResultsNeedTheCallersConsent) {
    auto engine = OpenEngine(Options());
    ASSERT_TRUE(engine);
    auto id = *engine->CreateSession({.prefix = "Notes."});
    ASSERT_TRUE(engine->AddFlash(id, F(0)).ok());
    ASSERT_TRUE(engine->Append(id, DataText(0)).ok());
    engine->RunUntilIdle();
    ASSERT_TRUE(engine->SubmitAppend(id, DataText(1)).ok());  // accepted, not ingested
    QueryOptions q = FlashQuery(F(0));
    q.max_staleness = 1;
    auto stale_ok = engine->Query(id, q);
    ASSERT_TRUE(stale_ok.ok());
    EXPECT_TRUE(stale_ok->cached);
    EXPECT_EQ(stale_ok->version, 1U);
    q.max_staleness = 0;
    auto fresh = engine->Query(id, q);  // runs live at version 2
    ASSERT_TRUE(fresh.ok());
    EXPECT_FALSE(fresh->cached);
    EXPECT_EQ(fresh->version, 2U);
    EXPECT_GE(CounterValue(*engine, "kvs_flash_misses_total"), 1U);
}

// Each evaluation says whether its answer changed; `changed` is exactly "differs from the
// previous answer", and an unchanged answer happens (so subscribers would see no event).
TEST_P(Flash, ChangedMeansTheAnswerDiffers) {
    auto engine = OpenEngine(Options());
    ASSERT_TRUE(engine);
    auto id = *engine->CreateSession({.prefix = "Notes."});
    const FlashId f = *engine->AddFlash(id, F(0, 1));
    std::vector<EngineEvent> events;
    for (int i = 0; i < 8; ++i) {
        auto appended = engine->Append(id, i % 2 ? "The cat sat." : "The dog ran.");
        ASSERT_TRUE(appended.ok()) << appended.status().ToString();
        engine->RunUntilIdle();
        for (EngineEvent& e : FlashEvents(*engine)) {
            events.push_back(std::move(e));
        }
    }
    ASSERT_EQ(events.size(), 8U) << "one evaluation per update";
    int n_unchanged = 0;
    for (std::size_t i = 0; i < events.size(); ++i) {
        EXPECT_EQ(events[i].flash.id, f);
        EXPECT_EQ(events[i].version, i + 1);
        const bool differs = i == 0 || events[i].flash.answer != events[i - 1].flash.answer;
        EXPECT_EQ(events[i].flash.changed, differs) << i;
        n_unchanged += differs ? 0 : 1;
    }
    EXPECT_GT(n_unchanged, 0) << "the data repeats: some answer must stay the same";
    EXPECT_EQ(CounterValue(*engine, "kvs_flash_changed_total"), 8U - n_unchanged);
}

// Evaluations never hold a live query back: a query on a session whose questions are being
// evaluated, and one on another session, take as many steps as on an engine without questions,
// and no evaluation token shares a step with them (background work waits while queries run).
TEST_P(Flash, LiveQueriesNeverWaitForEvaluations) {
    auto steps_to_answer = [](Engine& e, SessionId id, const QueryOptions& q) {
        auto qid = e.SubmitQuery(id, q);
        EXPECT_TRUE(qid.ok());
        for (int steps = 1; steps < 10'000; ++steps) {
            EXPECT_EQ(e.Step().n_flash_tokens, 0) << "step " << steps << " of a live query";
            for (auto& f : e.TakeFinished()) {
                if (f.id == *qid) {
                    EXPECT_TRUE(f.answer.ok());
                    return steps;
                }
            }
        }
        ADD_FAILURE() << "the query did not finish in 10,000 steps";
        return 1 << 20;  // fails every comparison with a finished query's count
    };
    QueryOptions live;
    live.question = Question(3);
    live.max_tokens = 8;
    live.ignore_eog = true;
    int idle_steps[2] = {0, 0};
    int busy_steps[2] = {0, 0};
    for (bool with_flash : {false, true}) {
        auto engine = OpenEngine(Options());
        ASSERT_TRUE(engine);
        auto a = *engine->CreateSession({.prefix = "Notes."});
        auto b = *engine->CreateSession({.prefix = "Notes."});
        for (SessionId id : {a, b}) {
            if (with_flash) {
                for (int i = 0; i < 5; ++i) {
                    ASSERT_TRUE(engine->AddFlash(id, F(i, 16)).ok());
                }
            }
            ASSERT_TRUE(engine->SubmitAppend(id, DataText(static_cast<int>(id))).ok());
        }
        // Ingest, then one more step: evaluations under way.
        while (engine->Info(a)->n_pending_tokens + engine->Info(b)->n_pending_tokens > 0) {
            engine->Step();
        }
        engine->Step();
        if (with_flash) {
            ASSERT_GT(engine->metrics().GetGauge("kvs_flash_running", "").value(), 0);
        }
        int* out = with_flash ? busy_steps : idle_steps;
        out[0] = steps_to_answer(*engine, a, live);  // its own session's evaluation yields
        out[1] = steps_to_answer(*engine, b, live);
    }
    EXPECT_EQ(idle_steps[0], 8);
    EXPECT_LE(busy_steps[0], idle_steps[0] + 1);
    EXPECT_LE(busy_steps[1], idle_steps[1] + 1);
}

// New data overtakes a running evaluation: dropped while early (twice in a row at most), the
// third one finishes and publishes its (older) version; the question catches up afterwards.
TEST_P(Flash, OvertakenEvaluationsAreDroppedThenFinished) {
    EngineOptions o = Options();
    o.n_sessions = 2;
    o.n_batch = 8;  // the question's prefill takes more than one step
    auto engine = OpenEngine(o);
    ASSERT_TRUE(engine);
    auto id = *engine->CreateSession({.prefix = "Notes."});
    ASSERT_TRUE(engine->AddFlash(id, F(0, 32)).ok());
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(engine->SubmitAppend(id, DataText(i)).ok());
        StepUntilEvaluating(*engine);
        ASSERT_TRUE(engine->SubmitAppend(id, "More.").ok());  // overtakes it during its prefill
        engine->Step();
    }
    EXPECT_EQ(CounterValue(*engine, "kvs_flash_dropped_total"), 2U);
    EXPECT_EQ(CounterValue(*engine, "kvs_flash_finished_overtaken_total"), 1U);
    engine->RunUntilIdle();
    std::vector<std::uint64_t> versions;
    for (const EngineEvent& e : FlashEvents(*engine)) {
        versions.push_back(e.version);
    }
    const std::uint64_t last = engine->Info(id)->accepted_version;
    ASSERT_EQ(versions.size(), 2U);
    EXPECT_LT(versions[0], last) << "the finished evaluation answers the version it started at";
    EXPECT_EQ(versions[1], last);
    EXPECT_EQ(engine->Info(id)->n_flash_stale, 0);
}

// Removing a question stops its evaluations and events, also while it runs.
TEST_P(Flash, RemovingAQuestionStopsItsEvents) {
    auto engine = OpenEngine(Options());
    ASSERT_TRUE(engine);
    auto id = *engine->CreateSession({.prefix = "Notes."});
    const FlashId keep = *engine->AddFlash(id, F(0));
    const FlashId gone = *engine->AddFlash(id, F(1));
    ASSERT_TRUE(engine->Append(id, DataText(0)).ok());
    engine->RunUntilIdle();
    EXPECT_EQ(FlashEvents(*engine).size(), 2U);
    ASSERT_TRUE(engine->SubmitAppend(id, DataText(1)).ok());
    engine->Step();
    engine->Step();
    ASSERT_TRUE(engine->RemoveFlash(id, gone).ok());  // possibly while evaluating
    engine->RunUntilIdle();
    const std::vector<EngineEvent> events = FlashEvents(*engine);
    for (const EngineEvent& e : events) {
        EXPECT_EQ(e.flash.id, keep);
    }
    // The kept question still answers the new data: its event for the new version came.
    ASSERT_FALSE(events.empty()) << "the kept question was not evaluated again";
    EXPECT_EQ(events.back().version, engine->Info(id)->version);
    EXPECT_EQ(engine->Info(id)->version, 2U);
    EXPECT_EQ(engine->Info(id)->n_flash, 1);
    EXPECT_EQ(engine->Info(id)->n_tokens, static_cast<int>(engine->SessionTokens(id)->size()));
    EXPECT_EQ(engine->Info(id)->n_cached, engine->Info(id)->n_tokens) << "no evaluation left over";
    EXPECT_EQ(engine->RemoveFlash(id, gone).code(), StatusCode::kNotFound);
    EXPECT_FALSE(engine->Query(id, FlashQuery(F(1)))->cached);
    ASSERT_EQ(engine->ListFlash(id)->size(), 1U);
    EXPECT_EQ(engine->ListFlash(id)->front().id, keep);
}

// When evaluations must wait, the question stale the longest goes first.
TEST_P(Flash, MostStaleQuestionGoesFirst) {
    EngineOptions o = Options();
    o.flash_max_running = 1;
    // Both appends are ingested in one step, so both questions can start at once (with an idle
    // step target, the shorter append could be ingested first and its question start alone).
    o.step_target = StepTarget::kOff;
    auto engine = OpenEngine(o);
    ASSERT_TRUE(engine);
    auto a = *engine->CreateSession({.prefix = "Notes."});
    auto b = *engine->CreateSession({.prefix = "Notes."});
    ASSERT_TRUE(engine->AddFlash(a, F(0)).ok());
    ASSERT_TRUE(engine->AddFlash(b, F(0)).ok());
    engine->RunUntilIdle();
    FlashEvents(*engine);
    ASSERT_TRUE(engine->SubmitAppend(b, DataText(0)).ok());  // b is stale first
    ASSERT_TRUE(engine->SubmitAppend(a, DataText(1)).ok());
    engine->RunUntilIdle();
    auto events = FlashEvents(*engine);
    ASSERT_EQ(events.size(), 2U);
    EXPECT_EQ(events[0].session, b);
    EXPECT_EQ(events[1].session, a);
}

// The time cap: with a tiny share the budget runs dry, evaluations wait, and the metrics say how
// far behind the questions are.
TEST_P(Flash, TimeCapHoldsEvaluationsBack) {
    EngineOptions o = Options();
    o.flash_max_share = 0.0005;  // 1 ms per 2 s window
    o.flash_max_running = 1;
    auto engine = OpenEngine(o);
    ASSERT_TRUE(engine);
    auto id = *engine->CreateSession({.prefix = "Notes."});
    for (int i = 0; i < 20; ++i) {
        ASSERT_TRUE(engine->AddFlash(id, F(i, 16)).ok());
    }
    ASSERT_TRUE(engine->Append(id, DataText(0)).ok());
    engine->RunUntilIdle();  // returns when the cap holds the rest back
    const auto evaluated = CounterValue(*engine, "kvs_flash_evaluations_total");
    EXPECT_GE(evaluated, 1U);
    EXPECT_LT(evaluated, 20U);
    EXPECT_GT(CounterValue(*engine, "kvs_flash_budget_waits_total"), 0U);
    EXPECT_EQ(engine->Info(id)->n_flash_stale, 20 - static_cast<int>(evaluated));
    EXPECT_GE(engine->metrics().GetGauge("kvs_flash_lag_versions", "").value(), 1.0);
    EXPECT_LT(engine->metrics().GetGauge("kvs_flash_budget_credit_ms", "").value(), 0.0);
}

// A live answer to a registered question becomes its result: that version is not evaluated
// again, and the next ask is a cache hit with the same answer.
TEST_P(Flash, ALiveAnswerIsKeptAsTheResult) {
    auto engine = OpenEngine(Options());
    ASSERT_TRUE(engine);
    auto id = *engine->CreateSession({.prefix = "Notes."});
    ASSERT_TRUE(engine->AddFlash(id, F(1)).ok());
    ASSERT_TRUE(engine->SubmitAppend(id, DataText(3)).ok());
    auto live = engine->Query(id, FlashQuery(F(1)));  // no result yet: computed live
    ASSERT_TRUE(live.ok());
    EXPECT_FALSE(live->cached);
    EXPECT_FALSE(live->joined);
    engine->RunUntilIdle();
    EXPECT_EQ(CounterValue(*engine, "kvs_flash_live_results_total"), 1U);
    EXPECT_EQ(CounterValue(*engine, "kvs_flash_evaluations_total"), 0U) << "not computed twice";
    auto hit = engine->Query(id, FlashQuery(F(1)));
    ASSERT_TRUE(hit.ok());
    EXPECT_TRUE(hit->cached);
    EXPECT_EQ(hit->version, live->version);
    EXPECT_EQ(hit->tokens, live->tokens);
    EXPECT_EQ(engine->Info(id)->n_flash_stale, 0);
}

// Bad registrations are refused and change nothing.
TEST_P(Flash, BadRegistrationsAreRefused) {
    EngineOptions o = Options();
    o.max_flash_per_session = 2;
    auto engine = OpenEngine(o);
    ASSERT_TRUE(engine);
    auto id = *engine->CreateSession({.prefix = "Notes."});
    FlashOptions f = F(0);
    f.question = " \t";
    EXPECT_EQ(engine->AddFlash(id, f).status().code(), StatusCode::kInvalidArgument);
    f.question = "\xff";
    EXPECT_EQ(engine->AddFlash(id, f).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(engine->AddFlash(id, F(0, 257)).status().code(), StatusCode::kInvalidArgument);
    ASSERT_TRUE(engine->AddFlash(id, F(0)).ok());
    FlashOptions again = F(0);
    again.question = " " + again.question;
    EXPECT_EQ(engine->AddFlash(id, again).status().code(), StatusCode::kInvalidArgument)
        << "registered twice";
    ASSERT_TRUE(engine->RemoveFlash(id, engine->ListFlash(id)->front().id).ok());
    EXPECT_EQ(engine->AddFlash(id + 100, F(0)).status().code(), StatusCode::kNotFound);
    ASSERT_TRUE(engine->AddFlash(id, F(0)).ok());
    ASSERT_TRUE(engine->AddFlash(id, F(1)).ok());
    EXPECT_EQ(engine->AddFlash(id, F(2)).status().code(), StatusCode::kResourceExhausted);
    EXPECT_EQ(engine->Info(id)->n_flash, 2);
    // A session created with a bad question is not created at all.
    SessionOptions so;
    so.flash = {F(0), F(1, 0)};
    EXPECT_EQ(engine->CreateSession(so).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(engine->n_sessions(), 1);
}

INSTANTIATE_TEST_SUITE_P(Models, Flash, ::testing::ValuesIn(TestModelNames()));

}  // namespace
}  // namespace kvs::test
