#pragma once
// Metrics: counters, gauges and histograms that the engine thread records every step and other
// threads (the CLI, an HTTP /metrics endpoint) read concurrently, plus a registry that names them
// and renders them as Prometheus text or as a table for people.
//
// Threads: recording (Add, Set, Observe) is lock-free and safe from any number of threads at
// once; reading (value(), Snapshot(), Render*) is safe concurrently with recording. Standard
// library only.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace kvs {

// Constant labels of one series, e.g. {{"reason", "context_full"}}. The order given does not
// matter: the registry sorts them by name.
using Labels = std::vector<std::pair<std::string, std::string>>;

// A monotonic count (requests served, tokens generated). Relaxed atomics: a reader sees some
// recent value, never a torn one.
class Counter {
public:
    void Add(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }

    std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> value_{0};
};

// A value that goes up and down (sessions resident, KV cells used).
class Gauge {
public:
    void Set(double v) { value_.store(v, std::memory_order_relaxed); }

    void Add(double delta) { value_.fetch_add(delta, std::memory_order_relaxed); }

    double value() const { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<double> value_{0.0};
};

// A copy of a histogram at one moment.
struct HistogramSnapshot {
    std::vector<double> bounds;         // upper bounds (inclusive), ascending, finite
    std::vector<std::uint64_t> counts;  // per bucket, NOT cumulative; bounds.size() + 1 entries,
                                        // the last one for (bounds.back(), +Inf)
    std::uint64_t count = 0;            // the sum of `counts`
    double sum = 0.0;
    double min = 0.0;  // 0 when count == 0
    double max = 0.0;  // 0 when count == 0

    // sum / count; 0 when count == 0.
    double Mean() const;

    // The q-quantile (q in [0, 1], else KV_CHECK), estimated like Prometheus' histogram_quantile:
    // find the bucket holding rank q * count and interpolate linearly inside it, assuming its
    // values are spread evenly. The bucket's edges are narrowed to [min, max], so Quantile(0) is
    // min, Quantile(1) is max and the +Inf bucket has a finite top. Accuracy: the result lies in
    // the same bucket as the true quantile, so the error is at most that bucket's width (clamped
    // to [min, max]); for values spread evenly within buckets it is much smaller. 0 when empty.
    double Quantile(double q) const;
};

// Counts observations in fixed buckets, Prometheus-style: bucket i holds v <= bounds[i] (and
// > bounds[i - 1]); one extra bucket holds everything above the last bound.
//
// Observe costs a binary search over the bounds and four atomic updates (the sum and, rarely,
// min/max are compare-exchange loops). Snapshot reads each bucket separately, so a snapshot
// taken during recording may count an observation in a later bucket but not an earlier one
// (slightly torn between buckets); `count` is always the sum of the buckets it read, and
// sum/min/max cover at least every observation counted (possibly a few still being recorded).
class Histogram {
public:
    // `bounds`: strictly increasing finite upper bounds (may be empty: one +Inf bucket);
    // anything else is a KV_CHECK failure.
    explicit Histogram(std::vector<double> bounds);

    Histogram(const Histogram&) = delete;
    Histogram& operator=(const Histogram&) = delete;

    // Records one value; NaN is dropped (not counted anywhere).
    void Observe(double v);

    HistogramSnapshot Snapshot() const;

    const std::vector<double>& bounds() const { return bounds_; }

private:
    std::vector<double> bounds_;
    std::vector<std::atomic<std::uint64_t>> counts_;  // bounds_.size() + 1
    std::atomic<double> sum_{0.0};
    std::atomic<double> min_;
    std::atomic<double> max_;
};

// `count` bounds start, start * factor, start * factor^2, ... (start > 0, factor > 1, count >= 1,
// else KV_CHECK). ExponentialBuckets(1, 2, 4) == {1, 2, 4, 8}.
std::vector<double> ExponentialBuckets(double start, double factor, int count);

// `count` bounds start, start + width, ... (width > 0, count >= 1, else KV_CHECK).
// LinearBuckets(0, 10, 3) == {0, 10, 20}.
std::vector<double> LinearBuckets(double start, double width, int count);

// Owns metrics by name (and labels) for its whole life. Get* creates the metric on first use and
// returns the same object for the same name and labels afterwards; references stay valid until
// the registry is destroyed. Thread-safe: Get* and Render* take a mutex, recording through the
// returned references takes none (look a metric up once, keep the reference).
//
// Programming errors (KV_CHECK): a name not matching [a-zA-Z_:][a-zA-Z0-9_:]*; a label name not
// matching [a-zA-Z_][a-zA-Z0-9_]* or starting with "__", a repeated label name, "le" on a
// histogram; one name used for two kinds of metric; a histogram looked up again with different
// bounds. The help text of a name is the one given first.
class MetricsRegistry {
public:
    MetricsRegistry();
    ~MetricsRegistry();

    MetricsRegistry(const MetricsRegistry&) = delete;
    MetricsRegistry& operator=(const MetricsRegistry&) = delete;

    Counter& GetCounter(std::string_view name, std::string_view help, Labels labels = {});

    Gauge& GetGauge(std::string_view name, std::string_view help, Labels labels = {});

    // `bounds` as for Histogram; used on first creation, and must match on later lookups.
    Histogram& GetHistogram(std::string_view name,
                            std::string_view help,
                            const std::vector<double>& bounds,
                            Labels labels = {});

    // Prometheus text exposition format 0.0.4 (Content-Type "text/plain; version=0.0.4"):
    // names in sorted order, "# HELP" and "# TYPE" once per name, then one line per series
    // (histograms: cumulative _bucket{le="..."} lines ending with le="+Inf", then _sum and
    // _count). Label values escape backslash, double quote and newline; help text escapes
    // backslash and newline.
    std::string RenderPrometheus() const;

    // A table for people: counters, gauges, then histograms with count, mean, p50, p90, p99 and
    // max; names (with labels) in sorted order, columns aligned. Empty sections are left out;
    // an empty registry renders as "(no metrics)\n".
    std::string RenderTable() const;

private:
    using Series =
        std::variant<std::unique_ptr<Counter>, std::unique_ptr<Gauge>, std::unique_ptr<Histogram>>;

    struct Family {
        std::string help;
        std::size_t kind = 0;  // Series::index() of every series in the family
        std::map<Labels, Series> series;
    };

    template <typename T, typename Make>
    T& GetOrCreate(std::string_view name, std::string_view help, Labels labels, Make make);

    mutable std::mutex mu_;
    std::map<std::string, Family, std::less<>> families_;
};

}  // namespace kvs
