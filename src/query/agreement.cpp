#include "query/agreement.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace kvs {
namespace {

std::size_t ArgMax(const std::vector<float>& v) {
    return static_cast<std::size_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

double MaxAbs(const std::vector<float>& v) {
    double m = 0;
    for (float x : v) {
        m = std::max(m, static_cast<double>(std::fabs(x)));
    }
    return m;
}

// 1 + the number of logits strictly above logits[token]: the token's rank.
int Rank(const std::vector<float>& logits, std::size_t token) {
    const float value = logits[token];
    return 1 + static_cast<int>(std::count_if(logits.begin(), logits.end(),
                                              [value](float x) { return x > value; }));
}

}  // namespace

const char* AgreementName(Agreement a) {
    switch (a) {
        case Agreement::kIdentical:
            return "identical";
        case Agreement::kClose:
            return "same tokens";
        case Agreement::kNearTie:
            return "near tie";
        case Agreement::kTooFar:
            return "logits too far apart";
        case Agreement::kDiverged:
            return "diverged";
    }
    return "?";
}

Comparison CompareGreedy(const std::vector<std::vector<float>>& a,
                         const std::vector<std::vector<float>>& b) {
    Comparison c;
    const std::size_t n = std::min(a.size(), b.size());
    double tol_at_divergence = 0;
    for (std::size_t i = 0; i < n && c.first_divergence < 0; ++i) {
        const auto& la = a[i];
        const auto& lb = b[i];
        if (la.size() != lb.size() || la.empty()) {
            c.verdict = Agreement::kDiverged;
            c.n_compared = static_cast<int>(i + 1);
            return c;
        }
        double diff = 0;
        for (std::size_t t = 0; t < la.size(); ++t) {
            diff = std::max(diff, static_cast<double>(std::fabs(la[t] - lb[t])));
        }
        const double scale = std::max(MaxAbs(la), MaxAbs(lb));
        const double tol = std::max(kAbsLogitFloor, kRelLogitTolerance * scale);
        const double relative = scale > 0 ? diff / scale : 0;
        c.max_logit_diff = std::max(c.max_logit_diff, diff);
        if (relative >= c.max_relative) {
            c.max_relative = relative;
            c.tolerance = tol;
        }
        c.n_compared = static_cast<int>(i + 1);
        if (diff > tol) {
            c.verdict = Agreement::kTooFar;
        }
        const std::size_t ta = ArgMax(la);
        const std::size_t tb = ArgMax(lb);
        if (ta != tb) {
            c.first_divergence = static_cast<int>(i);
            c.margin_a = la[ta] - la[tb];
            c.margin_b = lb[tb] - lb[ta];
            c.rank_a = Rank(la, tb);
            c.rank_b = Rank(lb, ta);
            tol_at_divergence = tol;
        }
    }
    if (c.verdict == Agreement::kTooFar) {
        return c;
    }
    if (c.first_divergence >= 0) {
        const double margin = kNearTieFactor * tol_at_divergence;
        const bool tie = c.margin_a <= margin && c.margin_b <= margin && c.rank_a <= kNearTieTopK &&
                         c.rank_b <= kNearTieTopK;
        c.verdict = tie ? Agreement::kNearTie : Agreement::kDiverged;
    } else if (a.size() != b.size()) {
        c.verdict = Agreement::kDiverged;  // one ran on where the other had stopped
    } else {
        c.verdict = c.max_logit_diff == 0 ? Agreement::kIdentical : Agreement::kClose;
    }
    return c;
}

Comparison CompareTokens(const Tokens& a, const Answer& b) {
    Comparison c;
    c.one_sided = true;
    const std::size_t n = std::min({a.size(), b.tokens.size(), b.step_logits.size()});
    for (std::size_t i = 0; i < n; ++i) {
        c.n_compared = static_cast<int>(i + 1);
        if (a[i] == b.tokens[i]) {
            continue;
        }
        const auto& lb = b.step_logits[i];
        const auto ta = static_cast<std::size_t>(a[i]);
        const auto tb = static_cast<std::size_t>(b.tokens[i]);
        if (ta >= lb.size() || tb >= lb.size()) {
            c.verdict = Agreement::kDiverged;
            return c;
        }
        const double tol = std::max(kAbsLogitFloor, kRelLogitTolerance * MaxAbs(lb));
        c.first_divergence = static_cast<int>(i);
        c.tolerance = tol;
        c.margin_b = lb[tb] - lb[ta];
        c.rank_b = Rank(lb, ta);
        c.verdict = c.margin_b <= kNearTieFactor * tol && c.rank_b <= kNearTieTopK
                        ? Agreement::kNearTie
                        : Agreement::kDiverged;
        return c;
    }
    c.verdict = a.size() == b.tokens.size() ? Agreement::kClose : Agreement::kDiverged;
    return c;
}

std::string Comparison::Describe() const {
    char buf[320];
    int n = 0;
    if (first_divergence >= 0) {
        n = std::snprintf(buf, sizeof buf, "%s at token %d (margins %.3g / %.3g, ranks %d / %d); ",
                          AgreementName(verdict), first_divergence, margin_a, margin_b, rank_a,
                          rank_b);
    } else {
        n = std::snprintf(buf, sizeof buf, "%s; ", AgreementName(verdict));
    }
    if (one_sided) {
        std::snprintf(buf + n, sizeof buf - static_cast<std::size_t>(n),
                      "%d positions (tokens against the other side's logits)", n_compared);
        return buf;
    }
    std::snprintf(buf + n, sizeof buf - static_cast<std::size_t>(n),
                  "%d positions, largest logit difference %.3g (%.2f%% of the largest logit, "
                  "tolerance %.3g)",
                  n_compared, max_logit_diff, 100 * max_relative, tolerance);
    return buf;
}

}  // namespace kvs
