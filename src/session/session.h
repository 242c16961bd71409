#pragma once
// A session: one stream of data kept as a sequence in the KV cache. Plain data; the runtime
// owns every Session and mutates it only on the engine thread.

#include "common/tokens.h"

#include <cstdint>
#include <string>

namespace kvs {

using SessionId = std::uint64_t;

struct Session {
    SessionId id = 0;
    SeqId seq = -1;             // the KV sequence (slot) holding this session
    Tokens tokens;              // everything in the sequence, in order: [BOS] prefix data...
    int n_prefix_tokens = 0;    // the pinned prefix (BOS included) at the start of `tokens`
    std::uint64_t version = 0;  // advances by one with every accepted append
    int n_ctx = 0;              // cells the session may fill

    int n_tokens() const { return static_cast<int>(tokens.size()); }

    int room() const { return n_ctx - n_tokens(); }
};

}  // namespace kvs
