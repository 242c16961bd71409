#include "scheduler/cost_model.h"

#include <cmath>
#include <gtest/gtest.h>
#include <limits>
#include <random>

namespace kvs {
namespace {

constexpr int kIntMax = std::numeric_limits<int>::max();

TEST(StepCostModel, PredictsWithThePriorBeforeAnyObservation) {
    const StepCostModel cost(5.0, 1.0);
    EXPECT_EQ(cost.n_observations(), 0);
    EXPECT_DOUBLE_EQ(cost.fixed_ms(), 5.0);
    EXPECT_DOUBLE_EQ(cost.ms_per_token(), 1.0);
    EXPECT_DOUBLE_EQ(cost.PredictMs(0), 5.0);
    EXPECT_DOUBLE_EQ(cost.PredictMs(100), 105.0);
}

TEST(StepCostModel, ConvergesToALinearFunctionFromNoisySamples) {
    // The machine: 3 ms per step plus 0.25 ms per token, with 0.5 ms of noise.
    StepCostModel cost(5.0, 1.0, 0.05);
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> n_dist(1, 512);
    std::normal_distribution<double> noise(0.0, 0.5);
    for (int i = 0; i < 2000; ++i) {
        const int n = n_dist(rng);
        cost.Observe(n, 3.0 + 0.25 * n + noise(rng));
    }
    EXPECT_EQ(cost.n_observations(), 2000);
    EXPECT_NEAR(cost.fixed_ms(), 3.0, 0.6);
    EXPECT_NEAR(cost.ms_per_token(), 0.25, 0.01);
    EXPECT_NEAR(cost.PredictMs(256), 3.0 + 0.25 * 256, 0.5);
}

TEST(StepCostModel, ExactSamplesGiveTheExactLine) {
    StepCostModel cost(5.0, 1.0, 0.2);
    for (int i = 0; i < 200; ++i) {
        const int n = 16 + (i * 37) % 480;
        cost.Observe(n, 2.0 + 0.5 * n);
    }
    // Only the ridge toward the prior slope separates the fit from the line.
    EXPECT_NEAR(cost.ms_per_token(), 0.5, 1e-3);
    EXPECT_NEAR(cost.fixed_ms(), 2.0, 0.3);
}

TEST(StepCostModel, ConstantTokenCountKeepsThePriorSlopeAndFitsTheIntercept) {
    StepCostModel cost(5.0, 0.1);
    for (int i = 0; i < 50; ++i) {
        cost.Observe(64, 40.0);
    }
    EXPECT_DOUBLE_EQ(cost.ms_per_token(), 0.1);
    EXPECT_NEAR(cost.fixed_ms(), 40.0 - 6.4, 1e-9);
    EXPECT_NEAR(cost.PredictMs(64), 40.0, 1e-9);
    EXPECT_FALSE(std::isnan(cost.fixed_ms()));
}

TEST(StepCostModel, ConstantTokenCountThatWouldNeedANegativeInterceptGoesThroughTheOrigin) {
    // Prior slope 1 ms/token but 64-token steps take 16 ms: fixed = 16 - 64 < 0.
    StepCostModel cost(5.0, 1.0);
    for (int i = 0; i < 20; ++i) {
        cost.Observe(64, 16.0);
    }
    EXPECT_DOUBLE_EQ(cost.fixed_ms(), 0.0);
    EXPECT_NEAR(cost.ms_per_token(), 0.25, 1e-12);
    EXPECT_NEAR(cost.PredictMs(64), 16.0, 1e-9);
}

TEST(StepCostModel, AllEmptyStepsFitTheFixedCostOnly) {
    StepCostModel cost(5.0, 1.0);
    for (int i = 0; i < 10; ++i) {
        cost.Observe(0, 2.0);
    }
    EXPECT_NEAR(cost.fixed_ms(), 2.0, 1e-12);
    EXPECT_DOUBLE_EQ(cost.ms_per_token(), 1.0);
}

TEST(StepCostModel, ANegativeSlopeBecomesZeroNotNegative) {
    // Bigger steps measured faster (noise, a cache warming up): the slope is clamped at 0.
    StepCostModel cost(5.0, 0.01, 0.1);
    for (int i = 0; i < 100; ++i) {
        const int n = (i % 2 == 0) ? 10 : 500;
        cost.Observe(n, n == 10 ? 50.0 : 20.0);
    }
    EXPECT_DOUBLE_EQ(cost.ms_per_token(), 0.0);
    EXPECT_GT(cost.fixed_ms(), 20.0);
    EXPECT_LT(cost.fixed_ms(), 50.0);
}

TEST(StepCostModel, IgnoresNonFiniteAndNegativeTimes) {
    StepCostModel cost(5.0, 1.0);
    cost.Observe(100, std::numeric_limits<double>::quiet_NaN());
    cost.Observe(100, std::numeric_limits<double>::infinity());
    cost.Observe(100, -3.0);
    EXPECT_EQ(cost.n_observations(), 0);
    EXPECT_DOUBLE_EQ(cost.fixed_ms(), 5.0);
    EXPECT_DOUBLE_EQ(cost.ms_per_token(), 1.0);
    cost.Observe(100, 0.0);  // a zero-time step is a real (if odd) measurement
    EXPECT_EQ(cost.n_observations(), 1);
    EXPECT_GE(cost.fixed_ms(), 0.0);
    EXPECT_GE(cost.ms_per_token(), 0.0);
}

TEST(StepCostModel, FollowsAMachineThatSlowsDown) {
    StepCostModel cost(5.0, 1.0, 0.1);
    for (int i = 0; i < 300; ++i) {
        const int n = 8 + (i * 53) % 500;
        cost.Observe(n, 1.0 + 0.1 * n);
    }
    EXPECT_NEAR(cost.ms_per_token(), 0.1, 0.01);
    for (int i = 0; i < 300; ++i) {
        const int n = 8 + (i * 53) % 500;
        cost.Observe(n, 1.0 + 0.3 * n);
    }
    EXPECT_NEAR(cost.ms_per_token(), 0.3, 0.01);
}

TEST(StepCostModel, MaxTokensWithinABudget) {
    const StepCostModel cost(5.0, 1.0);
    EXPECT_EQ(cost.MaxTokensWithin(15.0), 10);
    EXPECT_EQ(cost.MaxTokensWithin(15.5), 10);
    EXPECT_EQ(cost.MaxTokensWithin(5.0), 0);   // only an empty step fits
    EXPECT_EQ(cost.MaxTokensWithin(4.99), 0);  // below the fixed cost
    EXPECT_EQ(cost.MaxTokensWithin(0.0), 0);
    EXPECT_EQ(cost.MaxTokensWithin(-1.0), 0);
    EXPECT_EQ(cost.MaxTokensWithin(std::numeric_limits<double>::quiet_NaN()), 0);
    EXPECT_EQ(cost.MaxTokensWithin(std::numeric_limits<double>::infinity()), kIntMax);
    EXPECT_EQ(cost.MaxTokensWithin(1e300), kIntMax);
}

TEST(StepCostModel, MaxTokensWithinAZeroSlopeIsUnbounded) {
    const StepCostModel cost(5.0, 0.0);
    EXPECT_EQ(cost.MaxTokensWithin(4.0), 0);
    EXPECT_EQ(cost.MaxTokensWithin(5.0), kIntMax);
}

TEST(StepCostModel, MaxTokensWithinIsExactAtRoundingBoundaries) {
    // 0.1 * 3 = 0.30000000000000004 > 0.3 in doubles: 3 tokens do not fit a 0.3 ms budget.
    const StepCostModel tenth(0.0, 0.1);
    EXPECT_EQ(tenth.MaxTokensWithin(0.3), 2);
    std::mt19937 rng(11);
    std::uniform_real_distribution<double> fixed_dist(0.0, 20.0);
    std::uniform_real_distribution<double> slope_dist(0.001, 3.0);
    std::uniform_real_distribution<double> budget_dist(0.0, 500.0);
    for (int i = 0; i < 5000; ++i) {
        const StepCostModel cost(fixed_dist(rng), slope_dist(rng));
        const double budget = budget_dist(rng);
        const int n = cost.MaxTokensWithin(budget);
        ASSERT_GE(n, 0);
        if (budget < cost.fixed_ms()) {
            ASSERT_EQ(n, 0);
            continue;
        }
        ASSERT_LE(cost.PredictMs(n), budget);
        ASSERT_GT(cost.PredictMs(n + 1), budget);
    }
}

TEST(StepCostModelDeathTest, RejectsBadArguments) {
    EXPECT_DEATH(StepCostModel(5.0, 1.0, 0.0), "alpha");
    EXPECT_DEATH(StepCostModel(5.0, 1.0, 1.5), "alpha");
    EXPECT_DEATH(StepCostModel(-1.0, 1.0), "prior_fixed_ms");
    EXPECT_DEATH(StepCostModel(5.0, std::nan("")), "prior_ms_per_token");
    StepCostModel cost;
    EXPECT_DEATH(cost.Observe(-1, 3.0), "negative token count");
    EXPECT_DEATH((void)cost.PredictMs(-1), "negative token count");
}

}  // namespace
}  // namespace kvs
