// Prefix-aware grouped prefill: sessions created with the same prefix (one system prompt for
// many sessions) compute it once. The first creation prefills it into a template sequence; every
// later session with that prefix starts from a copy of it (llama_memory_seq_cp: in split mode a
// copy of the stream, far cheaper than a prefill). Creations run on the engine thread one after
// another, so creations that arrive together wait for the first one's prefill instead of racing.
// Templates count the sessions made from them and are freed when the last one closes (or
// evicted, least recently used, when a new prefix needs a template sequence).

#include "runtime/engine.h"

namespace kvs {

Status Engine::PrefillNow(SeqId seq, Pos start, std::span<const Token> tokens) {
    Batch batch(context_->n_batch());
    for (std::size_t done = 0; done < tokens.size();) {
        batch.Clear();
        while (done < tokens.size() && batch.room() > 0) {
            batch.Add(tokens[done], start + static_cast<Pos>(done), seq, false);
            ++done;
        }
        if (Status st = context_->Decode(batch); !st.ok()) {
            context_->RemoveTokens(seq, start, -1);
            return st;
        }
    }
    return Status::Ok();
}

Status Engine::PrefillPrefix(Session& s, const Tokens& prefix) {
    const bool shareable = options_.n_template_slots > 0 &&
                           static_cast<int>(prefix.size()) >= options_.min_template_tokens;
    if (!shareable) {
        return PrefillNow(s.seq, 0, prefix);
    }
    auto it = templates_.find(prefix);
    if (it == templates_.end()) {
        auto seq = AcquireTemplateSeq();
        if (!seq) {  // every template sequence is held by a prefill in progress: none to share
            return PrefillNow(s.seq, 0, prefix);
        }
        if (Status st = PrefillNow(*seq, 0, prefix); !st.ok()) {
            context_->ClearSequence(*seq);
            template_slots_.Release(*seq);
            return st;
        }
        it = templates_.emplace(prefix, PrefixTemplate{next_template_++, *seq, 0, 0}).first;
        metrics_.GetCounter("kvs_template_misses_total", "Prefixes prefilled into a template")
            .Add();
    } else {
        metrics_.GetCounter("kvs_template_hits_total", "Sessions started from a cached prefix")
            .Add();
    }
    context_->CopySequence(it->second.seq, s.seq);
    s.template_id = it->second.id;
    it->second.n_sessions += 1;
    it->second.last_used = ++tick_;
    return Status::Ok();
}

std::optional<SeqId> Engine::AcquireTemplateSeq() {
    if (auto seq = template_slots_.Acquire()) {
        return seq;
    }
    if (templates_.empty()) {
        return std::nullopt;
    }
    // Evict the least recently used template; its sessions keep their copies.
    auto lru = templates_.begin();
    for (auto t = templates_.begin(); t != templates_.end(); ++t) {
        lru = t->second.last_used < lru->second.last_used ? t : lru;
    }
    context_->ClearSequence(lru->second.seq);
    template_slots_.Release(lru->second.seq);
    templates_.erase(lru);
    return template_slots_.Acquire();
}

void Engine::ReleaseTemplate(const Session& s) {
    const Tokens prefix(s.tokens.begin(), s.tokens.begin() + s.n_prefix_tokens);
    auto it = templates_.find(prefix);
    if (s.template_id == 0 || it == templates_.end() || it->second.id != s.template_id ||
        --it->second.n_sessions > 0) {
        return;  // not from a template, or from one evicted since
    }
    context_->ClearSequence(it->second.seq);
    template_slots_.Release(it->second.seq);
    templates_.erase(it);
}

}  // namespace kvs
