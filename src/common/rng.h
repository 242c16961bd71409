#pragma once
// SplitMix64 (Steele, Lea, Flood 2014): a tiny seeded generator that gives the same sequence with
// every standard library (unlike <random>'s distributions). Model weights, load schedules and
// fuzzers use it.

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace kvs {

class SplitMix64 {
public:
    explicit SplitMix64(std::uint64_t seed) : state_(seed) {}

    std::uint64_t Next() {
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30U)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27U)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31U);
    }

    // Uniform in [0, n); n > 0.
    std::size_t Below(std::size_t n) { return static_cast<std::size_t>(Next() % n); }

    // Exponentially distributed with this mean (Poisson arrival gaps).
    double Exponential(double mean) {
        const double u = static_cast<double>(Next() >> 11) * 0x1.0p-53;  // [0, 1)
        return -mean * std::log1p(-u);
    }

private:
    std::uint64_t state_;
};

}  // namespace kvs
