#include "scheduler/cost_model.h"

#include "common/check.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace kvs {

StepCostModel::StepCostModel(double prior_fixed_ms, double prior_ms_per_token, double alpha)
    : prior_ms_per_token_(prior_ms_per_token),
      alpha_(alpha),
      fixed_ms_(prior_fixed_ms),
      ms_per_token_(prior_ms_per_token) {
    KV_CHECK(std::isfinite(prior_fixed_ms) && prior_fixed_ms >= 0,
             "prior_fixed_ms must be finite and >= 0");
    KV_CHECK(std::isfinite(prior_ms_per_token) && prior_ms_per_token >= 0,
             "prior_ms_per_token must be finite and >= 0");
    KV_CHECK(alpha > 0 && alpha <= 1, "alpha must be in (0, 1]");
}

void StepCostModel::Observe(int n_tokens, double ms) {
    KV_CHECK(n_tokens >= 0, "a step cannot have a negative token count");
    if (!std::isfinite(ms) || ms < 0) {
        return;  // a broken clock reading; the model keeps what it knew
    }
    const double n = n_tokens;
    const double keep = 1.0 - alpha_;

    // West's weighted update: decay the old samples, then add this one with weight 1.
    weight_ = weight_ * keep + 1.0;
    const double d_n = n - mean_n_;
    mean_n_ += d_n / weight_;
    mean_ms_ += (ms - mean_ms_) / weight_;
    c_nn_ = c_nn_ * keep + d_n * (n - mean_n_);
    c_nm_ = c_nm_ * keep + d_n * (ms - mean_ms_);
    ++n_observations_;
    Refit();
}

void StepCostModel::Refit() {
    const double c_nn = std::max(c_nn_, 0.0);  // rounding can leave it a hair below 0
    double slope = (c_nm_ + kSlopePriorWeight * prior_ms_per_token_) / (c_nn + kSlopePriorWeight);
    slope = std::max(slope, 0.0);
    double fixed = mean_ms_ - slope * mean_n_;
    if (fixed < 0) {
        // The best line would cross zero above n = 0: pin it to the origin through the mean.
        fixed = 0;
        slope = mean_n_ > 0 ? mean_ms_ / mean_n_ : 0.0;
    }
    fixed_ms_ = std::max(fixed, 0.0);
    ms_per_token_ = std::max(slope, 0.0);
}

double StepCostModel::PredictMs(int n_tokens) const {
    KV_CHECK(n_tokens >= 0, "a step cannot have a negative token count");
    return fixed_ms_ + ms_per_token_ * n_tokens;
}

int StepCostModel::MaxTokensWithin(double budget_ms) const {
    constexpr int kMax = std::numeric_limits<int>::max();
    if (!(budget_ms >= fixed_ms_)) {  // also catches NaN
        return 0;
    }
    if (ms_per_token_ <= 0) {
        return kMax;
    }
    const double n = std::floor((budget_ms - fixed_ms_) / ms_per_token_);
    if (n >= static_cast<double>(kMax)) {
        return kMax;
    }
    // The division can round either way by an ulp: settle on the exact boundary.
    int k = static_cast<int>(n);
    while (k > 0 && PredictMs(k) > budget_ms) {
        --k;
    }
    while (k < kMax && PredictMs(k + 1) <= budget_ms) {
        ++k;
    }
    return k;
}

}  // namespace kvs
