#pragma once
// Prompt-lookup drafting for speculative decoding: the next tokens of an answer guessed by finding
// the latest earlier occurrence of its last few tokens in the session's own context (and the
// answer so far) and copying what followed. No draft model, no second KV cache: the guesses are
// verified in one batch with the real next token (query/query.h), and only the agreeing prefix
// is kept. Answers about streaming data quote it (prices, symbols, timestamps), which is when
// this pays.

#include "common/tokens.h"

#include <span>

namespace kvs {

struct DraftOptions {
    int max_draft = 0;             // most tokens drafted per step; 0: speculation off
    int ngram_max = 3;             // the longest suffix looked up
    int ngram_min = 2;             // the shortest (a single token matches too often to pay)
    double min_acceptance = 0.3;   // a sequence whose recent acceptance falls below this ...
    int pause_steps = 8;           // ... drafts nothing for this many steps, then tries again
    int max_lookup_tokens = 8192;  // how much of the session's context is searched (its end)
};

// Up to max_draft tokens that followed the latest earlier occurrence of the longest suffix of
// `history` (ngram_max tokens down to ngram_min) found elsewhere in it; empty when none.
Tokens LookupDraft(std::span<const Token> history, const DraftOptions& options);

}  // namespace kvs
