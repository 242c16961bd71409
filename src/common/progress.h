#pragma once
// ProgressBar: progress of long command-line work (loading, prefill, benchmarks) on a terminal.

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>

namespace kvs {

// Shows "label [#####.....]  42% 420/1000 1.2s eta 1.7s note". When `out` is a terminal (isatty)
// the line is redrawn in place with '\r' (at most every 100 ms, and always at the end); otherwise
// a plain line is printed each time another 10% is reached, so logs stay readable. The elapsed
// time counts from construction; the ETA assumes the rate so far. Nothing is printed until the
// first Update or Finish. One thread only; `out` must outlive the bar.
class ProgressBar {
public:
    ProgressBar(std::string label, std::size_t total, std::FILE* out = stderr);

    // Calls Finish() if it was not called.
    ~ProgressBar();

    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;

    // Reports `done` of `total` items (clamped to total); `note` is appended to the line.
    void Update(std::size_t done, std::string_view note = {});

    // Prints the final state (done as last reported) and ends the line. Later calls do nothing.
    void Finish(std::string_view note = {});

private:
    using Clock = std::chrono::steady_clock;

    std::string Line(std::string_view note) const;
    void Draw(std::string_view note);

    std::string label_;
    std::size_t total_;
    std::FILE* out_;
    bool is_tty_;
    Clock::time_point start_;
    Clock::time_point last_draw_;
    std::size_t done_ = 0;
    int last_decile_ = -1;        // the last 10% step printed (plain mode)
    std::size_t last_width_ = 0;  // characters of the last line drawn (terminal mode)
    bool drawn_ = false;
    bool finished_ = false;
};

}  // namespace kvs
