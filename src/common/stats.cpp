#include "common/stats.h"

#include "common/check.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

namespace kvs {

double Quantile(std::vector<double> samples, double q) {
    KV_CHECK(q >= 0.0 && q <= 1.0, "quantile " + std::to_string(q) + " outside [0, 1]");
    if (samples.empty()) {
        return 0;
    }
    std::sort(samples.begin(), samples.end());
    const double h = q * static_cast<double>(samples.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(h));
    const std::size_t hi = std::min(lo + 1, samples.size() - 1);
    return samples[lo] + (h - static_cast<double>(lo)) * (samples[hi] - samples[lo]);
}

double Median(std::vector<double> samples) {
    return Quantile(std::move(samples), 0.5);
}

double Mean(const std::vector<double>& samples) {
    double sum = 0;
    for (double x : samples) {
        sum += x;
    }
    return samples.empty() ? 0 : sum / static_cast<double>(samples.size());
}

}  // namespace kvs
