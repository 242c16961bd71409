#pragma once
// The free list of KV sequences ("slots"). Thread: the engine thread.

#include "common/tokens.h"

#include <optional>
#include <vector>

namespace kvs {

class SlotPool {
public:
    // Slots are the sequence ids [first, first + n_slots).
    SlotPool(SeqId first, int n_slots);

    bool CanAcquire() const { return !free_.empty(); }

    // The lowest free slot, or nothing when all are taken.
    std::optional<SeqId> Acquire();

    // Returns a slot taken by Acquire(); releasing a free or foreign slot aborts.
    void Release(SeqId seq);

    int n_slots() const { return static_cast<int>(in_use_.size()); }

    int n_free() const { return static_cast<int>(free_.size()); }

private:
    SeqId first_;
    std::vector<SeqId> free_;  // kept sorted descending, so back() is the lowest id
    std::vector<bool> in_use_;
};

}  // namespace kvs
