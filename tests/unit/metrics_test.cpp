#include "common/metrics.h"

#include <atomic>
#include <gtest/gtest.h>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace kvs {
namespace {

TEST(Metrics, CounterAndGauge) {
    Counter c;
    EXPECT_EQ(c.value(), 0u);
    c.Add();
    c.Add(41);
    EXPECT_EQ(c.value(), 42u);

    Gauge g;
    EXPECT_EQ(g.value(), 0.0);
    g.Set(2.5);
    g.Add(-1.0);
    EXPECT_EQ(g.value(), 1.5);
}

TEST(Metrics, BucketLayouts) {
    EXPECT_EQ(ExponentialBuckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
    EXPECT_EQ(ExponentialBuckets(0.5, 10, 3), (std::vector<double>{0.5, 5, 50}));
    EXPECT_EQ(LinearBuckets(0, 10, 3), (std::vector<double>{0, 10, 20}));
    EXPECT_DEATH(ExponentialBuckets(0, 2, 4), "bad exponential bucket layout");
    EXPECT_DEATH(LinearBuckets(0, 1, 0), "bad linear bucket layout");
    EXPECT_DEATH(Histogram({1, 1}), "strictly increasing");
}

TEST(Metrics, HistogramBucketsAndStats) {
    Histogram h({1, 2.5, 10});
    HistogramSnapshot empty = h.Snapshot();
    EXPECT_EQ(empty.count, 0u);
    EXPECT_EQ(empty.min, 0.0);
    EXPECT_EQ(empty.max, 0.0);
    EXPECT_EQ(empty.Mean(), 0.0);
    EXPECT_EQ(empty.Quantile(0.5), 0.0);

    for (double v : {0.5, 1.0, 2.0, 2.5, 3.0, 50.0}) {
        h.Observe(v);
    }
    h.Observe(std::numeric_limits<double>::quiet_NaN());  // dropped
    const HistogramSnapshot s = h.Snapshot();
    EXPECT_EQ(s.bounds, (std::vector<double>{1, 2.5, 10}));
    // Upper bounds are inclusive: 1.0 lands in le=1, 2.5 in le=2.5.
    EXPECT_EQ(s.counts, (std::vector<std::uint64_t>{2, 2, 1, 1}));
    EXPECT_EQ(s.count, 6u);
    EXPECT_DOUBLE_EQ(s.sum, 59.0);
    EXPECT_EQ(s.min, 0.5);
    EXPECT_EQ(s.max, 50.0);
    EXPECT_DOUBLE_EQ(s.Mean(), 59.0 / 6);
    EXPECT_EQ(s.Quantile(0), 0.5);
    EXPECT_EQ(s.Quantile(1), 50.0);
}

TEST(Metrics, QuantileInterpolatesWithinBucket) {
    Histogram h({10, 20});
    for (double v : {12.0, 14.0, 16.0, 18.0}) {
        h.Observe(v);
    }
    const HistogramSnapshot s = h.Snapshot();
    // One bucket (10, 20], narrowed to [min, max] = [12, 18]; rank 2 of 4 is halfway.
    EXPECT_DOUBLE_EQ(s.Quantile(0.5), 15.0);
    EXPECT_DOUBLE_EQ(s.Quantile(0.25), 13.5);
    EXPECT_DEATH((void)s.Quantile(1.5), "outside");
}

TEST(Metrics, QuantilesOfUniformDistribution) {
    Histogram h(LinearBuckets(1, 1, 100));  // bounds 1, 2, ..., 100
    for (int k = 0; k < 10000; ++k) {
        h.Observe(k * 0.01);  // 0.00 .. 99.99, evenly
    }
    const HistogramSnapshot s = h.Snapshot();
    EXPECT_EQ(s.count, 10000u);
    EXPECT_NEAR(s.Quantile(0.5), 50.0, 1.0);
    EXPECT_NEAR(s.Quantile(0.9), 90.0, 1.0);
    EXPECT_NEAR(s.Quantile(0.99), 99.0, 1.0);
    EXPECT_NEAR(s.Mean(), 49.995, 1e-6);

    // Coarse exponential buckets: still inside the bucket holding the true quantile.
    Histogram coarse(ExponentialBuckets(1, 2, 8));  // 1, 2, 4, ..., 128
    for (int k = 0; k < 10000; ++k) {
        coarse.Observe(k * 0.01);
    }
    const double p50 = coarse.Snapshot().Quantile(0.5);
    EXPECT_GE(p50, 32.0);
    EXPECT_LE(p50, 64.0);
}

TEST(MetricsRegistry, SameNameAndLabelsSameObject) {
    MetricsRegistry reg;
    Counter& a = reg.GetCounter("kvs_evictions_total", "Evictions.", {{"reason", "context_full"}});
    Counter& b = reg.GetCounter("kvs_evictions_total", "Evictions.", {{"reason", "context_full"}});
    Counter& c = reg.GetCounter("kvs_evictions_total", "Evictions.", {{"reason", "idle"}});
    EXPECT_EQ(&a, &b);
    EXPECT_NE(&a, &c);
    // Label order does not matter.
    Gauge& g1 = reg.GetGauge("kvs_g", "G.", {{"a", "1"}, {"b", "2"}});
    Gauge& g2 = reg.GetGauge("kvs_g", "G.", {{"b", "2"}, {"a", "1"}});
    EXPECT_EQ(&g1, &g2);
    Histogram& h1 = reg.GetHistogram("kvs_h", "H.", {1, 2});
    Histogram& h2 = reg.GetHistogram("kvs_h", "H.", {1, 2});
    EXPECT_EQ(&h1, &h2);
}

TEST(MetricsRegistry, ProgrammingErrorsAbort) {
    MetricsRegistry reg;
    EXPECT_DEATH(reg.GetCounter("1bad", "x"), "invalid metric name");
    EXPECT_DEATH(reg.GetCounter("bad-name", "x"), "invalid metric name");
    EXPECT_DEATH(reg.GetCounter("ok", "x", {{"bad label", "v"}}), "invalid label name");
    EXPECT_DEATH(reg.GetCounter("ok", "x", {{"a", "1"}, {"a", "2"}}), "repeated");
    EXPECT_DEATH(reg.GetHistogram("h", "x", {1}, {{"le", "1"}}), "reserved");
    reg.GetCounter("kvs:ok_total", "x");
    EXPECT_DEATH(reg.GetGauge("kvs:ok_total", "x"), "another kind");
    reg.GetHistogram("h", "x", {1, 2});
    EXPECT_DEATH(reg.GetHistogram("h", "x", {1, 3}), "different bounds");
}

TEST(MetricsRegistry, RenderPrometheusExactText) {
    MetricsRegistry reg;
    reg.GetCounter("kvs_requests_total", "Requests served.", {{"reason", "context_full"}}).Add(3);
    reg.GetCounter("kvs_requests_total", "ignored", {{"reason", "a\"b\\c\nd"}}).Add();
    reg.GetGauge("kvs_sessions", "Sessions resident.\nback\\slash").Set(2.5);
    Histogram& h = reg.GetHistogram("kvs_step_ms", "Step time.", {1, 2.5, 10});
    for (double v : {0.5, 2.0, 2.0, 50.0}) {
        h.Observe(v);
    }
    reg.GetHistogram("kvs_step_ms", "Step time.", {1, 2.5, 10}, {{"phase", "decode"}}).Observe(1);

    const std::string expected =
        "# HELP kvs_requests_total Requests served.\n"
        "# TYPE kvs_requests_total counter\n"
        "kvs_requests_total{reason=\"a\\\"b\\\\c\\nd\"} 1\n"
        "kvs_requests_total{reason=\"context_full\"} 3\n"
        "# HELP kvs_sessions Sessions resident.\\nback\\\\slash\n"
        "# TYPE kvs_sessions gauge\n"
        "kvs_sessions 2.5\n"
        "# HELP kvs_step_ms Step time.\n"
        "# TYPE kvs_step_ms histogram\n"
        "kvs_step_ms_bucket{le=\"1\"} 1\n"
        "kvs_step_ms_bucket{le=\"2.5\"} 3\n"
        "kvs_step_ms_bucket{le=\"10\"} 3\n"
        "kvs_step_ms_bucket{le=\"+Inf\"} 4\n"
        "kvs_step_ms_sum 54.5\n"
        "kvs_step_ms_count 4\n"
        "kvs_step_ms_bucket{phase=\"decode\",le=\"1\"} 1\n"
        "kvs_step_ms_bucket{phase=\"decode\",le=\"2.5\"} 1\n"
        "kvs_step_ms_bucket{phase=\"decode\",le=\"10\"} 1\n"
        "kvs_step_ms_bucket{phase=\"decode\",le=\"+Inf\"} 1\n"
        "kvs_step_ms_sum{phase=\"decode\"} 1\n"
        "kvs_step_ms_count{phase=\"decode\"} 1\n";
    EXPECT_EQ(reg.RenderPrometheus(), expected);
}

TEST(MetricsRegistry, RenderTable) {
    MetricsRegistry reg;
    EXPECT_EQ(reg.RenderTable(), "(no metrics)\n");
    reg.GetCounter("kvs_tokens_total", "Tokens.").Add(7);
    reg.GetGauge("kvs_sessions", "Sessions.").Set(3);
    Histogram& h = reg.GetHistogram("kvs_step_ms", "Step.", ExponentialBuckets(1, 2, 10),
                                    {{"phase", "decode"}});
    h.Observe(4);
    const std::string table = reg.RenderTable();
    EXPECT_NE(table.find("kvs_tokens_total"), std::string::npos) << table;
    EXPECT_NE(table.find("kvs_sessions"), std::string::npos) << table;
    EXPECT_NE(table.find("kvs_step_ms{phase=\"decode\"}"), std::string::npos) << table;
    EXPECT_NE(table.find("P99"), std::string::npos) << table;
}

TEST(MetricsRegistry, ConcurrentWritersAndReader) {
    constexpr int kWriters = 4;
    constexpr int kPerWriter = 100000;
    MetricsRegistry reg;
    Counter& counter = reg.GetCounter("kvs_c_total", "C.");
    Gauge& gauge = reg.GetGauge("kvs_g", "G.");
    Histogram& hist = reg.GetHistogram("kvs_h_ms", "H.", ExponentialBuckets(1, 2, 8));

    std::atomic<bool> done{false};
    std::thread reader([&] {
        std::uint64_t last = 0;
        while (!done.load()) {
            const HistogramSnapshot s = hist.Snapshot();
            EXPECT_GE(s.count, last);  // buckets only grow
            last = s.count;
            if (s.count > 0) {
                EXPECT_LE(s.min, s.max);
            }
            (void)reg.RenderPrometheus();
            (void)reg.RenderTable();
        }
    });
    std::vector<std::thread> writers;
    writers.reserve(kWriters);
    for (int w = 0; w < kWriters; ++w) {
        writers.emplace_back([&, w] {
            // Each writer also looks up its own labelled series while others record.
            Counter& own = reg.GetCounter("kvs_w_total", "W.", {{"w", std::to_string(w)}});
            for (int i = 0; i < kPerWriter; ++i) {
                counter.Add();
                own.Add();
                gauge.Add(1.0);
                hist.Observe(static_cast<double>(i % 300));
            }
        });
    }
    for (std::thread& t : writers) {
        t.join();
    }
    done.store(true);
    reader.join();

    EXPECT_EQ(counter.value(), std::uint64_t{kWriters} * kPerWriter);
    EXPECT_EQ(gauge.value(), double{kWriters} * kPerWriter);
    const HistogramSnapshot s = hist.Snapshot();
    EXPECT_EQ(s.count, std::uint64_t{kWriters} * kPerWriter);
    EXPECT_EQ(s.min, 0.0);
    EXPECT_EQ(s.max, 299.0);
    // Each writer observes 0..299 333 times, then 0..99; integers below 2^53 sum exactly in
    // any order.
    static_assert(kPerWriter == 333 * 300 + 100);
    EXPECT_EQ(s.sum, kWriters * (333 * (299.0 * 300 / 2) + 99.0 * 100 / 2));
    for (int w = 0; w < kWriters; ++w) {
        EXPECT_EQ(reg.GetCounter("kvs_w_total", "W.", {{"w", std::to_string(w)}}).value(),
                  std::uint64_t{kPerWriter});
    }
}

}  // namespace
}  // namespace kvs
