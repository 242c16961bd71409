#include "session/slot_pool.h"

#include "common/check.h"

#include <algorithm>
#include <functional>
#include <string>

namespace kvs {

SlotPool::SlotPool(SeqId first, int n_slots) : first_(first), in_use_(n_slots, false) {
    KV_CHECK(n_slots >= 0 && first >= 0, "bad slot range");
    for (int i = n_slots - 1; i >= 0; --i) {
        free_.push_back(first + i);
    }
}

std::optional<SeqId> SlotPool::Acquire() {
    if (free_.empty()) {
        return std::nullopt;
    }
    const SeqId seq = free_.back();
    free_.pop_back();
    in_use_[seq - first_] = true;
    return seq;
}

void SlotPool::Release(SeqId seq) {
    const int i = seq - first_;
    KV_CHECK(i >= 0 && i < n_slots() && in_use_[i],
             "release of slot " + std::to_string(seq) + " that is not in use");
    in_use_[i] = false;
    free_.insert(std::lower_bound(free_.begin(), free_.end(), seq, std::greater<>()), seq);
}

}  // namespace kvs
