// Stateful answers equal the stateless computation of the same context, and the determinism
// contract of query/agreement.h holds: bit-identical where the same kernels run on the same
// numbers, the near-tie rule where batch shapes differ.

#include <cstdio>
#include <gtest/gtest.h>

#include "model/test_models.h"

namespace kvs::test {
namespace {

class Equivalence : public ::testing::TestWithParam<std::string> {};

QueryOptions Greedy(const std::string& question, int max_tokens) {
    QueryOptions q;
    q.question = question;
    q.max_tokens = max_tokens;
    q.keep_logits = true;
    return q;
}

// Batch shapes differ: the session ingested its data append by append and the question alone;
// the stateless path prefills context and question in n_batch chunks.
TEST_P(Equivalence, StatefulMatchesStateless) {
    auto engine = OpenEngine(TestOptions(GetParam()));
    ASSERT_TRUE(engine);
    auto id = engine->CreateSession({.prefix = "A story about a market."});
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    for (int step = 0; step < 5; ++step) {
        auto appended = engine->Append(*id, DataText(step));
        ASSERT_TRUE(appended.ok()) << appended.status().ToString();
        const QueryOptions q = Greedy(Question(step), 16);
        auto stateful = engine->Query(*id, q);
        auto stateless = engine->QueryStateless(*engine->SessionTokens(*id), q);
        ASSERT_TRUE(stateful.ok()) << stateful.status().ToString();
        ASSERT_TRUE(stateless.ok()) << stateless.status().ToString();
        EXPECT_FALSE(stateful->tokens.empty());
        EXPECT_TRUE(Agree(*stateful, *stateless,
                          GetParam() + " stateful vs stateless, step " + std::to_string(step)));
    }
}

// Batch shapes differ: the same text ingested in chunks of 1 (matrix-vector kernels), 5, 32,
// 100 and whole batches.
TEST_P(Equivalence, ChunkedAppendMatchesOneShot) {
    std::string text;
    for (int i = 0; i < 5; ++i) {
        text += DataText(i);
    }
    const QueryOptions q = Greedy(Question(0), 20);
    Answer reference;
    for (int chunk : {0, 1, 5, 32, 100}) {  // 0: whole batches (n_batch 128)
        EngineOptions o = TestOptions(GetParam());
        o.prefill_chunk_tokens = chunk;
        auto engine = OpenEngine(o);
        ASSERT_TRUE(engine);
        auto id = engine->CreateSession();
        ASSERT_TRUE(id.ok());
        auto appended = engine->Append(*id, text);
        ASSERT_TRUE(appended.ok()) << appended.status().ToString();
        ASSERT_GT(appended->n_tokens_appended, 128) << "the text must span several batches";
        auto answer = engine->Query(*id, q);
        ASSERT_TRUE(answer.ok());
        if (chunk == 0) {
            reference = std::move(answer).value();
            continue;
        }
        EXPECT_TRUE(Agree(*answer, reference,
                          GetParam() + " prefill chunk " + std::to_string(chunk) + " vs whole"));
    }
}

// Same kernels, same numbers: a session's exact chunking replayed token for token on another
// engine, in another KV slot, gives the session's logits bit for bit.
TEST_P(Equivalence, ReplayOfExactChunkingIsBitIdentical) {
    EngineOptions o = TestOptions(GetParam());
    o.prefill_chunk_tokens = 24;
    auto live = OpenEngine(o);
    auto oracle = OpenEngine(o);
    ASSERT_TRUE(live && oracle);
    const SessionOptions prefix{.prefix = "A story about a market."};
    auto id = live->CreateSession(prefix);
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE(oracle->CreateSession().ok());  // the replay lands in the next slot
    auto replay = oracle->CreateSession(prefix);
    ASSERT_TRUE(replay.ok());
    std::size_t seen = live->SessionTokens(*id)->size();
    for (int step = 0; step < 4; ++step) {
        ASSERT_TRUE(live->Append(*id, DataText(step)).ok());
        const Tokens all = *live->SessionTokens(*id);
        const Tokens appended(all.begin() + static_cast<std::ptrdiff_t>(seen), all.end());
        seen = all.size();
        ASSERT_TRUE(oracle->AppendTokens(*replay, appended).ok());
        const QueryOptions q = Greedy(Question(step), 12);
        auto a = live->Query(*id, q);
        auto b = oracle->Query(*replay, q);
        ASSERT_TRUE(a.ok() && b.ok());
        EXPECT_TRUE(SameBits(*a, *b)) << "step " << step;
    }
}

// Same kernels, same numbers: a query leaves its session exactly as before.
TEST_P(Equivalence, QueryLeavesSessionUnchanged) {
    auto engine = OpenEngine(TestOptions(GetParam()));
    ASSERT_TRUE(engine);
    auto a = engine->CreateSession();
    auto b = engine->CreateSession();
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_TRUE(engine->Append(*a, DataText(3)).ok());
    ASSERT_TRUE(engine->Append(*b, DataText(3)).ok());
    const auto before = *engine->Info(*a);

    // Session a answers two other questions first; b never sees them.
    ASSERT_TRUE(engine->Query(*a, Greedy(Question(1), 24)).ok());
    ASSERT_TRUE(engine->Query(*a, Greedy(Question(2), 8)).ok());
    const auto after = *engine->Info(*a);
    EXPECT_EQ(after.n_tokens, before.n_tokens);
    EXPECT_EQ(after.n_cached, before.n_tokens);
    EXPECT_EQ(after.version, before.version);

    const QueryOptions q = Greedy(Question(0), 16);
    auto from_a = engine->Query(*a, q);
    auto from_b = engine->Query(*b, q);
    ASSERT_TRUE(from_a.ok() && from_b.ok());
    EXPECT_TRUE(SameBits(*from_a, *from_b));
}

INSTANTIATE_TEST_SUITE_P(Models, Equivalence, ::testing::ValuesIn(TestModelNames()));

}  // namespace
}  // namespace kvs::test
