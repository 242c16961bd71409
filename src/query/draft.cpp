#include "query/draft.h"

#include <algorithm>

namespace kvs {

Tokens LookupDraft(std::span<const Token> history, const DraftOptions& options) {
    const auto size = static_cast<std::ptrdiff_t>(history.size());
    const int n_min = std::max(1, std::min(options.ngram_min, options.ngram_max));
    for (int n = options.ngram_max; n >= n_min; --n) {
        if (size <= n || options.max_draft <= 0) {
            continue;
        }
        const auto key = history.subspan(static_cast<std::size_t>(size - n));
        // The latest earlier occurrence: recent data is what an answer most likely quotes.
        for (std::ptrdiff_t i = size - n - 1; i >= 0; --i) {
            if (!std::equal(key.begin(), key.end(), history.begin() + i)) {
                continue;
            }
            const std::ptrdiff_t from = i + n;  // < size: at least one token follows
            const std::ptrdiff_t to = std::min(size, from + options.max_draft);
            return Tokens(history.begin() + from, history.begin() + to);
        }
    }
    return {};
}

}  // namespace kvs
