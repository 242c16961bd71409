// Sixteen sessions sharing batches (appends packed together, queries decoded together) answer
// as each would alone: the batch shapes differ, so by the near-tie rule of query/agreement.h.

#include <gtest/gtest.h>

#include "model/test_models.h"

namespace kvs::test {
namespace {

constexpr int kSessions = 16;

class Interleave : public ::testing::TestWithParam<std::string> {};

TEST_P(Interleave, SharedBatchesMatchAlone) {
    auto engine = OpenEngine(TestOptions(GetParam()));
    ASSERT_TRUE(engine);
    std::vector<SessionId> ids;
    for (int i = 0; i < kSessions; ++i) {
        auto id = engine->CreateSession({.prefix = i % 2 == 0 ? "Market notes." : ""});
        ASSERT_TRUE(id.ok()) << id.status().ToString();
        ids.push_back(*id);
    }
    // Two rounds of appends, every session in the same batches; session i gets i % 3 + 1 texts
    // per round so the sessions have different lengths.
    for (int round = 0; round < 2; ++round) {
        std::vector<AppendRequest> appends;
        for (int i = 0; i < kSessions; ++i) {
            for (int k = 0; k <= i % 3; ++k) {
                appends.push_back({ids[i], DataText(i * 7 + round * 3 + k)});
            }
        }
        for (auto& r : engine->AppendMany(appends)) {
            ASSERT_TRUE(r.ok()) << r.status().ToString();
        }
    }
    std::vector<QueryRequest> queries;
    for (int i = 0; i < kSessions; ++i) {
        QueryOptions q;
        q.question = Question(i);
        q.max_tokens = 4 + i % 5 * 3;  // answers end at different steps
        q.keep_logits = true;
        queries.push_back({ids[i], q});
    }
    auto together = engine->QueryMany(queries);
    ASSERT_EQ(together.size(), queries.size());
    for (int i = 0; i < kSessions; ++i) {
        ASSERT_TRUE(together[i].ok()) << together[i].status().ToString();
        auto alone = engine->Query(ids[i], queries[i].options);
        ASSERT_TRUE(alone.ok());
        const std::string session = GetParam() + " session " + std::to_string(i);
        EXPECT_TRUE(Agree(*together[i], *alone, session + " shared batches vs alone"));
        auto oracle = engine->QueryStateless(*engine->SessionTokens(ids[i]), queries[i].options);
        ASSERT_TRUE(oracle.ok());
        EXPECT_TRUE(Agree(*together[i], *oracle, session + " shared batches vs stateless"));
        const auto info = *engine->Info(ids[i]);
        EXPECT_EQ(info.n_cached, info.n_tokens);
        EXPECT_EQ(info.version, static_cast<std::uint64_t>(2 * (i % 3 + 1)));
    }
}

INSTANTIATE_TEST_SUITE_P(Models, Interleave, ::testing::ValuesIn(TestModelNames()));

}  // namespace
}  // namespace kvs::test
