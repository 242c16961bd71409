#pragma once
// Stop-string detection over generated text.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace kvs {

class StopMatcher {
public:
    explicit StopMatcher(std::vector<std::string> stops);

    // Byte offset of the earliest occurrence of any stop string in `text`, or npos. Only the
    // region that the last `n_new` bytes could complete is searched.
    std::size_t Find(std::string_view text, std::size_t n_new) const;

    // Length of the longest suffix of `text` that begins some stop string (text a streaming
    // client must not see yet: it may turn out to be the start of a stop string).
    std::size_t HeldBack(std::string_view text) const;

    bool empty() const { return stops_.empty(); }

private:
    std::vector<std::string> stops_;
    std::size_t max_len_ = 0;
};

}  // namespace kvs
