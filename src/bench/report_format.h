#pragma once
// Shared by the two halves of the benchmark report (report.cpp: files, summary.json, plots;
// report_markdown.cpp: report.md): figure formatting and the measured samples by system. Plain
// functions, any thread.

#include "bench/driver.h"
#include "bench/report.h"

#include <map>
#include <string>
#include <vector>

namespace kvs::bench {

[[gnu::format(printf, 1, 2)]] std::string Fmt(const char* format, ...);

// Milliseconds as a readable figure: "0.41 ms", "912 ms", "40.3 s".
std::string Ms(double ms);

// "12x", "2.5x".
std::string Ratio(double r);

using SamplesBySystem = std::map<SystemKind, std::vector<const QuerySample*>>;

// Answered questions of the measured phase, by system (rounds pooled).
SamplesBySystem Measured(const std::vector<SystemRun>& runs);

// f(sample) for each sample, the negative ones left out (a figure the sample does not have).
template <typename F>
std::vector<double> Values(const std::vector<const QuerySample*>& samples, F&& f) {
    std::vector<double> v;
    for (const auto* s : samples) {
        const double x = f(*s);
        if (x >= 0) {
            v.push_back(x);
        }
    }
    return v;
}

// A context size's bucket: the nearest power of two times 512 (512, 1k, 2k, ..., 16k, ...).
int Bucket(int tokens);

// "512", "2k".
std::string BucketLabel(int b);

// The systems in the order they first ran.
std::vector<SystemKind> Order(const std::vector<SystemRun>& runs);

// report.md (report_markdown.cpp).
std::string ReportMarkdown(const Scenario& sc,
                           const RunInfo& info,
                           const std::vector<SystemRun>& runs,
                           const std::optional<Floor>& floor);

}  // namespace kvs::bench
