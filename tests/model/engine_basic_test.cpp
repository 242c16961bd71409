// Session lifecycle on real weights: create, append, info, close, slot reuse.

#include <gtest/gtest.h>

#include "model/test_models.h"

namespace kvs::test {
namespace {

class EngineBasic : public ::testing::TestWithParam<std::string> {};

TEST_P(EngineBasic, VersionAndTokensAdvanceWithAppends) {
    auto engine = OpenEngine(TestOptions(GetParam()));
    ASSERT_TRUE(engine);
    auto id = engine->CreateSession({.prefix = "Notes."});
    ASSERT_TRUE(id.ok());
    auto info = *engine->Info(*id);
    EXPECT_EQ(info.version, 0U);
    EXPECT_EQ(info.n_tokens, info.n_prefix_tokens);
    EXPECT_EQ(info.n_cached, info.n_tokens);
    EXPECT_EQ(info.n_ctx, 1024);
    int total = info.n_tokens;
    for (int i = 1; i <= 3; ++i) {
        auto r = engine->Append(*id, DataText(i));
        ASSERT_TRUE(r.ok());
        total += r->n_tokens_appended;
        EXPECT_EQ(r->version, static_cast<std::uint64_t>(i));
        EXPECT_EQ(r->n_tokens, total);
    }
    info = *engine->Info(*id);
    EXPECT_EQ(info.n_tokens, total);
    EXPECT_EQ(info.n_cached, total);
    EXPECT_EQ(info.room, info.n_ctx - total);
}

TEST_P(EngineBasic, ClosedSlotIsReusedClean) {
    EngineOptions o = TestOptions(GetParam());
    o.n_sessions = 1;
    auto engine = OpenEngine(o);
    ASSERT_TRUE(engine);
    auto first = engine->CreateSession();
    ASSERT_TRUE(first.ok());
    ASSERT_TRUE(engine->Append(*first, DataText(5) + DataText(6)).ok());
    ASSERT_TRUE(engine->CloseSession(*first).ok());
    EXPECT_EQ(engine->Info(*first).status().code(), StatusCode::kNotFound);

    auto second = engine->CreateSession();
    ASSERT_TRUE(second.ok());
    EXPECT_NE(*second, *first);
    ASSERT_TRUE(engine->Append(*second, DataText(2)).ok());
    EXPECT_EQ(engine->Info(*second)->n_cached, engine->Info(*second)->n_tokens);
    QueryOptions q;
    q.question = Question(1);
    q.max_tokens = 12;
    q.keep_logits = true;
    auto stateful = engine->Query(*second, q);
    auto oracle = engine->QueryStateless(*engine->SessionTokens(*second), q);
    ASSERT_TRUE(stateful.ok() && oracle.ok());
    EXPECT_TRUE(Agree(*stateful, *oracle, GetParam() + " reused slot vs stateless"));
}

TEST_P(EngineBasic, StopStringsAndSamplingAreHonoured) {
    auto engine = OpenEngine(TestOptions(GetParam()));
    ASSERT_TRUE(engine);
    auto id = *engine->CreateSession();
    ASSERT_TRUE(engine->Append(id, DataText(0)).ok());
    QueryOptions q;
    q.question = Question(3);
    q.max_tokens = 24;
    auto full = *engine->Query(id, q);
    ASSERT_GE(full.text.size(), 4U);
    EXPECT_EQ(full.timings.n_context_tokens, engine->Info(id)->n_tokens);
    // Stop at a piece of the greedy answer: the answer is cut right before it.
    q.stop = {full.text.substr(full.text.size() / 2, 2)};
    auto cut = *engine->Query(id, q);
    EXPECT_EQ(cut.stop_reason, StopReason::kStopString);
    EXPECT_EQ(full.text.find(q.stop[0]), cut.text.size());
    // Seeded sampling is reproducible.
    q.stop.clear();
    q.sampling = {.temperature = 0.9F, .top_p = 0.95F, .top_k = 40, .seed = 1234};
    EXPECT_EQ(engine->Query(id, q)->tokens, engine->Query(id, q)->tokens);
}

INSTANTIATE_TEST_SUITE_P(Models, EngineBasic, ::testing::ValuesIn(TestModelNames()));

}  // namespace
}  // namespace kvs::test
