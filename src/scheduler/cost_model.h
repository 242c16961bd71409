#pragma once
// StepCostModel: predicts the wall time of one llama_decode step from its token count, learned
// online from the steps the engine has measured. Plain arithmetic, no model, no threads; it
// belongs to the engine thread like the rest of the scheduler.
//
// The model is linear:  ms(n) = fixed_ms + ms_per_token * n
//
// The fit is an exponentially weighted least squares over the observed (n, ms) pairs: after k
// further observations a sample's weight is (1 - alpha)^k, so the model follows a machine whose
// speed drifts (other load, a growing KV cache) and remembers about 1 / alpha steps. It keeps the
// decayed weight W, the weighted means N and M (of n and ms), and the weighted (co)moments about
// the means
//     Cnn = sum w_i (n_i - N)^2        Cnm = sum w_i (n_i - N)(ms_i - M)
// updated in O(1) per observation (West's weighted Welford update: decay W, Cnn and Cnm by
// (1 - alpha), then add the sample with weight 1).
//
// The slope is a ridge estimate shrunk toward the prior slope b0:
//     ms_per_token = (Cnm + lambda * b0) / (Cnn + lambda),   fixed_ms = M - ms_per_token * N
// lambda (kSlopePriorWeight, in weight x tokens^2) is small next to the spread of real steps, so
// varied step sizes give the plain least-squares slope; when every observation has the same n
// (Cnn = 0) the slope stays at the prior and only the intercept is fitted (the line goes through
// the measured point).
//
// Coefficients are never negative or NaN: a negative slope becomes 0 (fixed_ms = M); a negative
// intercept becomes 0 and the slope becomes M / N (the line through the origin and the mean).
// Observations with a non-finite or negative ms are ignored.

#include <cstdint>

namespace kvs {

class StepCostModel {
public:
    // Before any observation the model predicts with the prior. Requires finite priors >= 0 and
    // alpha in (0, 1] (alpha = 1 remembers only the last step); aborts otherwise.
    explicit StepCostModel(double prior_fixed_ms = 5.0,
                           double prior_ms_per_token = 1.0,
                           double alpha = 0.1);

    // Records one measured step: n_tokens (>= 0, aborts otherwise) took `ms` milliseconds.
    void Observe(int n_tokens, double ms);

    // Predicted milliseconds for a step of n_tokens (>= 0, aborts otherwise).
    double PredictMs(int n_tokens) const;

    // The largest n with PredictMs(n) <= budget_ms; 0 when even an empty step would exceed the
    // budget (budget below fixed_ms, or NaN). With a zero slope and a budget >= fixed_ms every n
    // fits: returns INT_MAX (callers cap it with their batch size).
    int MaxTokensWithin(double budget_ms) const;

    double fixed_ms() const { return fixed_ms_; }

    double ms_per_token() const { return ms_per_token_; }

    // Observations used so far (ignored ones are not counted).
    std::int64_t n_observations() const { return n_observations_; }

    // Ridge weight pulling the slope toward the prior (weight x tokens^2): as much evidence as
    // one sample 8 tokens from the mean.
    static constexpr double kSlopePriorWeight = 64.0;

private:
    void Refit();

    double prior_ms_per_token_;
    double alpha_;
    double fixed_ms_;
    double ms_per_token_;
    std::int64_t n_observations_ = 0;
    double weight_ = 0;   // W: sum of decayed weights
    double mean_n_ = 0;   // N
    double mean_ms_ = 0;  // M
    double c_nn_ = 0;     // Cnn
    double c_nm_ = 0;     // Cnm
};

}  // namespace kvs
