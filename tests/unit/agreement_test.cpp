// The near-tie rule of query/agreement.h on hand-made logits: what it accepts and, as much, what
// it must refuse.

#include "query/agreement.h"

#include <gtest/gtest.h>

namespace kvs {
namespace {

using Steps = std::vector<std::vector<float>>;

// Logits over 8 tokens with `top` leading at 10, the rest spread below 5.
std::vector<float> Peak(int top, float lead = 10.0F) {
    std::vector<float> v = {1, 2, 3, 4, 5, 0, -1, -2};
    v[static_cast<std::size_t>(top)] = lead;
    return v;
}

TEST(Agreement, IdenticalAndClose) {
    const Steps a = {Peak(0), Peak(3), Peak(5)};
    EXPECT_EQ(CompareGreedy(a, a).verdict, Agreement::kIdentical);
    Steps b = a;
    b[1][2] += 0.05F;  // 0.5% of the largest |logit|
    const Comparison c = CompareGreedy(a, b);
    EXPECT_EQ(c.verdict, Agreement::kClose);
    EXPECT_TRUE(c.ok());
    EXPECT_NEAR(c.max_logit_diff, 0.05, 1e-6);
    EXPECT_EQ(c.n_compared, 3);
}

TEST(Agreement, LogitsBeyondTheToleranceFailEvenWithTheSameTokens) {
    const Steps a = {Peak(0), Peak(3)};
    Steps b = a;
    b[0][6] += 1.0F;  // 10% of the largest |logit|, the greedy choice unchanged
    const Comparison c = CompareGreedy(a, b);
    EXPECT_EQ(c.verdict, Agreement::kTooFar);
    EXPECT_FALSE(c.ok());
}

TEST(Agreement, ANearTieMayTipEitherWayAndEndsTheComparison) {
    Steps a = {Peak(0), Peak(2, 5.10F), Peak(1)};
    Steps b = {Peak(0), Peak(2, 5.10F), Peak(7)};  // after the tie anything goes
    a[1][4] = 5.05F;                               // a: token 2 leads token 4 by 0.05
    b[1][4] = 5.15F;                               // b: token 4 leads token 2 by 0.05
    const Comparison c = CompareGreedy(a, b);
    EXPECT_EQ(c.verdict, Agreement::kNearTie) << c.Describe();
    EXPECT_EQ(c.first_divergence, 1);
    EXPECT_EQ(c.n_compared, 2);
    EXPECT_NEAR(c.margin_a, 0.05, 1e-5);
    EXPECT_NEAR(c.margin_b, 0.05, 1e-5);
    EXPECT_EQ(c.rank_a, 2);
    EXPECT_EQ(c.rank_b, 2);
    EXPECT_NE(c.Describe().find("near tie at token 1"), std::string::npos) << c.Describe();
}

TEST(Agreement, AClearChoiceThatFlipsIsADivergence) {
    const Steps a = {Peak(0), Peak(3)};
    const Steps b = {Peak(0), Peak(6)};  // token 3 vs token 6, each leading by 5+
    const Comparison c = CompareGreedy(a, b);
    EXPECT_FALSE(c.ok());
    EXPECT_EQ(c.first_divergence, 1);
}

TEST(Agreement, ATieOutsideTheOthersTopFewIsADivergence) {
    // Both paths' top logits nearly equal, but each path's choice ranks below 5 in the other.
    std::vector<float> a(16, 0.0F);
    std::vector<float> b(16, 0.0F);
    for (std::size_t t = 0; t < 16; ++t) {
        a[t] = b[t] = 9.9F - 0.001F * static_cast<float>(t);  // a flat top: 16 near-equal tokens
    }
    a[15] = 9.95F;  // a picks 15, ranked 16th in b
    b[0] = 9.96F;
    const Comparison c = CompareGreedy(Steps{a}, Steps{b});
    EXPECT_EQ(c.verdict, Agreement::kDiverged) << c.Describe();
    EXPECT_LE(c.max_logit_diff, 0.07);  // within the tolerance, and the margins are tiny ...
    EXPECT_EQ(c.rank_b, 16);            // ... but a's token is 16th in b
}

TEST(Agreement, OneRanOnWhereTheOtherStopped) {
    const Steps a = {Peak(0), Peak(3)};
    const Steps b = {Peak(0)};
    EXPECT_EQ(CompareGreedy(a, b).verdict, Agreement::kDiverged);
}

TEST(Agreement, OneSidedTokens) {
    Answer b;
    b.tokens = {0, 2};
    b.step_logits = {Peak(0), Peak(2, 5.10F)};
    b.step_logits[1][4] = 5.05F;
    EXPECT_EQ(CompareTokens({0, 2}, b).verdict, Agreement::kClose);
    EXPECT_EQ(CompareTokens({0, 4}, b).verdict, Agreement::kNearTie);   // 0.05 behind
    EXPECT_EQ(CompareTokens({0, 6}, b).verdict, Agreement::kDiverged);  // 6.1 behind
    EXPECT_EQ(CompareTokens({0}, b).verdict, Agreement::kDiverged);     // stopped early
}

}  // namespace
}  // namespace kvs
