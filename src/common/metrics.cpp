#include "common/metrics.h"

#include "common/check.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <type_traits>

namespace kvs {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// ---- Names and labels ----------------------------------------------------------------------

bool IsNameChar(char c, bool first, bool allow_colon) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    return alpha || (allow_colon && c == ':') || (!first && digit);
}

bool IsValidName(std::string_view name, bool allow_colon) {
    if (name.empty()) {
        return false;
    }
    for (std::size_t i = 0; i < name.size(); ++i) {
        if (!IsNameChar(name[i], i == 0, allow_colon)) {
            return false;
        }
    }
    return true;
}

// Checks the name and labels and sorts the labels by name.
void CheckAndSort(std::string_view name, Labels& labels, bool is_histogram) {
    KV_CHECK(IsValidName(name, /*allow_colon=*/true),
             "invalid metric name '" + std::string(name) + "'");
    std::sort(labels.begin(), labels.end());
    for (std::size_t i = 0; i < labels.size(); ++i) {
        const std::string& label = labels[i].first;
        KV_CHECK(IsValidName(label, /*allow_colon=*/false) && !label.starts_with("__"),
                 "invalid label name '" + label + "' on metric " + std::string(name));
        KV_CHECK(i == 0 || labels[i - 1].first != label,
                 "label '" + label + "' repeated on metric " + std::string(name));
        KV_CHECK(!is_histogram || label != "le",
                 "label 'le' is reserved on histogram " + std::string(name));
    }
}

// ---- Text formatting -----------------------------------------------------------------------

// Prometheus float syntax: the shortest text that reads back to the same double.
std::string FormatDouble(double v) {
    if (std::isnan(v)) {
        return "NaN";
    }
    if (std::isinf(v)) {
        return v > 0 ? "+Inf" : "-Inf";
    }
    char buf[32];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    KV_CHECK(ec == std::errc(), "to_chars failed");
    return std::string(buf, end);
}

void AppendEscaped(std::string& out, std::string_view text, bool escape_quote) {
    for (char c : text) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '"' && escape_quote) {
            out += "\\\"";
        } else {
            out += c;
        }
    }
}

// `{a="1",b="2"}` with `extra` (e.g. le) last; "" when there are no labels at all.
std::string FormatLabels(const Labels& labels, const std::pair<std::string, std::string>* extra) {
    if (labels.empty() && extra == nullptr) {
        return "";
    }
    std::string out = "{";
    auto append = [&out](const std::pair<std::string, std::string>& label) {
        if (out.size() > 1) {
            out += ',';
        }
        out += label.first + "=\"";
        AppendEscaped(out, label.second, /*escape_quote=*/true);
        out += '"';
    };
    for (const auto& label : labels) {
        append(label);
    }
    if (extra != nullptr) {
        append(*extra);
    }
    return out + "}";
}

void AppendSeriesLines(std::string& out,
                       const std::string& name,
                       const Labels& labels,
                       const Counter& c) {
    out += name + FormatLabels(labels, nullptr) + " " + std::to_string(c.value()) + "\n";
}

void AppendSeriesLines(std::string& out,
                       const std::string& name,
                       const Labels& labels,
                       const Gauge& g) {
    out += name + FormatLabels(labels, nullptr) + " " + FormatDouble(g.value()) + "\n";
}

void AppendSeriesLines(std::string& out,
                       const std::string& name,
                       const Labels& labels,
                       const Histogram& h) {
    const HistogramSnapshot snap = h.Snapshot();
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < snap.counts.size(); ++i) {
        cumulative += snap.counts[i];
        const std::pair<std::string, std::string> le_label{
            "le", i < snap.bounds.size() ? FormatDouble(snap.bounds[i]) : "+Inf"};
        out += name + "_bucket" + FormatLabels(labels, &le_label) + " " +
               std::to_string(cumulative) + "\n";
    }
    const std::string label_text = FormatLabels(labels, nullptr);
    out += name + "_sum" + label_text + " " + FormatDouble(snap.sum) + "\n";
    out += name + "_count" + label_text + " " + std::to_string(snap.count) + "\n";
}

// Four significant digits for the table ("12.35", "1.235e+06").
std::string Short(double v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.4g", v);
    return buf;
}

// Rows of cells: the first left-aligned, the rest right-aligned, each column as wide as its
// widest cell (the first column shared by all sections so they line up).
using Row = std::vector<std::string>;

struct TableRows {
    std::vector<Row> counters{{"COUNTER", "VALUE"}};
    std::vector<Row> gauges{{"GAUGE", "VALUE"}};
    std::vector<Row> histograms{{"HISTOGRAM", "COUNT", "MEAN", "P50", "P90", "P99", "MAX"}};

    void Add(std::string name, const Counter& c) {
        counters.push_back({std::move(name), std::to_string(c.value())});
    }

    void Add(std::string name, const Gauge& g) {
        gauges.push_back({std::move(name), Short(g.value())});
    }

    void Add(std::string name, const Histogram& h) {
        const HistogramSnapshot s = h.Snapshot();
        histograms.push_back({std::move(name), std::to_string(s.count), Short(s.Mean()),
                              Short(s.Quantile(0.5)), Short(s.Quantile(0.9)),
                              Short(s.Quantile(0.99)), Short(s.max)});
    }
};

void AppendRows(std::string& out, const std::vector<Row>& rows, std::size_t name_width) {
    std::vector<std::size_t> widths;
    for (const Row& row : rows) {
        widths.resize(std::max(widths.size(), row.size()), 0);
        for (std::size_t i = 1; i < row.size(); ++i) {
            widths[i] = std::max(widths[i], row[i].size());
        }
    }
    for (const Row& row : rows) {
        std::string line = row[0] + std::string(name_width - row[0].size(), ' ');
        for (std::size_t i = 1; i < row.size(); ++i) {
            line += "  " + std::string(widths[i] - row[i].size(), ' ') + row[i];
        }
        out += line + "\n";
    }
}

}  // namespace

// ---- Histogram -----------------------------------------------------------------------------

double HistogramSnapshot::Mean() const {
    return count == 0 ? 0.0 : sum / static_cast<double>(count);
}

double HistogramSnapshot::Quantile(double q) const {
    KV_CHECK(q >= 0.0 && q <= 1.0, "quantile " + std::to_string(q) + " outside [0, 1]");
    if (count == 0) {
        return 0.0;
    }
    const double rank = q * static_cast<double>(count);
    std::uint64_t below = 0;  // observations in buckets before i
    for (std::size_t i = 0; i < counts.size(); ++i) {
        const std::uint64_t in_bucket = counts[i];
        if (in_bucket == 0 || static_cast<double>(below + in_bucket) < rank) {
            below += in_bucket;
            continue;
        }
        const double lo = i == 0 ? min : std::max(bounds[i - 1], min);
        const double hi = std::max(lo, i < bounds.size() ? std::min(bounds[i], max) : max);
        const double fraction =
            (rank - static_cast<double>(below)) / static_cast<double>(in_bucket);
        return lo + (hi - lo) * fraction;
    }
    return max;  // not reached: the last non-empty bucket covers rank == count
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1), min_(kInf), max_(-kInf) {
    for (std::size_t i = 0; i < bounds_.size(); ++i) {
        KV_CHECK(std::isfinite(bounds_[i]), "histogram bounds must be finite");
        KV_CHECK(i == 0 || bounds_[i - 1] < bounds_[i],
                 "histogram bounds must be strictly increasing");
    }
}

void Histogram::Observe(double v) {
    if (std::isnan(v)) {
        return;
    }
    // min, max and sum first; the bucket's release increment then publishes them to a reader
    // that acquires the bucket count, so sum/min/max cover every counted observation.
    double seen = min_.load(std::memory_order_relaxed);
    while (v < seen && !min_.compare_exchange_weak(seen, v, std::memory_order_relaxed)) {
    }
    seen = max_.load(std::memory_order_relaxed);
    while (v > seen && !max_.compare_exchange_weak(seen, v, std::memory_order_relaxed)) {
    }
    sum_.fetch_add(v, std::memory_order_relaxed);
    const auto bucket = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
    counts_[static_cast<std::size_t>(bucket)].fetch_add(1, std::memory_order_release);
}

HistogramSnapshot Histogram::Snapshot() const {
    HistogramSnapshot snap;
    snap.bounds = bounds_;
    snap.counts.reserve(counts_.size());
    for (const auto& c : counts_) {
        snap.counts.push_back(c.load(std::memory_order_acquire));
        snap.count += snap.counts.back();
    }
    snap.sum = sum_.load(std::memory_order_relaxed);
    if (snap.count > 0) {
        snap.min = min_.load(std::memory_order_relaxed);
        snap.max = max_.load(std::memory_order_relaxed);
    }
    return snap;
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
    KV_CHECK(start > 0.0 && factor > 1.0 && count >= 1, "bad exponential bucket layout");
    std::vector<double> bounds;
    bounds.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
        bounds.push_back(start);
        start *= factor;
    }
    return bounds;
}

std::vector<double> LinearBuckets(double start, double width, int count) {
    KV_CHECK(width > 0.0 && count >= 1, "bad linear bucket layout");
    std::vector<double> bounds;
    bounds.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
        bounds.push_back(start + width * i);
    }
    return bounds;
}

// ---- MetricsRegistry -----------------------------------------------------------------------

MetricsRegistry::MetricsRegistry() = default;

MetricsRegistry::~MetricsRegistry() = default;

template <typename T, typename Make>
T& MetricsRegistry::GetOrCreate(std::string_view name,
                                std::string_view help,
                                Labels labels,
                                Make make) {
    constexpr std::size_t kKind = std::is_same_v<T, Counter> ? 0 : std::is_same_v<T, Gauge> ? 1 : 2;
    static_assert(std::is_same_v<std::variant_alternative_t<kKind, Series>, std::unique_ptr<T>>);
    CheckAndSort(name, labels, std::is_same_v<T, Histogram>);
    std::lock_guard<std::mutex> lock(mu_);
    auto family = families_.find(name);
    if (family == families_.end()) {
        family = families_.emplace(std::string(name), Family{std::string(help), kKind, {}}).first;
    }
    KV_CHECK(family->second.kind == kKind,
             "metric " + std::string(name) + " already registered as another kind");
    auto [it, inserted] = family->second.series.try_emplace(std::move(labels));
    if (inserted) {
        it->second = make();
    }
    return *std::get<std::unique_ptr<T>>(it->second);
}

Counter& MetricsRegistry::GetCounter(std::string_view name, std::string_view help, Labels labels) {
    return GetOrCreate<Counter>(name, help, std::move(labels),
                                [] { return std::make_unique<Counter>(); });
}

Gauge& MetricsRegistry::GetGauge(std::string_view name, std::string_view help, Labels labels) {
    return GetOrCreate<Gauge>(name, help, std::move(labels),
                              [] { return std::make_unique<Gauge>(); });
}

Histogram& MetricsRegistry::GetHistogram(std::string_view name,
                                         std::string_view help,
                                         const std::vector<double>& bounds,
                                         Labels labels) {
    Histogram& h = GetOrCreate<Histogram>(
        name, help, std::move(labels), [&bounds] { return std::make_unique<Histogram>(bounds); });
    KV_CHECK(h.bounds() == bounds,
             "histogram " + std::string(name) + " looked up with different bounds");
    return h;
}

std::string MetricsRegistry::RenderPrometheus() const {
    static constexpr const char* kTypeNames[] = {"counter", "gauge", "histogram"};
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    for (const auto& [name, family] : families_) {
        out += "# HELP " + name + " ";
        AppendEscaped(out, family.help, /*escape_quote=*/false);
        out += std::string("\n# TYPE ") + name + " " + kTypeNames[family.kind] + "\n";
        for (const auto& entry : family.series) {
            const Labels& labels = entry.first;
            // Lambdas may capture structured bindings only from clang 16; copy the reference.
            const std::string& family_name = name;
            std::visit(
                [&](const auto& metric) { AppendSeriesLines(out, family_name, labels, *metric); },
                entry.second);
        }
    }
    return out;
}

std::string MetricsRegistry::RenderTable() const {
    std::lock_guard<std::mutex> lock(mu_);  // held while formatting too; that is cheap
    TableRows rows;
    std::size_t name_width = rows.histograms[0][0].size();
    for (const auto& [name, family] : families_) {
        for (const auto& entry : family.series) {
            std::string full = name + FormatLabels(entry.first, nullptr);
            name_width = std::max(name_width, full.size());
            std::visit([&](const auto& metric) { rows.Add(std::move(full), *metric); },
                       entry.second);
        }
    }
    std::string out;
    for (const auto* section : {&rows.counters, &rows.gauges, &rows.histograms}) {
        if (section->size() > 1) {
            out += out.empty() ? "" : "\n";
            AppendRows(out, *section, name_width);
        }
    }
    return out.empty() ? "(no metrics)\n" : out;
}

}  // namespace kvs
