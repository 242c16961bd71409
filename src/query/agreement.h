#pragma once
// The engine's determinism contract, and the rule that compares two greedy answers computed in
// different batch shapes. Every exactness tolerance of the project lives in this header.
//
// Determinism contract (docs/architecture.md, "Exactness"):
//  1. The same kernels on the same numbers give the same bits. Two computations that feed the
//     same tokens at the same positions through micro-batches of the same boundaries and sizes,
//     on the same CPU backend variant, give bit-identical logits. The engine relies on it and the
//     tests demand it (a largest logit difference of exactly 0) where it applies: a query leaves
//     its session unchanged; a parked-then-restored session answers as if never parked; a
//     session restored from its KV snapshot answers as the live one; a replay of a session's
//     exact chunking answers as the session.
//  2. Different batch shapes give nearby numbers, not the same ones. ggml picks its kernels by
//     batch shape (matrix-vector products for one token, tiled or repacked matrix-matrix products
//     for several) and by CPU variant, and they sum in different orders. Stateful vs one-shot
//     stateless prefill, shared batches vs alone, speculative verify batches vs one token per
//     step, and replays with other chunk boundaries are compared by CompareGreedy: the greedy
//     sequences agree up to the first position where the two paths choose different tokens;
//     there both choices must be a near tie of both paths' logits (within kNearTieFactor times
//     the logit tolerance of each other, and each in the other's top kNearTieTopK), and the
//     comparison stops. Before and at that position every logit must be within the tolerance.
//     This is vLLM's check_logprobs_close with a bound on the logits themselves.
//
// Why the tolerance is safe on any CPU. Rounding differences between kernels scale with the
// magnitude of the numbers, so the bound is relative to the position's largest |logit|. The
// largest differences measured (stories260K, F32 weights, F16 KV; the SmolLM2 twin, Q8_0), as a
// fraction of the largest |logit|: see docs/benchmarks.md, "Exactness across CPU variants"; the
// worst was 0.37% (0.058 of 15.8, stateful vs stateless on an AVX-512 Xeon), the rest below 1.1%
// on the random-weights twin whose logits are small (|logit| <= 2.2) and nearly flat. A 3%
// bound keeps a factor of about 3 over every measured kernel family (x64, haswell/AVX2,
// skylakex/icelake/zen4 AVX-512), while a real defect (a token attending over the wrong
// context, a missing or duplicated token, a stale cache) moves logits by tens of percent and
// flips well-separated tokens, which the rule reports as a divergence.

#include "query/query.h"

#include <string>
#include <vector>

namespace kvs {

inline constexpr double kRelLogitTolerance = 0.03;  // of the position's largest |logit|
inline constexpr double kAbsLogitFloor = 1e-3;      // for positions whose logits are all ~0
inline constexpr double kNearTieFactor =
    2.0;                                // |a - b| <= tol everywhere bounds a flip's gap by 2 tol
inline constexpr int kNearTieTopK = 5;  // each path's token in the other's top 5

enum class Agreement {
    kIdentical,  // same tokens, bit-identical logits
    kClose,      // same tokens, logits within the tolerance
    kNearTie,    // same tokens up to a near tie, where the paths chose differently
    kTooFar,     // logits beyond the tolerance before any divergence
    kDiverged,   // the paths chose differently where it was not a near tie
};

const char* AgreementName(Agreement a);

struct Comparison {
    Agreement verdict = Agreement::kIdentical;
    int n_compared = 0;         // positions compared (to and including the first divergence)
    int first_divergence = -1;  // position where the greedy choices differ, -1 if none
    double max_logit_diff = 0;  // largest |logit_a - logit_b| over the compared positions
    double max_relative = 0;    // the same, relative to its position's largest |logit|
    double tolerance = 0;       // the bound at the position of max_relative
    // At the divergence: each path's logit lead of its own token over the other path's token
    // (the margin of the tie), and the other path's token's rank in this path's logits (1 = top).
    double margin_a = 0;
    double margin_b = 0;
    int rank_a = 0;
    int rank_b = 0;
    bool one_sided = false;  // CompareTokens: only b's logits were known

    bool ok() const { return verdict <= Agreement::kNearTie; }

    // One line: "near tie at token 3 (margins 0.012 / 0.009, ranks 2 / 2); largest logit
    // difference before it 0.0081 (0.37% of the largest logit)".
    std::string Describe() const;
};

// Compares two greedy runs position by position from their per-step logits (Answer::step_logits,
// recorded with QueryOptions::keep_logits). The greedy choice at a position is its argmax.
Comparison CompareGreedy(const std::vector<std::vector<float>>& a,
                         const std::vector<std::vector<float>>& b);

inline Comparison CompareGreedy(const Answer& a, const Answer& b) {
    return CompareGreedy(a.step_logits, b.step_logits);
}

// The one-sided form, for an answer whose logits were not kept (a cached flash result): the
// tokens must equal b's up to the first difference, where b's own logits must show a near tie
// between the two choices. max_logit_diff stays 0: only b's numbers are known.
Comparison CompareTokens(const Tokens& a, const Answer& b);

}  // namespace kvs
