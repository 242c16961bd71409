// ProgressBar: in-place redraw on a terminal, one line per 10% elsewhere.

#include "common/progress.h"

#include "common/check.h"

#include <algorithm>
#include <unistd.h>
#include <utility>

namespace kvs {
namespace {

constexpr int kBarWidth = 20;
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);

// "4.2s", "3m07s", "2h05m".
std::string FormatDuration(double seconds) {
    char buf[32];
    const long whole = static_cast<long>(seconds);
    if (seconds < 60) {
        std::snprintf(buf, sizeof(buf), "%.1fs", seconds);
    } else if (seconds < 3600) {
        std::snprintf(buf, sizeof(buf), "%ldm%02lds", whole / 60, whole % 60);
    } else {
        std::snprintf(buf, sizeof(buf), "%ldh%02ldm", whole / 3600, whole / 60 % 60);
    }
    return buf;
}

}  // namespace

ProgressBar::ProgressBar(std::string label, std::size_t total, std::FILE* out)
    : label_(std::move(label)),
      total_(total),
      out_(out),
      is_tty_(out != nullptr && isatty(fileno(out)) != 0),
      start_(Clock::now()),
      last_draw_(start_) {
    KV_CHECK(out_ != nullptr, "ProgressBar needs an output stream");
}

ProgressBar::~ProgressBar() {
    Finish();
}

void ProgressBar::Update(std::size_t done, std::string_view note) {
    if (finished_) {
        return;
    }
    done_ = std::min(done, total_);
    if (is_tty_) {
        const bool throttled = drawn_ && Clock::now() - last_draw_ < kRedrawInterval;
        if (!throttled || done_ == total_) {
            Draw(note);
        }
        return;
    }
    const int decile = total_ == 0 ? 10 : static_cast<int>(done_ * 10 / total_);
    if (decile > last_decile_) {
        last_decile_ = decile;
        Draw(note);
    }
}

void ProgressBar::Finish(std::string_view note) {
    if (finished_) {
        return;
    }
    finished_ = true;
    if (is_tty_) {
        Draw(note);
        std::fputc('\n', out_);
        std::fflush(out_);
    } else if (last_decile_ < 10 || !note.empty()) {
        Draw(note);
    }
}

// "label [########............]  40% 400/1000 elapsed 1.2s eta 1.8s note" on a terminal,
// "label: 40% 400/1000 elapsed 1.2s eta 1.8s note" elsewhere; no ETA once finished or complete.
std::string ProgressBar::Line(std::string_view note) const {
    const double fraction =
        total_ == 0 ? 1.0 : static_cast<double>(done_) / static_cast<double>(total_);
    const double elapsed_s = std::chrono::duration<double>(Clock::now() - start_).count();
    std::string line = label_;
    if (is_tty_) {
        const int filled = std::clamp(static_cast<int>(fraction * kBarWidth), 0, kBarWidth);
        line += " [" + std::string(filled, '#') + std::string(kBarWidth - filled, '.') + "]";
    } else {
        line += ':';
    }
    char buf[96];
    std::snprintf(buf, sizeof(buf), " %3d%% %zu/%zu elapsed ", static_cast<int>(fraction * 100.0),
                  done_, total_);
    line += buf + FormatDuration(elapsed_s);
    if (!finished_ && done_ < total_) {
        line += done_ == 0
                    ? std::string(" eta ?")
                    : " eta " + FormatDuration(elapsed_s * static_cast<double>(total_ - done_) /
                                               static_cast<double>(done_));
    }
    if (!note.empty()) {
        line += ' ';
        line += note;
    }
    return line;
}

void ProgressBar::Draw(std::string_view note) {
    std::string line = Line(note);
    if (is_tty_) {
        // Blank out what is left of a longer previous line.
        const std::size_t width = line.size();
        line.append(last_width_ > width ? last_width_ - width : 0, ' ');
        last_width_ = width;
        std::fputc('\r', out_);
        std::fputs(line.c_str(), out_);
    } else {
        std::fputs(line.c_str(), out_);
        std::fputc('\n', out_);
    }
    std::fflush(out_);
    drawn_ = true;
    last_draw_ = Clock::now();
}

}  // namespace kvs
