// Failures that cannot be provoked from outside, injected into the engine's context
// (engine/context.h, FaultPlan): a session must never run on a cache that does not hold its
// tokens, and a failed prefill must not leak what it had taken.

#include <gtest/gtest.h>

#include "model/test_models.h"

namespace kvs::test {
namespace {

class Faults : public ::testing::TestWithParam<std::string> {
protected:
    static QueryOptions Greedy(int i) {
        QueryOptions q;
        q.question = Question(i);
        q.max_tokens = 8;
        q.keep_logits = true;
        return q;
    }

    // A prefix long enough to be shared through a template (min_template_tokens).
    static std::string LongPrefix(int i) {
        return "System notes number " + std::to_string(i) +
               ": the following lines are market bars and story sentences, one per line, "
               "kept in the order they arrived.";
    }
};

// Defect: the saved state of a parked session was unusable and the re-prefill failed too; the
// next restore found no saved state and gave the session an empty cache while it still counted
// its tokens, so queries answered without the data (and a capture would have saved that).
TEST_P(Faults, AFailedRestoreNeverLeavesASessionOnAnEmptyCache) {
    EngineOptions o = TestOptions(GetParam());
    o.n_sessions = 2;
    auto engine = OpenEngine(o);
    auto reference = OpenEngine(o);
    ASSERT_TRUE(engine && reference);
    const SessionId s = *engine->CreateSession({.prefix = "Notes."});
    const SessionId r = *reference->CreateSession({.prefix = "Notes."});
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(engine->Append(s, DataText(i)).ok());
        ASSERT_TRUE(reference->Append(r, DataText(i)).ok());
    }
    ASSERT_TRUE(engine->Park(s).ok());

    // The saved state is refused and the rebuild fails (decode -3) every time.
    engine->faults_for_testing() = {.fail_decodes = 1000, .decode_rc = -3, .fail_restores = 1};
    const Status restored = engine->Restore(s);
    EXPECT_EQ(restored.code(), StatusCode::kUnavailable) << restored.ToString();
    EXPECT_FALSE(engine->Info(s)->resident);
    EXPECT_FALSE(engine->Capture(s).has_value()) << "nothing to snapshot without the cache";
    auto failed = engine->Query(s, Greedy(0));
    ASSERT_FALSE(failed.ok()) << "answered without its data: " << failed->text;
    EXPECT_NE(failed.status().message().find("could not be rebuilt"), std::string::npos)
        << failed.status().ToString();
    EXPECT_FALSE(engine->Info(s)->resident);

    // Once decoding works again the session is rebuilt from its tokens and answers with them.
    engine->faults_for_testing() = {};
    auto a = engine->Query(s, Greedy(0));
    auto b = reference->Query(r, Greedy(0));
    ASSERT_TRUE(a.ok() && b.ok()) << a.status().ToString();
    const SessionInfo info = *engine->Info(s);
    EXPECT_EQ(info.n_cached, info.n_tokens) << "the cache holds every token of the session";
    EXPECT_TRUE(Agree(*a, *b, "rebuilt after a failed restore vs never parked"));
    auto capture = engine->Capture(s);
    ASSERT_TRUE(capture.has_value());
    EXPECT_EQ(capture->tokens, *reference->SessionTokens(r));
}

// Defect: a failed prefix prefill leaked its template sequence; once every template sequence had
// leaked, choosing one to evict read the first entry of an empty map.
TEST_P(Faults, AFailedPrefixPrefillReleasesItsTemplate) {
    EngineOptions o = TestOptions(GetParam());
    o.n_template_slots = 2;
    auto engine = OpenEngine(o);
    ASSERT_TRUE(engine);
    for (int i = 0; i < 3; ++i) {  // more failures than template sequences
        engine->faults_for_testing() = {.fail_decodes = 1, .decode_rc = -2};
        auto failed = engine->CreateSession({.prefix = LongPrefix(i)});
        ASSERT_FALSE(failed.ok());
        EXPECT_EQ(failed.status().code(), StatusCode::kInternal) << failed.status().ToString();
    }
    EXPECT_EQ(engine->n_sessions(), 0);
    // Every template sequence is free again: new prefixes get templates, and share them.
    auto& misses = engine->metrics().GetCounter("kvs_template_misses_total", "");
    auto& hits = engine->metrics().GetCounter("kvs_template_hits_total", "");
    const auto misses_before = misses.value();
    for (int i = 3; i < 5; ++i) {
        ASSERT_TRUE(engine->CreateSession({.prefix = LongPrefix(i)}).ok());
        ASSERT_TRUE(engine->CreateSession({.prefix = LongPrefix(i)}).ok());
    }
    EXPECT_EQ(misses.value() - misses_before, 2U);
    EXPECT_EQ(hits.value(), 2U);
}

// Defect: the KV fingerprint named f16 caches whatever the context used, so a snapshot made
// with another cache type would have been accepted.
TEST_P(Faults, TheKvFingerprintNamesTheCacheTypes) {
    EngineOptions o = TestOptions(GetParam());
    auto f16 = OpenEngine(o);
    o.kv_type_k = "q8_0";
    auto q8 = OpenEngine(o);
    ASSERT_TRUE(f16 && q8);
    EXPECT_NE(f16->snapshot_identity().kv_fingerprint, q8->snapshot_identity().kv_fingerprint);
    EXPECT_EQ(f16->snapshot_identity().model_fingerprint,
              q8->snapshot_identity().model_fingerprint);
    o.kv_type_k = "f17";
    EXPECT_EQ(Engine::Open(o).status().code(), StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Models, Faults, ::testing::ValuesIn(TestModelNames()));

}  // namespace
}  // namespace kvs::test
