#include "bench/report_format.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>

namespace kvs::bench {

std::string Fmt(const char* format, ...) {
    char buf[128];
    va_list args;
    va_start(args, format);
    std::vsnprintf(buf, sizeof buf, format, args);
    va_end(args);
    return buf;
}

// Milliseconds as a readable figure: "0.41 ms", "912 ms", "40.3 s".
std::string Ms(double ms) {
    if (ms < 10) {
        return Fmt("%.2f ms", ms);
    }
    if (ms < 1000) {
        return Fmt("%.0f ms", ms);
    }
    return Fmt("%.2f s", ms / 1000);
}

std::string Ratio(double r) {
    return r >= 10 ? Fmt("%.0fx", r) : Fmt("%.1fx", r);
}

// Answered questions of the measured phase, by system (rounds pooled).
SamplesBySystem Measured(const std::vector<SystemRun>& runs) {
    SamplesBySystem by;
    for (const auto& r : runs) {
        auto& list = by[r.system];
        for (const auto& s : r.samples) {
            if (!s.warmup && s.error.empty()) {
                list.push_back(&s);
            }
        }
    }
    return by;
}

// A context size's bucket: the nearest power of two times 512 (512, 1k, 2k, ..., 16k, ...).
int Bucket(int tokens) {
    const double k = std::round(std::log2(std::max(tokens, 256) / 512.0));
    return static_cast<int>(512 * std::pow(2.0, std::max(k, -1.0)));
}

std::string BucketLabel(int b) {
    return b >= 1024 ? std::to_string(b / 1024) + "k" : std::to_string(b);
}

std::vector<SystemKind> Order(const std::vector<SystemRun>& runs) {
    std::vector<SystemKind> kinds;
    for (const auto& r : runs) {
        if (std::find(kinds.begin(), kinds.end(), r.system) == kinds.end()) {
            kinds.push_back(r.system);
        }
    }
    return kinds;
}

}  // namespace kvs::bench
