#pragma once
// Flash Queries: questions registered on a session, re-answered by the engine in idle time after
// each data update and cached with the session version they answer.
//
// This header holds the pure parts (no model, no threads): a question's settings and their
// validation, the result record, the confidence figure, the rule that decides whether an
// evaluation overtaken by new data is dropped or finished, and the time budget. The engine
// (runtime/engine_flash.cpp) runs the evaluations; FlashBoard (query/flash_board.h) serves the
// cached results to any thread.

#include "common/status.h"
#include "common/tokens.h"
#include "engine/sampler.h"
#include "query/query.h"

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace kvs {

inline constexpr int kDefaultFlashMaxTokens = 32;
inline constexpr int kMaxFlashTokens = 256;

struct FlashOptions {
    std::string question;                     // trimmed of surrounding whitespace when registered
    int max_tokens = kDefaultFlashMaxTokens;  // 1..kMaxFlashTokens
    SamplingParams sampling;                  // greedy by default: reproducible answers
};

// The question with leading and trailing ASCII whitespace removed (how questions are matched).
std::string_view TrimQuestion(std::string_view question);

// kInvalidArgument for an empty (after trimming) or invalid-UTF-8 question, max_tokens outside
// 1..kMaxFlashTokens, or bad sampling parameters.
Status ValidateFlash(const FlashOptions& options);

// The live query that computes what a flash evaluation computes (the same question, max_tokens
// and sampling); a cached result answers a query only when the query asks exactly this.
QueryOptions FlashQuery(const FlashOptions& options);

// True when `query` asks what `flash` evaluates: the same trimmed question, max_tokens and
// sampling, and no stop strings, logit recording or ignore_eog.
bool QueryMatchesFlash(const QueryOptions& query, const FlashOptions& flash);

// One evaluation's outcome.
struct FlashResult {
    std::string answer;
    Tokens tokens;
    StopReason stop_reason = StopReason::kMaxTokens;
    std::uint64_t version = 0;  // the session version it answers
    double confidence = 0;      // see Answer::confidence
    double eval_ms = 0;         // start of prefill to the last token
    std::chrono::steady_clock::time_point finished_at;
};

// The confidence of one sampled position: the gap between the largest and the second largest
// finite logit (0 for fewer than two; infinite and NaN logits, e.g. masked ones, are ignored).
// Answer::confidence is its mean over the answer's sampled positions, the one that ended the answer
// (end of generation) included.
double TopTwoLogitGap(std::span<const float> logits);

// New data was accepted while an evaluation runs (on its copy of the session, so the data does
// not wait for it). Returns true to finish the evaluation, false to drop it (free its copy; the
// question is evaluated again at the new version).
//
// A finished answer would be stale on arrival, and the engine time it still needs is better spent
// on the new version, so dropping is the default. Finishing is cheaper when the evaluation is
// decoding and at most kFinishWithinTokens from its max_tokens limit (the answer is still valid
// for its version and for clients that accept stale answers), and necessary after
// kMaxConsecutiveDrops drops of the same question in a row: otherwise a stream faster than one
// evaluation would never get an answer.
inline constexpr int kFinishWithinTokens = 4;
inline constexpr int kMaxConsecutiveDrops = 2;

bool FinishOvertakenEvaluation(bool prefilling,
                               int n_answer_tokens,
                               int max_tokens,
                               int n_consecutive_drops);

// The cap on engine time spent on flash evaluations: a token bucket that fills at `share` of
// wall-clock time, holds at most share x window_ms, and is charged with each step's flash share
// of the decode time. Evaluations start only while the bucket is positive; a started evaluation
// runs to its end and is charged in full, so the bucket may go negative and the debt is repaid
// before the next start. So over any interval T flash work uses at most share x (T + window_ms)
// plus the evaluations running when the bucket emptied. share == 1 turns the cap off.
class FlashBudget {
public:
    // share in (0, 1], window_ms > 0; aborts otherwise. Starts full.
    explicit FlashBudget(double share, double window_ms = 2000.0);

    // Adds the credit earned over `elapsed_ms` of wall-clock time.
    void Refill(double elapsed_ms);

    void Spend(double ms) { credit_ms_ -= ms; }

    bool CanStart() const { return capped() ? credit_ms_ > 0 : true; }

    bool capped() const { return share_ < 1.0; }

    double credit_ms() const { return credit_ms_; }

    double share() const { return share_; }

private:
    double share_;
    double burst_ms_;
    double credit_ms_;
};

}  // namespace kvs
