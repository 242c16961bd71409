#pragma once
// One question being answered on one KV sequence: prefill its prompt, sample, stop, report.
// A QueryRun is a small state machine driven by the runtime, one decode step at a time, so many
// runs share each batch:
//
//     while (!run.done()) { run.Schedule(batch, budget); context.Decode(batch); run.Consume(...); }
//
// It only appends to its sequence from `start_pos`; the runtime rolls the sequence back to
// `start_pos` afterwards, which leaves the session exactly as before the query.
// Thread: the engine thread.

#include "common/status.h"
#include "common/tokens.h"
#include "engine/sampler.h"
#include "query/draft.h"
#include "query/stop_strings.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace kvs {

class Batch;
class Context;
class Model;

struct QueryOptions {
    std::string question;
    int max_tokens = 64;              // 1..kMaxAnswerTokens
    std::vector<std::string> stop;    // the answer ends before the first of these
    SamplingParams sampling;          // greedy by default
    bool keep_logits = false;         // record each step's logits (tests, diagnostics)
    bool ignore_eog = false;          // generate exactly max_tokens (benchmarks)
    std::uint64_t max_staleness = 0;  // versions the answer may lag the accepted data (0: read
                                      // every append accepted before the query)
    // A registered flash question's cached result may answer (see query/flash_board.h): when it
    // answers the current version, is at most max_staleness versions behind, or was computed at
    // most max_staleness_ms ago (0: no age allowance).
    bool allow_cached = true;
    double max_staleness_ms = 0;
    // Streaming: called on the engine thread with each new piece of answer text (valid UTF-8,
    // never a possible stop string's start); the pieces concatenate to Answer::text. Quick, and
    // must not call back into the engine.
    std::function<void(std::string_view)> on_text;
    // Set by the client to abandon the query: it ends with kAborted at the next step and its
    // sequence is rolled back.
    std::shared_ptr<const std::atomic<bool>> cancel;
    // When the question reached the server (the HTTP route, or Runtime::Query when unset): the
    // start of QueryTimings::wait_ms.
    std::chrono::steady_clock::time_point received;
};

inline constexpr int kMaxAnswerTokens = 4096;
inline constexpr int kMaxStopStrings = 8;

// kInvalidArgument for an empty or invalid-UTF-8 question, max_tokens out of range, bad stop
// strings or sampling parameters.
Status ValidateQuery(const QueryOptions& options);

enum class StopReason { kEndOfGeneration, kStopString, kMaxTokens };

const char* StopReasonName(StopReason reason);

// Where a question's time went, in order; wait_ms + queued_ms + total_ms is its time from
// arrival to its last token (the HTTP side is what a client measures beyond that).
struct QueryTimings {
    int n_context_tokens = 0;  // tokens already in the sequence before the prompt
    // Arrival (QueryOptions::received) to the engine taking the question: the engine step in
    // flight and the commands queued before it.
    double wait_ms = 0;
    // Taken to started: the session's own catch-up ingest (the data the question must read) and
    // any wait for the session or a slot; for an ask that joined a running flash evaluation,
    // until it joined.
    double queued_ms = 0;
    int n_prompt_tokens = 0;  // tokens this query prefilled
    int n_answer_tokens = 0;
    double prefill_ms = 0;      // start to first answer token
    double decode_ms = 0;       // first to last answer token
    double total_ms = 0;        // start to last answer token (prefill_ms + decode_ms)
    int n_drafted_tokens = 0;   // speculative decoding: tokens guessed by prompt lookup ...
    int n_accepted_tokens = 0;  // ... and those the model agreed with (each saved a step)
};

using FlashId = std::uint64_t;  // a registered flash question (query/flash.h)

struct Answer {
    std::string text;
    Tokens tokens;
    StopReason stop_reason = StopReason::kMaxTokens;
    std::uint64_t version = 0;  // session version the answer is about (0 for stateless)
    // Mean over the sampled positions of the gap between the top two logits (query/flash.h):
    // larger means the model was surer of each token.
    double confidence = 0;
    bool cached = false;       // served from a flash question's cached result, nothing computed
    FlashId flash_id = 0;      // the flash question that answered (cached) or 0
    double cached_age_ms = 0;  // cached: how long ago the result was computed
    // Answered by the flash evaluation of flash_id that was running when the ask came (it
    // waited for it at query priority instead of computing the question again).
    bool joined = false;
    QueryTimings timings;
    std::vector<std::vector<float>> step_logits;  // when keep_logits
};

class QueryRun {
public:
    // `prompt` is prefilled at positions start_pos.. of `seq`; options must pass ValidateQuery.
    QueryRun(SeqId seq, Pos start_pos, Tokens prompt, const QueryOptions& options);

    // Speculative decoding by prompt lookup (query/draft.h): while decoding, the run may put the
    // next tokens it guesses after its sampled one and keep those the model agrees with. Drafts
    // come from `lookup` (the end of the session's context), the prompt and the answer so far.
    void EnableDrafting(const DraftOptions& options, std::span<const Token> lookup);

    // Tokens the run wants in the next batch: its prompt's remainder while prefilling; while
    // decoding 1, plus the tokens it drafts when `speculate` (the engine's concurrency cap) and
    // its recent acceptance allow.
    int WantedTokens(bool speculate);

    // Adds this run's next tokens to `batch`, at most `budget` of them; returns how many.
    int Schedule(Batch& batch, int budget);

    // After the batch was decoded: samples if this run asked for logits. With drafted tokens in
    // the batch it samples at each of their positions in turn while the model agrees with the
    // draft, and removes the rejected ones from the sequence's KV cache: the cache then holds
    // exactly what one-token-at-a-time decoding would have put there.
    void Consume(Context& context, const Model& model);

    // Drafted and accepted tokens of the last Consume (metrics).
    int last_drafted() const { return last_drafted_; }

    int last_accepted() const { return last_accepted_; }

    bool done() const { return phase_ == Phase::kDone; }

    bool prefilling() const { return phase_ == Phase::kPrefill; }

    // Prompt tokens not yet scheduled.
    int n_prompt_left() const { return static_cast<int>(prompt_.size()) - n_prompt_done_; }

    int n_answer_tokens() const { return static_cast<int>(answer_.tokens.size()); }

    // True when the last Schedule() put a token that wants logits into the batch.
    bool wants_logits() const { return !logits_.empty(); }

    SeqId seq() const { return seq_; }

    Pos start_pos() const { return start_pos_; }

    // The finished answer (done() must hold).
    Answer TakeAnswer();

private:
    enum class Phase { kPrefill, kDecode, kDone };
    using Clock = std::chrono::steady_clock;

    void Accept(Token token, const Model& model);
    void Sample(const Context& context, int batch_index, const Model& model);
    void Stream(bool final);  // hands on_text the text that is safe to show

    SeqId seq_;
    Pos start_pos_;
    Tokens prompt_;
    int max_tokens_;
    bool keep_logits_;
    bool ignore_eog_;
    Sampler sampler_;
    StopMatcher stop_;
    Phase phase_ = Phase::kPrefill;
    int n_prompt_done_ = 0;
    Pos next_pos_;
    Token pending_ = -1;  // last sampled token, decoded in the next step
    double gap_sum_ = 0;  // top-two logit gaps of the sampled positions
    int n_sampled_ = 0;
    std::vector<int> logits_;  // batch entries whose logits this run reads, in order
    // Speculative decoding.
    DraftOptions draft_options_;
    Tokens history_;  // lookup context + prompt + answer: where drafts are found
    Tokens draft_;    // the guesses of the next step (after pending_)
    int n_scheduled_draft_ = 0;
    double acceptance_ = 1;  // recent accepted / drafted (exponentially weighted)
    int pause_left_ = 0;     // steps without drafting left after a poor acceptance
    int last_drafted_ = 0;
    int last_accepted_ = 0;
    Answer answer_;
    std::function<void(std::string_view)> on_text_;
    std::size_t n_streamed_ = 0;  // bytes of answer_.text handed to on_text_
    Clock::time_point started_ = Clock::now();
    Clock::time_point first_token_;
};

}  // namespace kvs
