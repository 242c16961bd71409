#pragma once
// Prefix-aware grouped prefill: sessions created with the same prefix (one system prompt for many
// sessions) compute it once. The first creation prefills it into a template sequence; every later
// session with that prefix starts from a copy of it (llama_memory_seq_cp: in split mode a copy of
// the stream, far cheaper than a prefill). Templates count the sessions made from them and are
// freed when the last one is gone, or evicted (least recently used) when a new prefix needs a
// template sequence; sessions keep their copies either way.
//
// Owns: the template sequences (their SlotPool) and the map from prefix tokens to template.
// Thread: the engine thread only, like the Context it writes to.

#include "common/metrics.h"
#include "common/status.h"
#include "common/tokens.h"
#include "session/slot_pool.h"

#include <cstdint>
#include <map>
#include <optional>
#include <span>

namespace kvs {

class Context;

// Prefills `tokens` into `seq` at positions start.. in chunks of the context's n_batch. On error
// (the decode's, engine/context.h) whatever it added to `seq` is removed again.
Status PrefillSequence(Context& context, SeqId seq, Pos start, std::span<const Token> tokens);

class PrefixTemplates {
public:
    // `slots`: the sequences set aside for templates (may hold none: every prefix is prefilled
    // directly). Prefixes shorter than `min_tokens` are always prefilled directly.
    PrefixTemplates(Context& context, SlotPool slots, int min_tokens, MetricsRegistry& metrics);

    // Fills the empty sequence `seq` with `prefix`: a copy of its template, made now when the
    // prefix is new (evicting the least recently used template when every template sequence is
    // taken), or a direct prefill for a short prefix or without template sequences. Returns the
    // template the session now counts against (0: none). On error (the prefill's) nothing is
    // kept: no new template, nothing in `seq`. Invariant: every template sequence taken from
    // the pool is one template in the map.
    Result<std::uint64_t> Fill(SeqId seq, const Tokens& prefix);

    // A session filled from template `id` (with this prefix) is gone. No-op for id 0 or a
    // template evicted since.
    void Release(const Tokens& prefix, std::uint64_t id);

    int n_templates() const { return static_cast<int>(templates_.size()); }

private:
    struct Template {
        std::uint64_t id = 0;
        SeqId seq = -1;
        int n_sessions = 0;  // sessions filled from it (resident or parked)
        std::uint64_t last_used = 0;
    };

    // A free template sequence, evicting the least recently used template when none is free;
    // nothing when there are no template sequences at all.
    std::optional<SeqId> AcquireSeq();
    void Drop(std::map<Tokens, Template>::iterator it);

    Context& context_;
    SlotPool slots_;
    int min_tokens_;
    Counter& hits_;
    Counter& misses_;
    std::map<Tokens, Template> templates_;  // by prefix tokens
    std::uint64_t next_id_ = 1;
    std::uint64_t n_uses_ = 0;  // the LRU clock
};

}  // namespace kvs
