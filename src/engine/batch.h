#pragma once
// A token batch for one llama_decode call. Entries for one sequence must be contiguous and in
// position order (split KV mode builds ubatches per sequence). Thread: the engine thread.

#include "common/tokens.h"

#include <cstdint>

struct llama_batch;

namespace kvs {

class Batch {
public:
    explicit Batch(int capacity);
    ~Batch();
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

    // Appends one token; returns its index in the batch (the index its logits are read by).
    // Adding past capacity() is a bug and aborts.
    int Add(Token token, Pos pos, SeqId seq, bool want_logits);

    void Clear();

    int size() const;

    int capacity() const { return capacity_; }

    bool empty() const { return size() == 0; }

    int room() const { return capacity_ - size(); }

    int n_outputs() const { return n_outputs_; }

    llama_batch& raw() { return *batch_; }

private:
    int capacity_;
    int n_outputs_ = 0;
    llama_batch* batch_;
};

}  // namespace kvs
