#include "query/query.h"

#include "common/utf8.h"
#include "engine/batch.h"
#include "engine/context.h"
#include "engine/model.h"
#include "query/flash.h"

#include <algorithm>

namespace kvs {
namespace {

double MsBetween(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

Status ValidateQuery(const QueryOptions& o) {
    if (o.question.empty()) {
        return InvalidArgument("the question is empty");
    }
    if (!IsValidUtf8(o.question)) {
        return InvalidArgument("the question is not valid UTF-8");
    }
    if (o.max_tokens < 1 || o.max_tokens > kMaxAnswerTokens) {
        return InvalidArgument("max_tokens must be 1.." + std::to_string(kMaxAnswerTokens) +
                               ", got " + std::to_string(o.max_tokens));
    }
    if (o.stop.size() > static_cast<std::size_t>(kMaxStopStrings)) {
        return InvalidArgument("at most " + std::to_string(kMaxStopStrings) + " stop strings");
    }
    for (const auto& s : o.stop) {
        if (s.empty() || s.size() > 256 || !IsValidUtf8(s)) {
            return InvalidArgument("stop strings must be 1..256 bytes of valid UTF-8");
        }
    }
    return ValidateSampling(o.sampling);
}

const char* StopReasonName(StopReason reason) {
    switch (reason) {
        case StopReason::kEndOfGeneration:
            return "eog";
        case StopReason::kStopString:
            return "stop";
        case StopReason::kMaxTokens:
            return "length";
    }
    return "unknown";
}

QueryRun::QueryRun(SeqId seq, Pos start_pos, Tokens prompt, const QueryOptions& options)
    : seq_(seq),
      start_pos_(start_pos),
      prompt_(std::move(prompt)),
      max_tokens_(options.max_tokens),
      keep_logits_(options.keep_logits),
      ignore_eog_(options.ignore_eog),
      sampler_(options.sampling),
      stop_(options.stop),
      next_pos_(start_pos),
      on_text_(options.on_text) {
    KV_CHECK(!prompt_.empty(), "a query needs at least one prompt token");
    answer_.timings.n_context_tokens = start_pos;
    answer_.timings.n_prompt_tokens = static_cast<int>(prompt_.size());
}

int QueryRun::Schedule(Batch& batch, int budget) {
    logits_index_ = -1;
    budget = std::min(budget, batch.room());
    if (phase_ == Phase::kDone || budget <= 0) {
        return 0;
    }
    if (phase_ == Phase::kDecode) {
        logits_index_ = batch.Add(pending_, next_pos_++, seq_, true);
        return 1;
    }
    const int n_left = static_cast<int>(prompt_.size()) - n_prompt_done_;
    const int n = std::min(n_left, budget);
    for (int i = 0; i < n; ++i) {
        const bool last = (n_prompt_done_ + i + 1 == static_cast<int>(prompt_.size()));
        const int index = batch.Add(prompt_[n_prompt_done_ + i], next_pos_++, seq_, last);
        if (last) {
            logits_index_ = index;
        }
    }
    n_prompt_done_ += n;
    return n;
}

void QueryRun::Consume(const Context& context, const Model& model) {
    if (logits_index_ < 0) {
        return;
    }
    if (keep_logits_) {
        const auto logits = context.Logits(logits_index_);
        answer_.step_logits.emplace_back(logits.begin(), logits.end());
    }
    gap_sum_ += TopTwoLogitGap(context.Logits(logits_index_));
    ++n_sampled_;
    const Token token = sampler_.Sample(context, logits_index_);
    logits_index_ = -1;
    if (phase_ == Phase::kPrefill) {
        first_token_ = Clock::now();
        phase_ = Phase::kDecode;
    }
    Accept(token, model);
}

void QueryRun::Accept(Token token, const Model& model) {
    if (!ignore_eog_ && model.IsEndOfGeneration(token)) {
        answer_.stop_reason = StopReason::kEndOfGeneration;
        phase_ = Phase::kDone;
        Stream(true);
        return;
    }
    answer_.tokens.push_back(token);
    const std::string piece = model.Piece(token);
    answer_.text += piece;
    const std::size_t at = stop_.Find(answer_.text, piece.size());
    if (at != std::string::npos) {
        answer_.text.resize(at);
        answer_.stop_reason = StopReason::kStopString;
        phase_ = Phase::kDone;
        Stream(true);
        return;
    }
    if (static_cast<int>(answer_.tokens.size()) >= max_tokens_) {
        answer_.stop_reason = StopReason::kMaxTokens;
        phase_ = Phase::kDone;
        Stream(true);
        return;
    }
    pending_ = token;
    Stream(false);
}

void QueryRun::Stream(bool final) {
    if (!on_text_) {
        return;
    }
    const std::string& text = answer_.text;
    std::size_t safe = CompleteUtf8Prefix(text);
    if (!final) {
        safe = std::min(safe, text.size() - stop_.HeldBack(text));
    }
    if (safe > n_streamed_) {
        on_text_(std::string_view(text).substr(n_streamed_, safe - n_streamed_));
        n_streamed_ = safe;
    }
}

Answer QueryRun::TakeAnswer() {
    KV_CHECK(done(), "TakeAnswer before the query finished");
    const auto now = Clock::now();
    // A length stop can cut a multi-byte character; the answer stays valid UTF-8.
    answer_.text.resize(CompleteUtf8Prefix(answer_.text));
    QueryTimings& t = answer_.timings;
    t.n_answer_tokens = static_cast<int>(answer_.tokens.size());
    answer_.confidence = n_sampled_ > 0 ? gap_sum_ / n_sampled_ : 0.0;
    t.prefill_ms = MsBetween(started_, first_token_);
    t.decode_ms = MsBetween(first_token_, now);
    t.total_ms = MsBetween(started_, now);
    return std::move(answer_);
}

}  // namespace kvs
