// RenderBar / RenderTick: compact one-line text for bars and trades.

#include "feed/market.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

namespace kvs {
namespace {

constexpr int kPriceDigits = 6;   // significant digits of a price
constexpr int kVolumeDigits = 4;  // significant digits of a volume's fraction
constexpr std::int64_t kMsPerDay = 86'400'000;

struct CivilDate {
    std::int64_t year;
    int month;
    int day;
};

// The proleptic Gregorian date `days` after 1970-01-01 (H. Hinnant's civil_from_days).
CivilDate CivilFromDays(std::int64_t days) {
    days += 719468;
    const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    const std::int64_t doe = days - era * 146097;                                    // [0, 146096]
    const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
    const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
    const std::int64_t mp = (5 * doy + 2) / 153;                                     // [0, 11]
    const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
    const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
    return {yoe + era * 400 + (month <= 2 ? 1 : 0), month, day};
}

// "2023-03-13" at midnight (unless always_seconds), else "2023-03-13T09:35Z", with ":SS" when the
// seconds (or always_seconds) and ".mmm" when the milliseconds are non-zero.
std::string FormatTime(std::int64_t time_ms, bool always_seconds) {
    const std::int64_t days = time_ms / kMsPerDay - (time_ms % kMsPerDay < 0 ? 1 : 0);
    const std::int64_t ms_of_day = time_ms - days * kMsPerDay;
    const CivilDate date = CivilFromDays(days);
    char buf[48];
    std::snprintf(buf, sizeof(buf), "%04lld-%02d-%02d", static_cast<long long>(date.year),
                  date.month, date.day);
    std::string out = buf;
    if (ms_of_day == 0 && !always_seconds) {
        return out;
    }
    const int ms = static_cast<int>(ms_of_day % 1000);
    const int seconds = static_cast<int>(ms_of_day / 1000 % 60);
    const int minutes = static_cast<int>(ms_of_day / 60'000 % 60);
    const int hours = static_cast<int>(ms_of_day / 3'600'000);
    std::snprintf(buf, sizeof(buf), "T%02d:%02d", hours, minutes);
    out += buf;
    if (seconds != 0 || ms != 0 || always_seconds) {
        std::snprintf(buf, sizeof(buf), ":%02d", seconds);
        out += buf;
    }
    if (ms != 0) {
        std::snprintf(buf, sizeof(buf), ".%03d", ms);
        out += buf;
    }
    return out + "Z";
}

// `value` with `digits` significant digits but never fewer than its whole integer part, in fixed
// notation without trailing zeros: 60012.53 -> "60012.5", 17.24 -> "17.24", 0.00012345 ->
// "0.00012345" (6 digits).
std::string FormatNumber(double value, int digits) {
    if (value == 0) {
        return "0";
    }
    char buf[64];
    if (!std::isfinite(value) || std::abs(value) >= 1e15) {
        std::snprintf(buf, sizeof(buf), "%.*g", digits, value);
        return buf;
    }
    const int magnitude = static_cast<int>(std::floor(std::log10(std::abs(value))));
    const int decimals = std::clamp(digits - 1 - magnitude, 0, 15);
    std::snprintf(buf, sizeof(buf), "%.*f", decimals, value);
    std::string out = buf;
    if (out.find('.') != std::string::npos) {
        out.erase(out.find_last_not_of('0') + 1);
        if (out.back() == '.') {
            out.pop_back();
        }
    }
    return out == "-0" ? "0" : out;
}

}  // namespace

std::string RenderBar(const Bar& bar) {
    std::string out = bar.symbol;
    out += ' ';
    out += FormatTime(bar.time_s * 1000, /*always_seconds=*/false);
    const bool flat = bar.open == bar.high && bar.high == bar.low && bar.low == bar.close;
    if (!flat) {
        out += " o=" + FormatNumber(bar.open, kPriceDigits);
        out += " h=" + FormatNumber(bar.high, kPriceDigits);
        out += " l=" + FormatNumber(bar.low, kPriceDigits);
    }
    out += " c=" + FormatNumber(bar.close, kPriceDigits);
    if (bar.volume != 0) {
        out += " v=" + FormatNumber(bar.volume, kVolumeDigits);
    }
    out += '\n';
    return out;
}

std::string RenderTick(const Tick& tick) {
    std::string out = tick.symbol;
    out += ' ';
    out += FormatTime(tick.time_ms, /*always_seconds=*/true);
    out += ' ';
    out += tick.side;
    out += ' ';
    out += FormatNumber(tick.size, kVolumeDigits);
    out += '@';
    out += FormatNumber(tick.price, kPriceDigits);
    out += '\n';
    return out;
}

}  // namespace kvs
