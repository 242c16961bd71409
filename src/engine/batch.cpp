#include "engine/batch.h"

#include "common/check.h"

#include <llama.h>

#include <string>

namespace kvs {

Batch::Batch(int capacity)
    : capacity_(capacity),
      batch_(new llama_batch(llama_batch_init(capacity, /*embd=*/0, /*n_seq_max=*/1))) {
    KV_CHECK(capacity > 0, "a batch needs room for at least one token");
}

Batch::~Batch() {
    llama_batch_free(*batch_);
    delete batch_;
}

int Batch::Add(Token token, Pos pos, SeqId seq, bool want_logits) {
    const int i = batch_->n_tokens;
    KV_CHECK(i < capacity_, "batch overflow at " + std::to_string(capacity_) + " tokens");
    batch_->token[i] = token;
    batch_->pos[i] = pos;
    batch_->n_seq_id[i] = 1;
    batch_->seq_id[i][0] = seq;
    batch_->logits[i] = want_logits ? 1 : 0;
    batch_->n_tokens = i + 1;
    n_outputs_ += want_logits ? 1 : 0;
    return i;
}

void Batch::Clear() {
    batch_->n_tokens = 0;
    n_outputs_ = 0;
}

int Batch::size() const {
    return batch_->n_tokens;
}

}  // namespace kvs
