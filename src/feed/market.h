#pragma once
// Market data for demos, tests and benchmarks: a seeded synthetic feed, real bars loaded from CSV
// files, and compact one-line text renderings of bars and ticks. Standard library only.

#include "common/status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kvs {

// One OHLCV bar. time_s is the bar's open time in Unix seconds (UTC).
struct Bar {
    std::string symbol;
    std::int64_t time_s = 0;
    double open = 0;
    double high = 0;
    double low = 0;
    double close = 0;
    double volume = 0;  // 0 when the source does not report volume
};

// One trade. side is 'B' (buyer-initiated) or 'S' (seller-initiated).
struct Tick {
    std::string symbol;
    std::int64_t time_ms = 0;  // Unix milliseconds (UTC)
    double price = 0;
    double size = 0;
    char side = 'B';
};

// A seeded synthetic feed of several symbols: a geometric random walk with drift/volatility
// regimes and volume bursts, at realistic levels for known names (BTC ~60000, ETH ~3000,
// SPX ~5000, AAPL ~190, NVDA, MSFT, TSLA, SOL, NDX, GOLD, WTI, VIX, EURUSD); any other name gets a
// level between 10 and 1000 derived from its spelling.
//
// Each symbol has its own random stream (derived from the seed and the symbol's name, not its
// position) and its own clock, starting at start_time_s. NextBar and NextTick share that clock and
// price: NextBar covers the next bar_seconds-long slot aligned to start_time_s; NextTick advances
// by a random gap of a fraction of a second. The same seed and the same sequence of calls give the
// same output (own generator; no <random> distributions, whose results differ between standard
// libraries). Prices are rounded to a per-symbol tick size. The clock runs continuously (no market
// hours or weekends). Not thread-safe.
class SyntheticFeed {
public:
    // bar_seconds must be positive.
    SyntheticFeed(std::vector<std::string> symbols,
                  std::uint64_t seed,
                  std::int64_t start_time_s = 1'700'000'000,
                  int bar_seconds = 60);

    // The next bar of symbols()[symbol_index]; the index must be in range.
    Bar NextBar(std::size_t symbol_index);

    // The next trade of symbols()[symbol_index]; the index must be in range.
    Tick NextTick(std::size_t symbol_index);

    const std::vector<std::string>& symbols() const { return symbols_; }

private:
    struct SymbolState {
        std::uint64_t rng = 0;  // SplitMix64 state
        double price = 0;
        double tick_size = 0.01;
        double vol_per_sqrt_s = 0;  // volatility of log price per sqrt(second)
        double volume_per_s = 0;    // typical traded volume per second
        std::int64_t clock_ms = 0;  // end of the last bar or tick
        double drift_per_s = 0;     // current regime's drift of log price
        double vol_mult = 1;        // current regime's volatility multiplier
        double regime_left_s = 0;
        double burst_left_s = 0;
        double burst_mult = 1;  // volume (and volatility) multiplier during a burst
    };

    double Step(SymbolState& state, double dt_s);
    void AdvanceRegimes(SymbolState& state, double dt_s);

    std::vector<std::string> symbols_;
    std::vector<SymbolState> states_;
    std::int64_t start_time_s_;
    int bar_seconds_;
};

// {"BTC", "ETH", "SPX", "AAPL"}.
std::vector<std::string> DefaultSymbols();

// Loads the bars of a CSV file with a header row, all labelled `symbol`, in file order.
// Columns are found by name (case-insensitive; spaces, '_' and '-' ignored), in any order:
//   time:   the first of time_s, time_ms, open_time_ms, open_time, timestamp, datetime, date (with
//           a separate time column if there is one), time; else one stamped at bar end:
//           end_time_ms, end_time_utc, end_time, close_time_ms, close_time
//   prices: open, high, low, close (or price / last / adj close); only a close is required:
//           a missing open is the close, a missing high/low is max/min(open, close)
//   volume: volume / vol (optional; absent or empty -> 0)
// Time cells may be epoch numbers (seconds, or milliseconds when above 1e11), ISO
// "YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z]", or US "M/D/YYYY[ H:MM[:SS]]". Epoch numbers and ISO
// times are UTC; a date without a time is 00:00 UTC; a US-style date with a time of day is taken
// as US/Eastern exchange time (with US daylight saving) and converted to UTC. For files stamped at
// bar end, the bar length is the smallest step between consecutive rows, and time_s becomes the
// open time (a one-row file keeps its end time). Values are kept as recorded (no OHLC repair).
// Returns NotFound when the file does not exist; InvalidArgument for an unreadable or empty file,
// a header without a recognised time or close column, or a bad row ("path:N: ..." with N the
// 1-based line number). Blank lines are skipped; CRLF line ends and a UTF-8 BOM are accepted.
Result<std::vector<Bar>> LoadCsvBars(const std::string& path, const std::string& symbol);

// Compact one-line renderings ending in '\n', cheap to tokenize:
//   "ETH 2023-03-13T09:35Z o=1650.2 h=1652 l=1649.8 c=1651.3 v=123.4\n"
//   "VIX 1990-01-02 c=17.24\n"             (a bar at 00:00 UTC shows the date only; a flat bar,
//                                           open == high == low == close, shows only c=)
//   "BTC 2023-11-14T22:13:20.125Z B 0.25@60012.5\n"  (tick: side, size@price)
// Seconds appear only when non-zero (always for ticks), milliseconds only when non-zero. Prices
// keep 6 significant digits (2 decimals at 3000, 4 at 17), never exponent notation; volumes and
// sizes keep their whole integer part and up to 4 significant digits. Trailing zeros are dropped.
// v= is left out when the volume is 0 (not reported).
std::string RenderBar(const Bar& bar);
std::string RenderTick(const Tick& tick);

}  // namespace kvs
