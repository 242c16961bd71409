// SyntheticFeed: per-symbol geometric random walks with drift regimes and volume bursts.

#include "feed/market.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <numbers>
#include <string_view>
#include <utility>

namespace kvs {
namespace {

constexpr double kSecondsPerYear = 365.25 * 86400.0;
constexpr int kSubStepsPerBar = 8;      // intra-bar path points that set high and low
constexpr double kRegimeBars = 240;     // mean regime length, in bars
constexpr double kBurstEveryBars = 60;  // mean time between volume bursts, in bars
constexpr double kBurstBars = 5;        // mean burst length, in bars
constexpr double kTickGapS = 0.5;       // mean time between trades outside bursts

// Typical level, annualised volatility, volume per minute and price increment of known names.
struct Profile {
    std::string_view name;
    double price;
    double annual_vol;
    double volume_per_min;
    double tick_size;
};

constexpr std::array<Profile, 13> kProfiles = {{
    {"BTC", 60000, 0.55, 15, 0.01},
    {"ETH", 3000, 0.70, 250, 0.01},
    {"SOL", 150, 0.90, 8000, 0.001},
    {"SPX", 5000, 0.15, 4e6, 0.01},
    {"NDX", 18000, 0.20, 1e6, 0.01},
    {"AAPL", 190, 0.25, 1.2e5, 0.01},
    {"MSFT", 420, 0.25, 5e4, 0.01},
    {"NVDA", 900, 0.50, 1.2e5, 0.01},
    {"TSLA", 240, 0.55, 2.5e5, 0.01},
    {"GOLD", 2000, 0.15, 500, 0.1},
    {"WTI", 80, 0.35, 1000, 0.01},
    {"VIX", 15, 0.90, 2000, 0.01},
    {"EURUSD", 1.08, 0.07, 1e6, 0.00001},
}};

// SplitMix64: tiny, fast, and identical everywhere.
std::uint64_t NextU64(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// Uniform in [0, 1).
double Uniform(std::uint64_t& state) {
    return static_cast<double>(NextU64(state) >> 11) * 0x1.0p-53;
}

// Standard normal (Box-Muller; one of the pair is dropped to keep the state a single integer).
double Normal(std::uint64_t& state) {
    const double u1 = 1.0 - Uniform(state);  // (0, 1]
    const double u2 = Uniform(state);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

double Exponential(std::uint64_t& state, double mean) {
    return -mean * std::log(1.0 - Uniform(state));
}

// Log-normal with mean 1.
double LogNormal(std::uint64_t& state, double sigma) {
    return std::exp(sigma * Normal(state) - 0.5 * sigma * sigma);
}

std::uint64_t Fnv1a(std::string_view text) {
    std::uint64_t hash = 0xcbf29ce484222325ULL;
    for (const char c : text) {
        hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    }
    return hash;
}

std::string Upper(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return out;
}

// The profile of a known name, or one derived from the name's hash: a level between 10 and 1000,
// 35% volatility and about $2M traded a minute.
Profile FindProfile(std::string_view symbol) {
    const std::string upper = Upper(symbol);
    for (const Profile& profile : kProfiles) {
        if (profile.name == upper) {
            return profile;
        }
    }
    std::uint64_t state = Fnv1a(upper);
    const double level = std::round(std::pow(10.0, 1.0 + 2.0 * Uniform(state)) * 100.0) / 100.0;
    return {symbol, level, 0.35, 2e6 / level, 0.01};
}

double RoundToTick(double price, double tick_size) {
    return std::max(tick_size, std::round(price / tick_size) * tick_size);
}

std::int64_t CeilDiv(std::int64_t a, std::int64_t b) {
    return a / b + (a % b > 0 ? 1 : 0);
}

}  // namespace

std::vector<std::string> DefaultSymbols() {
    return {"BTC", "ETH", "SPX", "AAPL"};
}

SyntheticFeed::SyntheticFeed(std::vector<std::string> symbols,
                             std::uint64_t seed,
                             std::int64_t start_time_s,
                             int bar_seconds)
    : symbols_(std::move(symbols)), start_time_s_(start_time_s), bar_seconds_(bar_seconds) {
    KV_CHECK(bar_seconds_ > 0, "bar_seconds must be positive");
    states_.reserve(symbols_.size());
    for (const std::string& symbol : symbols_) {
        const Profile profile = FindProfile(symbol);
        SymbolState state;
        state.rng = seed ^ Fnv1a(Upper(symbol));
        NextU64(state.rng);
        // The starting level varies by +-5% between seeds.
        state.price = profile.price * std::exp(0.05 * (2.0 * Uniform(state.rng) - 1.0));
        state.tick_size = profile.tick_size;
        state.vol_per_sqrt_s = profile.annual_vol / std::sqrt(kSecondsPerYear);
        state.volume_per_s = profile.volume_per_min / 60.0;
        state.clock_ms = start_time_s_ * 1000;
        states_.push_back(state);
    }
}

// Draws a new drift/volatility regime when the current one ends, and starts or ends volume bursts.
void SyntheticFeed::AdvanceRegimes(SymbolState& state, double dt_s) {
    constexpr std::array<double, 6> kTrends = {-1.5, -0.6, 0.0, 0.0, 0.6, 1.5};
    constexpr std::array<double, 3> kVolMults = {0.7, 1.0, 1.8};
    state.regime_left_s -= dt_s;
    if (state.regime_left_s <= 0) {
        // A trend of `trend` standard deviations over a regime of mean length.
        const double mean_s = kRegimeBars * bar_seconds_;
        state.regime_left_s = Exponential(state.rng, mean_s);
        state.vol_mult = kVolMults[NextU64(state.rng) % kVolMults.size()];
        const double trend = kTrends[NextU64(state.rng) % kTrends.size()];
        state.drift_per_s = trend * state.vol_per_sqrt_s * state.vol_mult / std::sqrt(mean_s);
    }
    if (state.burst_left_s > 0) {
        state.burst_left_s -= dt_s;
        if (state.burst_left_s <= 0) {
            state.burst_mult = 1;
        }
    } else if (Uniform(state.rng) < dt_s / (kBurstEveryBars * bar_seconds_)) {
        state.burst_mult = 3.0 + 5.0 * Uniform(state.rng);
        state.burst_left_s = Exponential(state.rng, kBurstBars * bar_seconds_);
    }
}

// Moves the price over dt_s seconds; returns the move in standard deviations.
double SyntheticFeed::Step(SymbolState& state, double dt_s) {
    AdvanceRegimes(state, dt_s);
    const double sigma =
        state.vol_per_sqrt_s * state.vol_mult * std::sqrt(state.burst_mult) * std::sqrt(dt_s);
    const double z = Normal(state.rng);
    state.price *= std::exp(state.drift_per_s * dt_s + sigma * z);
    return z;
}

Bar SyntheticFeed::NextBar(std::size_t symbol_index) {
    KV_CHECK(symbol_index < states_.size(), "symbol index out of range");
    SymbolState& state = states_[symbol_index];

    // The bar opens at the first slot boundary at or after the symbol's clock.
    const std::int64_t bar_ms = std::int64_t{bar_seconds_} * 1000;
    const std::int64_t origin_ms = start_time_s_ * 1000;
    const std::int64_t open_ms = origin_ms + CeilDiv(state.clock_ms - origin_ms, bar_ms) * bar_ms;
    if (open_ms > state.clock_ms) {
        Step(state, static_cast<double>(open_ms - state.clock_ms) / 1000.0);
    }

    // Walk an intra-bar path; its extremes are the high and low.
    const double open = state.price;
    double high = open;
    double low = open;
    double abs_z_sum = 0;
    for (int i = 0; i < kSubStepsPerBar; ++i) {
        abs_z_sum += std::abs(Step(state, static_cast<double>(bar_seconds_) / kSubStepsPerBar));
        high = std::max(high, state.price);
        low = std::min(low, state.price);
    }
    state.clock_ms = open_ms + bar_ms;

    // Volume follows the regime, bursts and the size of the moves (E|z| is about 0.8).
    const double activity = 0.6 + 0.5 * abs_z_sum / kSubStepsPerBar;
    const double volume = state.volume_per_s * bar_seconds_ * state.vol_mult * state.burst_mult *
                          activity * LogNormal(state.rng, 0.35);
    return {symbols_[symbol_index],
            open_ms / 1000,
            RoundToTick(open, state.tick_size),
            RoundToTick(high, state.tick_size),
            RoundToTick(low, state.tick_size),
            RoundToTick(state.price, state.tick_size),
            volume};
}

Tick SyntheticFeed::NextTick(std::size_t symbol_index) {
    KV_CHECK(symbol_index < states_.size(), "symbol index out of range");
    SymbolState& state = states_[symbol_index];

    // Trades come faster during bursts.
    const double mean_gap_s = kTickGapS / state.burst_mult;
    const std::int64_t gap_ms =
        std::max<std::int64_t>(1, std::llround(Exponential(state.rng, mean_gap_s) * 1000.0));
    const double before = RoundToTick(state.price, state.tick_size);
    Step(state, static_cast<double>(gap_ms) / 1000.0);
    state.clock_ms += gap_ms;
    const double price = RoundToTick(state.price, state.tick_size);

    // Upticks are mostly buyer-initiated, downticks seller-initiated.
    const double buy_probability = price > before ? 0.8 : (price < before ? 0.2 : 0.5);
    const char side = Uniform(state.rng) < buy_probability ? 'B' : 'S';

    // Sizes are whole units when a typical trade is several units.
    const double mean_size = state.volume_per_s * kTickGapS;
    double size = mean_size * LogNormal(state.rng, 0.8);
    if (mean_size >= 5) {
        size = std::max(1.0, std::round(size));
    }
    return {symbols_[symbol_index], state.clock_ms, price, size, side};
}

}  // namespace kvs
