#pragma once
// Market data as the CLI commands feed it: bars per session (synthetic or from CSV files) and
// runs of data tokens of an exact length.

#include "feed/market.h"
#include "runtime/engine.h"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace kvs {

// Bars for each session: real bars from CSV files (session i replays file i mod n, from the
// start again when it runs out) or the synthetic feed (session i follows symbol i mod n).
// Not thread-safe. Throws std::runtime_error for a bad --csv argument.
class BarSource {
public:
    BarSource(const std::vector<std::string>& csv_paths, std::uint64_t seed)
        : feed_(DefaultSymbols(), seed) {
        for (const auto& arg : csv_paths) {
            // SYMBOL=PATH, or PATH (the symbol is then the file name's stem).
            const std::size_t eq = arg.find('=');
            const std::string path = eq == std::string::npos ? arg : arg.substr(eq + 1);
            const std::string symbol = eq == std::string::npos
                                           ? std::filesystem::path(path).stem().string()
                                           : arg.substr(0, eq);
            auto bars = LoadCsvBars(path, symbol);
            if (!bars.ok()) {
                throw std::runtime_error("--csv " + path + ": " + bars.status().ToString());
            }
            if (bars->empty()) {
                throw std::runtime_error("--csv " + path + ": no bars");
            }
            files_.push_back(std::move(bars).value());
        }
    }

    bool synthetic() const { return files_.empty(); }

    std::string Symbol(std::size_t session) const {
        return files_.empty() ? feed_.symbols()[session % feed_.symbols().size()]
                              : files_[session % files_.size()].front().symbol;
    }

    Bar Next(std::size_t session) {
        if (files_.empty()) {
            return feed_.NextBar(session % feed_.symbols().size());
        }
        const auto& bars = files_[session % files_.size()];
        std::size_t& next = next_[session];
        return bars[next++ % bars.size()];
    }

private:
    SyntheticFeed feed_;
    std::vector<std::vector<Bar>> files_;
    std::map<std::size_t, std::size_t> next_;
};

// Exactly `n` data tokens from the synthetic feed (seed 7), tokenized bar by bar as appends are.
inline Tokens MarketTokens(const Engine& e, int n) {
    SyntheticFeed feed(DefaultSymbols(), 7);
    Tokens out;
    for (std::size_t i = 0; static_cast<int>(out.size()) < n; ++i) {
        const Tokens t = *e.model().Tokenize(RenderBar(feed.NextBar(i % 4)), false);
        out.insert(out.end(), t.begin(), t.end());
    }
    out.resize(static_cast<std::size_t>(n));
    return out;
}

}  // namespace kvs
