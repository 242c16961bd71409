#include "query/stop_strings.h"

#include <algorithm>

namespace kvs {

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
    for (const auto& s : stops_) {
        max_len_ = std::max(max_len_, s.size());
    }
}

std::size_t StopMatcher::Find(std::string_view text, std::size_t n_new) const {
    if (stops_.empty()) {
        return std::string_view::npos;
    }
    // A match that ends in the new bytes starts at most max_len_ - 1 bytes before them.
    const std::size_t tail = std::min(text.size(), n_new + max_len_ - 1);
    const std::size_t from = text.size() - tail;
    std::size_t best = std::string_view::npos;
    for (const auto& s : stops_) {
        const std::size_t at = text.find(s, from);
        best = std::min(best, at);
    }
    return best;
}

std::size_t StopMatcher::HeldBack(std::string_view text) const {
    std::size_t held = 0;
    for (const auto& s : stops_) {
        for (std::size_t n = std::min(text.size(), s.size() - 1); n > held; --n) {
            if (text.substr(text.size() - n) == std::string_view(s).substr(0, n)) {
                held = n;
                break;
            }
        }
    }
    return held;
}

}  // namespace kvs
