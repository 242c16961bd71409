#pragma once
// A session: one stream of data kept as a sequence in the KV cache. Plain data; the runtime
// owns every Session and mutates it only on the engine thread.

#include "common/tokens.h"

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>

namespace kvs {

using SessionId = std::uint64_t;
using TenantId = int;

// What an append does when the session's slot is full.
enum class OnFull : std::uint8_t {
    kReject,  // refuse the append with context_full
    kRoll,    // drop the oldest data after the pinned prefix and shift positions (a sliding window)
};

// An accepted append waiting to be ingested (its tokens are prefilled in chunks).
struct PendingAppend {
    Tokens tokens;
    std::uint64_t version = 0;  // the session version once it is fully in the KV cache
    int n_done = 0;             // tokens already in the KV cache
    bool held = false;          // not yet durable: neither it nor anything after it may be ingested
    std::chrono::steady_clock::time_point accepted{};  // admitted: where its ingest lag starts
};

struct Session {
    SessionId id = 0;
    TenantId tenant = 0;
    OnFull on_full = OnFull::kReject;
    SeqId seq = -1;             // the KV sequence (slot) holding this session; -1 while parked
    Tokens tokens;              // everything in the sequence, in order: [BOS] prefix data...
    int n_prefix_tokens = 0;    // the pinned prefix (BOS included) at the start of `tokens`
    std::uint64_t version = 0;  // the last append fully in the KV cache
    int n_ctx = 0;              // cells the session may fill
    std::deque<PendingAppend> pending;   // accepted, not yet (fully) ingested, in arrival order
    int n_pending_tokens = 0;            // sum of pending tokens not yet ingested
    std::uint64_t accepted_version = 0;  // the version the last accepted append will produce
    std::uint64_t last_used = 0;         // engine tick of the last work (LRU for parking)
    std::uint64_t running_query = 0;     // the query holding the sequence, 0 when none
    std::uint64_t n_dropped_tokens = 0;  // data tokens rolled out of the window so far
    std::uint64_t resident_since = 0;    // engine step at which it last became resident
    std::uint64_t template_id = 0;       // the shared-prefix template it was copied from, 0: none
    std::uint64_t snapshot_version = 0;  // the version its last snapshot covers (0: none)

    int n_tokens() const { return static_cast<int>(tokens.size()); }

    int room() const { return n_ctx - n_tokens(); }

    bool resident() const { return seq >= 0; }

    bool busy() const { return running_query != 0; }

    // Pending tokens that may be ingested now: those before the first held append.
    int n_ready_tokens() const {
        int n = 0;
        for (const PendingAppend& a : pending) {
            if (a.held) {
                break;
            }
            n += static_cast<int>(a.tokens.size()) - a.n_done;
        }
        return n;
    }

    // True when no append is half-way into the KV cache (queries start only at such a point).
    bool at_boundary() const { return pending.empty() || pending.front().n_done == 0; }
};

}  // namespace kvs
