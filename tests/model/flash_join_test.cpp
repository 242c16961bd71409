// Flash evaluations on copies of their sessions (runtime/engine_flash.cpp): an ask joins the
// evaluation that answers it, a cancelled join leaves it in the background, a live query for
// another question runs beside it without cancelling it, and a session's questions evaluate
// together, each equal to the question evaluated alone.

#include <atomic>
#include <gtest/gtest.h>
#include <memory>
#include <optional>
#include <string>

#include "model/flash_fixture.h"

namespace kvs::test {
namespace {

class FlashJoin : public Flash {};

// Join, never duplicate: an ask that comes while its question's evaluation runs waits for that
// evaluation (at query priority) and is answered by it; the version is evaluated once, and the
// answer is what a live query computes at that version.
TEST_P(FlashJoin, AnAskJoinsTheRunningEvaluation) {
    EngineOptions o = Options();
    o.n_sessions = 2;
    o.n_batch = 5;           // the question's prefill takes two steps: the ask comes during it
    o.n_template_slots = 0;  // 5 sequences: 2 slots, 1 scratch, 2 flash copies
    auto engine = OpenEngine(o);
    ASSERT_TRUE(engine);
    auto id = *engine->CreateSession({.prefix = "Notes."});
    const FlashId f = *engine->AddFlash(id, F(0, 12));
    ASSERT_TRUE(engine->Append(id, DataText(0)).ok());
    StepUntilEvaluating(*engine);
    ASSERT_EQ(engine->metrics().GetGauge("kvs_flash_running", "").value(), 1);
    auto qid = engine->SubmitQuery(id, FlashQuery(F(0, 12)));
    ASSERT_TRUE(qid.ok());
    std::optional<Answer> joined;
    for (int i = 0; i < 1000 && !joined; ++i) {
        engine->Step();
        if (i == 0) {  // joined: the session is as busy as with a live query
            EXPECT_EQ(engine->Park(id).code(), StatusCode::kResourceExhausted);
        }
        for (auto& fin : engine->TakeFinished()) {
            if (fin.id == *qid) {
                ASSERT_TRUE(fin.answer.ok()) << fin.answer.status().ToString();
                joined = *fin.answer;
            }
        }
    }
    ASSERT_TRUE(joined);
    EXPECT_TRUE(joined->joined);
    EXPECT_FALSE(joined->cached);
    EXPECT_EQ(joined->flash_id, f);
    EXPECT_EQ(joined->version, 1U);
    engine->RunUntilIdle();
    EXPECT_EQ(CounterValue(*engine, "kvs_flash_joins_total"), 1U);
    EXPECT_EQ(CounterValue(*engine, "kvs_flash_evaluations_total"), 1U) << "computed once";
    EXPECT_EQ(CounterValue(*engine, "kvs_flash_preempted_total"), 0U);
    auto live = engine->Query(id, Live(F(0, 12)));
    ASSERT_TRUE(live.ok());
    EXPECT_EQ(live->version, joined->version);
    EXPECT_TRUE(AgreeTokens(joined->tokens, *live, GetParam() + ": joined vs live"));
}

// An ask that joined and was then cancelled by its client holds the evaluation no longer: it goes
// back to the background, and a live query for another question runs beside it without cancelling
// it (the evaluation runs on a copy of the session).
TEST_P(FlashJoin, ACancelledJoinLeavesTheEvaluationInTheBackground) {
    EngineOptions o = Options();
    o.n_sessions = 2;
    o.n_batch = 5;
    o.n_template_slots = 0;
    auto engine = OpenEngine(o);
    ASSERT_TRUE(engine);
    auto id = *engine->CreateSession({.prefix = "Notes."});
    ASSERT_TRUE(engine->AddFlash(id, F(0, 32)).ok());
    ASSERT_TRUE(engine->Append(id, DataText(0)).ok());
    StepUntilEvaluating(*engine);
    QueryOptions ask = FlashQuery(F(0, 32));
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    ask.cancel = cancel;
    auto asked = engine->SubmitQuery(id, ask);
    ASSERT_TRUE(asked.ok());
    engine->Step();
    ASSERT_EQ(CounterValue(*engine, "kvs_flash_joins_total"), 1U);
    cancel->store(true);
    auto other = engine->SubmitQuery(id, FlashQuery(F(1)));
    ASSERT_TRUE(other.ok());
    engine->RunUntilIdle();
    EXPECT_EQ(CounterValue(*engine, "kvs_flash_preempted_total"), 0U);
    EXPECT_EQ(CounterValue(*engine, "kvs_flash_evaluations_total"), 1U) << "finished, once";
    int answered = 0;
    for (auto& f : engine->TakeFinished()) {
        if (f.id == *asked) {
            EXPECT_EQ(f.answer.status().code(), StatusCode::kAborted);
        } else if (f.id == *other) {
            EXPECT_TRUE(f.answer.ok());
            ++answered;
        }
    }
    EXPECT_EQ(answered, 1);
}

// A live query for another question on the session does not wait for, share steps with, or
// cancel the running evaluation: the evaluation runs on its own copy of the session, pauses
// while the query runs, and then finishes with the answer a live query gives at its version.
TEST_P(FlashJoin, ALiveQueryRunsBesideTheEvaluation) {
    auto engine = OpenEngine(Options());
    ASSERT_TRUE(engine);
    auto id = *engine->CreateSession({.prefix = "Notes."});
    ASSERT_TRUE(engine->AddFlash(id, F(0, 24)).ok());
    ASSERT_TRUE(engine->Append(id, DataText(0)).ok());
    StepUntilEvaluating(*engine);
    auto live = engine->Query(id, Live(F(1)));  // steps the engine until it is answered
    ASSERT_TRUE(live.ok()) << live.status().ToString();
    EXPECT_EQ(engine->metrics().GetGauge("kvs_flash_running", "").value(), 1)
        << "the evaluation still runs";
    EXPECT_EQ(CounterValue(*engine, "kvs_flash_preempted_total"), 0U);
    engine->RunUntilIdle();
    EXPECT_EQ(CounterValue(*engine, "kvs_flash_evaluations_total"), 1U);
    auto cached = engine->Query(id, FlashQuery(F(0, 24)));
    ASSERT_TRUE(cached.ok());
    ASSERT_TRUE(cached->cached);
    auto again = engine->Query(id, Live(F(0, 24)));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(cached->version, again->version);
    EXPECT_TRUE(AgreeTokens(cached->tokens, *again, GetParam() + ": evaluation vs live"));
}

// Coalesce: a session's questions start together (one copy each) and evaluate in the same
// steps; each result equals the question evaluated alone (a live query at that version) under
// the exactness contract.
TEST_P(FlashJoin, ASessionsQuestionsEvaluateTogether) {
    auto engine = OpenEngine(Options());  // flash_max_running 2: two copies
    ASSERT_TRUE(engine);
    auto id = *engine->CreateSession({.prefix = "Notes."});
    ASSERT_TRUE(engine->AddFlash(id, F(0, 12)).ok());
    ASSERT_TRUE(engine->AddFlash(id, F(1, 12)).ok());
    ASSERT_TRUE(engine->Append(id, DataText(0)).ok());
    StepUntilEvaluating(*engine);
    EXPECT_EQ(engine->metrics().GetGauge("kvs_flash_running", "").value(), 2)
        << "both questions started in the same step";
    engine->RunUntilIdle();
    EXPECT_EQ(CounterValue(*engine, "kvs_flash_evaluations_total"), 2U);
    for (int i = 0; i < 2; ++i) {
        auto cached = engine->Query(id, FlashQuery(F(i, 12)));
        ASSERT_TRUE(cached.ok());
        ASSERT_TRUE(cached->cached);
        auto alone = engine->Query(id, Live(F(i, 12)));
        ASSERT_TRUE(alone.ok());
        EXPECT_EQ(cached->version, alone->version);
        EXPECT_TRUE(AgreeTokens(cached->tokens, *alone,
                                GetParam() + ": question " + std::to_string(i) + " together"));
    }
}

INSTANTIATE_TEST_SUITE_P(Models, FlashJoin, ::testing::ValuesIn(TestModelNames()));

}  // namespace
}  // namespace kvs::test
