#include "query/flash.h"

#include "common/check.h"
#include "common/utf8.h"

#include <algorithm>
#include <cmath>

namespace kvs {
namespace {

bool IsSpace(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool SameSampling(const SamplingParams& a, const SamplingParams& b) {
    return a.temperature == b.temperature && a.top_p == b.top_p && a.top_k == b.top_k &&
           a.seed == b.seed;
}

}  // namespace

std::string_view TrimQuestion(std::string_view q) {
    while (!q.empty() && IsSpace(q.front())) {
        q.remove_prefix(1);
    }
    while (!q.empty() && IsSpace(q.back())) {
        q.remove_suffix(1);
    }
    return q;
}

Status ValidateFlash(const FlashOptions& o) {
    if (!IsValidUtf8(o.question)) {
        return InvalidArgument("the flash question is not valid UTF-8");
    }
    if (TrimQuestion(o.question).empty()) {
        return InvalidArgument("the flash question is empty");
    }
    if (o.max_tokens < 1 || o.max_tokens > kMaxFlashTokens) {
        return InvalidArgument("flash max_tokens must be 1.." + std::to_string(kMaxFlashTokens) +
                               ", got " + std::to_string(o.max_tokens));
    }
    return ValidateSampling(o.sampling);
}

QueryOptions FlashQuery(const FlashOptions& o) {
    QueryOptions q;
    q.question = std::string(TrimQuestion(o.question));
    q.max_tokens = o.max_tokens;
    q.sampling = o.sampling;
    return q;
}

bool QueryMatchesFlash(const QueryOptions& q, const FlashOptions& f) {
    return q.max_tokens == f.max_tokens && SameSampling(q.sampling, f.sampling) && q.stop.empty() &&
           !q.keep_logits && !q.ignore_eog && TrimQuestion(q.question) == TrimQuestion(f.question);
}

double TopTwoLogitGap(std::span<const float> logits) {
    if (logits.size() < 2) {
        return 0.0;
    }
    float first = -INFINITY;
    float second = -INFINITY;
    for (const float x : logits) {
        if (!std::isfinite(x)) {
            continue;  // masked out
        }
        if (x > first) {
            second = first;
            first = x;
        } else if (x > second) {
            second = x;
        }
    }
    if (!std::isfinite(second)) {
        return 0.0;  // fewer than two finite logits
    }
    return static_cast<double>(first) - static_cast<double>(second);
}

bool FinishOvertakenEvaluation(bool prefilling,
                               int n_answer_tokens,
                               int max_tokens,
                               int n_consecutive_drops) {
    if (n_consecutive_drops >= kMaxConsecutiveDrops) {
        return true;
    }
    return !prefilling && max_tokens - n_answer_tokens <= kFinishWithinTokens;
}

FlashBudget::FlashBudget(double share, double window_ms)
    : share_(share), burst_ms_(share * window_ms), credit_ms_(burst_ms_) {
    KV_CHECK(share > 0.0 && share <= 1.0, "the flash time share must be in (0, 1]");
    KV_CHECK(window_ms > 0.0, "the flash budget window must be positive");
}

void FlashBudget::Refill(double elapsed_ms) {
    credit_ms_ = std::min(burst_ms_, credit_ms_ + share_ * std::max(0.0, elapsed_ms));
}

}  // namespace kvs
