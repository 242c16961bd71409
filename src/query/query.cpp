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

void QueryRun::EnableDrafting(const DraftOptions& options, std::span<const Token> lookup) {
    draft_options_ = options;
    if (options.max_draft <= 0) {
        return;
    }
    const std::size_t keep =
        std::min(lookup.size(), static_cast<std::size_t>(std::max(0, options.max_lookup_tokens)));
    history_.assign(lookup.end() - static_cast<std::ptrdiff_t>(keep), lookup.end());
    history_.insert(history_.end(), prompt_.begin(), prompt_.end());
}

int QueryRun::WantedTokens(bool speculate) {
    draft_.clear();
    if (phase_ == Phase::kPrefill) {
        return n_prompt_left();
    }
    if (phase_ == Phase::kDone) {
        return 0;
    }
    if (!speculate || draft_options_.max_draft <= 0) {
        return 1;
    }
    if (pause_left_ > 0) {  // recent drafts were mostly wrong: decode plainly for a while
        --pause_left_;
        return 1;
    }
    // Never draft past the answer's end: the tokens after max_tokens would be thrown away.
    const int room = max_tokens_ - static_cast<int>(answer_.tokens.size()) - 1;
    DraftOptions o = draft_options_;
    o.max_draft = std::min(o.max_draft, room);
    draft_ = LookupDraft(history_, o);
    return 1 + static_cast<int>(draft_.size());
}

int QueryRun::Schedule(Batch& batch, int budget) {
    logits_.clear();
    n_scheduled_draft_ = 0;
    budget = std::min(budget, batch.room());
    if (phase_ == Phase::kDone || budget <= 0) {
        return 0;
    }
    if (phase_ == Phase::kDecode) {
        logits_.push_back(batch.Add(pending_, next_pos_++, seq_, true));
        n_scheduled_draft_ = std::min(budget - 1, static_cast<int>(draft_.size()));
        for (int i = 0; i < n_scheduled_draft_; ++i) {
            logits_.push_back(
                batch.Add(draft_[static_cast<std::size_t>(i)], next_pos_++, seq_, true));
        }
        return 1 + n_scheduled_draft_;
    }
    const int n_left = static_cast<int>(prompt_.size()) - n_prompt_done_;
    const int n = std::min(n_left, budget);
    for (int i = 0; i < n; ++i) {
        const bool last = (n_prompt_done_ + i + 1 == static_cast<int>(prompt_.size()));
        const int index = batch.Add(prompt_[n_prompt_done_ + i], next_pos_++, seq_, last);
        if (last) {
            logits_.push_back(index);
        }
    }
    n_prompt_done_ += n;
    return n;
}

void QueryRun::Sample(const Context& context, int batch_index, const Model& model) {
    if (keep_logits_) {
        const auto logits = context.Logits(batch_index);
        answer_.step_logits.emplace_back(logits.begin(), logits.end());
    }
    gap_sum_ += TopTwoLogitGap(context.Logits(batch_index));
    ++n_sampled_;
    const Token token = sampler_.Sample(context, batch_index);
    if (phase_ == Phase::kPrefill) {
        first_token_ = Clock::now();
        phase_ = Phase::kDecode;
    }
    Accept(token, model);
}

void QueryRun::Consume(Context& context, const Model& model) {
    last_drafted_ = last_accepted_ = 0;
    if (logits_.empty()) {
        return;
    }
    // Position j's logits predict the token after entry j; draft j+1 is right when the token
    // sampled there equals it (for greedy decoding: exactly one-token-at-a-time's choice; for
    // sampling, emitting the sampled token and keeping the draft only when they agree is the
    // standard acceptance rule for a deterministic draft, so the distribution is unchanged).
    const Pos first = next_pos_ - static_cast<Pos>(logits_.size());
    int accepted = 0;
    for (std::size_t j = 0; j < logits_.size(); ++j) {
        Sample(context, logits_[j], model);
        if (phase_ == Phase::kDone || j + 1 == logits_.size() || pending_ != draft_[j]) {
            break;
        }
        ++accepted;
    }
    const int drafted = n_scheduled_draft_;
    logits_.clear();
    n_scheduled_draft_ = 0;
    if (drafted == 0) {
        return;
    }
    last_drafted_ = drafted;
    last_accepted_ = accepted;
    answer_.timings.n_drafted_tokens += drafted;
    answer_.timings.n_accepted_tokens += accepted;
    if (accepted < drafted && phase_ != Phase::kDone) {  // a finished run is rolled back whole
        const Pos keep_to = first + 1 + accepted;  // the sampled entry and the agreeing drafts
        context.RemoveTokens(seq_, keep_to, -1);
        next_pos_ = keep_to;
    }
    acceptance_ = 0.7 * acceptance_ + 0.3 * accepted / drafted;
    if (acceptance_ < draft_options_.min_acceptance) {
        pause_left_ = draft_options_.pause_steps;
        acceptance_ = draft_options_.min_acceptance;  // one more chance after the pause
    }
}

void QueryRun::Accept(Token token, const Model& model) {
    if (!ignore_eog_ && model.IsEndOfGeneration(token)) {
        answer_.stop_reason = StopReason::kEndOfGeneration;
        phase_ = Phase::kDone;
        Stream(true);
        return;
    }
    answer_.tokens.push_back(token);
    if (draft_options_.max_draft > 0) {
        history_.push_back(token);
    }
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
