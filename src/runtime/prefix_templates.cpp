#include "runtime/prefix_templates.h"

#include "engine/batch.h"
#include "engine/context.h"

namespace kvs {

Status PrefillSequence(Context& context, SeqId seq, Pos start, std::span<const Token> tokens) {
    Batch batch(context.n_batch());
    for (std::size_t done = 0; done < tokens.size();) {
        batch.Clear();
        while (done < tokens.size() && batch.room() > 0) {
            batch.Add(tokens[done], start + static_cast<Pos>(done), seq, false);
            ++done;
        }
        if (Status st = context.Decode(batch); !st.ok()) {
            context.RemoveTokens(seq, start, -1);
            return st;
        }
    }
    return Status::Ok();
}

PrefixTemplates::PrefixTemplates(Context& context,
                                 SlotPool slots,
                                 int min_tokens,
                                 MetricsRegistry& metrics)
    : context_(context),
      slots_(std::move(slots)),
      min_tokens_(min_tokens),
      hits_(metrics.GetCounter("kvs_template_hits_total", "Sessions started from a cached prefix")),
      misses_(
          metrics.GetCounter("kvs_template_misses_total", "Prefixes prefilled into a template")) {}

Result<std::uint64_t> PrefixTemplates::Fill(SeqId seq, const Tokens& prefix) {
    if (slots_.n_slots() == 0 || static_cast<int>(prefix.size()) < min_tokens_) {
        KV_RETURN_IF_ERROR(PrefillSequence(context_, seq, 0, prefix));
        return std::uint64_t{0};
    }
    auto it = templates_.find(prefix);
    if (it == templates_.end()) {
        auto template_seq = AcquireSeq();
        KV_CHECK(template_seq.has_value(), "a template sequence is free after an eviction");
        if (Status st = PrefillSequence(context_, *template_seq, 0, prefix); !st.ok()) {
            slots_.Release(*template_seq);  // PrefillSequence removed what it added
            return st;
        }
        it = templates_.emplace(prefix, Template{next_id_++, *template_seq, 0, 0}).first;
        misses_.Add();
    } else {
        hits_.Add();
    }
    context_.CopySequence(it->second.seq, seq);
    it->second.n_sessions += 1;
    it->second.last_used = ++n_uses_;
    return it->second.id;
}

void PrefixTemplates::Release(const Tokens& prefix, std::uint64_t id) {
    auto it = templates_.find(prefix);
    if (id == 0 || it == templates_.end() || it->second.id != id) {
        return;  // not from a template, or from one evicted since
    }
    if (--it->second.n_sessions == 0) {
        Drop(it);
    }
}

std::optional<SeqId> PrefixTemplates::AcquireSeq() {
    if (auto seq = slots_.Acquire()) {
        return seq;
    }
    if (templates_.empty()) {
        return std::nullopt;
    }
    auto lru = templates_.begin();
    for (auto t = templates_.begin(); t != templates_.end(); ++t) {
        lru = t->second.last_used < lru->second.last_used ? t : lru;
    }
    Drop(lru);
    return slots_.Acquire();
}

void PrefixTemplates::Drop(std::map<Tokens, Template>::iterator it) {
    context_.ClearSequence(it->second.seq);
    slots_.Release(it->second.seq);
    templates_.erase(it);
}

}  // namespace kvs
