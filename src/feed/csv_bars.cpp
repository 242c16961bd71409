// LoadCsvBars: header-driven CSV bar loading (column names, date formats, time zones).

#include "feed/market.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvs {
namespace {

constexpr std::int64_t kMsPerDay = 86'400'000;
constexpr std::int64_t kMsPerHour = 3'600'000;
constexpr double kEpochMsThreshold = 1e11;  // epoch numbers above this are milliseconds

// Column indices of one CSV layout; -1 when absent.
struct Columns {
    std::vector<std::string> names;  // as written in the header, for messages
    int time = -1;
    int time_of_day = -1;  // a separate time column next to a date column
    bool time_is_end = false;
    int open = -1;
    int high = -1;
    int low = -1;
    int close = -1;
    int volume = -1;
};

std::string_view Trim(std::string_view text) {
    const auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
    while (!text.empty() && is_space(text.front())) {
        text.remove_prefix(1);
    }
    while (!text.empty() && is_space(text.back())) {
        text.remove_suffix(1);
    }
    return text;
}

// Lower case without spaces, '_' and '-': "End_Time_UTC" -> "endtimeutc".
std::string NormalizeName(std::string_view name) {
    std::string out;
    for (const char c : Trim(name)) {
        if (c != ' ' && c != '_' && c != '-') {
            out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
    }
    return out;
}

// Splits one CSV line; fields may be double-quoted, with "" for a quote inside.
std::vector<std::string> SplitCsvLine(std::string_view line) {
    std::vector<std::string> fields(1);
    bool quoted = false;
    for (std::size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
            fields.back() += '"';
            ++i;
        } else if (c == '"') {
            quoted = !quoted;
        } else if (c == ',' && !quoted) {
            fields.emplace_back();
        } else {
            fields.back() += c;
        }
    }
    return fields;
}

// The index of the first candidate name present in `normalized`, or -1.
int FindColumn(const std::vector<std::string>& normalized,
               std::initializer_list<std::string_view> candidates) {
    for (const std::string_view candidate : candidates) {
        const auto it = std::find(normalized.begin(), normalized.end(), candidate);
        if (it != normalized.end()) {
            return static_cast<int>(it - normalized.begin());
        }
    }
    return -1;
}

Result<Columns> MapColumns(const std::string& header, const std::string& path) {
    Columns columns;
    columns.names = SplitCsvLine(header);
    std::vector<std::string> normalized;
    for (const std::string& name : columns.names) {
        normalized.push_back(NormalizeName(name));
    }
    columns.time = FindColumn(normalized, {"times", "timems", "opentimems", "opentime", "timestamp",
                                           "datetime", "date", "time"});
    if (columns.time < 0) {
        columns.time = FindColumn(
            normalized, {"endtimems", "endtimeutc", "endtime", "closetimems", "closetime"});
        columns.time_is_end = columns.time >= 0;
    }
    if (columns.time >= 0 && normalized[columns.time] == "date") {
        columns.time_of_day = FindColumn(normalized, {"time"});
    }
    columns.open = FindColumn(normalized, {"open", "openprice"});
    columns.high = FindColumn(normalized, {"high", "highprice"});
    columns.low = FindColumn(normalized, {"low", "lowprice"});
    columns.close = FindColumn(normalized, {"close", "closeprice", "adjclose", "price", "last"});
    columns.volume = FindColumn(normalized, {"volume", "vol"});
    if (columns.time < 0 || columns.close < 0) {
        return InvalidArgument(path + ": no recognised " +
                               (columns.time < 0 ? "time" : "close/price") + " column in header '" +
                               header + "' (expected e.g. Date,Open,High,Low,Close,Volume)");
    }
    return columns;
}

// A cursor over a time cell, reading unsigned integers and separators.
struct Cursor {
    std::string_view text;
    std::size_t pos = 0;

    bool AtEnd() const { return pos == text.size(); }

    bool Eat(char c) {
        if (pos < text.size() && text[pos] == c) {
            ++pos;
            return true;
        }
        return false;
    }

    // Reads min_digits..max_digits decimal digits.
    bool ReadInt(int min_digits, int max_digits, int& out) {
        int n = 0;
        out = 0;
        while (n < max_digits && pos < text.size() &&
               std::isdigit(static_cast<unsigned char>(text[pos]))) {
            out = out * 10 + (text[pos++] - '0');
            ++n;
        }
        return n >= min_digits;
    }
};

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t DaysFromCivil(std::int64_t year, int month, int day) {
    year -= month <= 2 ? 1 : 0;
    const std::int64_t era = (year >= 0 ? year : year - 399) / 400;
    const std::int64_t yoe = year - era * 400;
    const std::int64_t doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

bool ValidDate(int year, int month, int day) {
    constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month >= 1 && month <= 12 && day >= 1 &&
           day <= (month == 2 && !leap ? 28 : kDays[month - 1]);
}

// Day of the month of the n-th (1-based; 5 = last) Sunday of a month.
int NthSunday(int year, int month, int n) {
    const std::int64_t first = DaysFromCivil(year, month, 1);
    const int first_weekday = static_cast<int>(((first + 4) % 7 + 7) % 7);  // 0 = Sunday
    int day = 1 + (7 - first_weekday) % 7 + 7 * (n - 1);
    while (!ValidDate(year, month, day)) {
        day -= 7;
    }
    return day;
}

// Whether a US/Eastern wall-clock time falls in daylight saving time (US rules since 1967;
// the switch is at 02:00 local).
bool IsUsDaylightTime(int year, int month, int day, int hour) {
    int start_month = 4;
    int start_day = NthSunday(year, 4, year >= 1987 ? 1 : 5);
    int end_month = 10;
    int end_day = NthSunday(year, 10, 5);
    if (year >= 2007) {
        start_month = 3;
        start_day = NthSunday(year, 3, 2);
        end_month = 11;
        end_day = NthSunday(year, 11, 1);
    }
    const int now = (month * 100 + day) * 100 + hour;
    return now >= (start_month * 100 + start_day) * 100 + 2 &&
           now < (end_month * 100 + end_day) * 100 + 2;
}

// Reads "HH:MM[:SS[.fff]]" into milliseconds of the day.
bool ReadTimeOfDay(Cursor& cursor, std::int64_t& ms_of_day, int& hour) {
    int minute = 0;
    int second = 0;
    int fraction = 0;
    if (!cursor.ReadInt(1, 2, hour) || !cursor.Eat(':') || !cursor.ReadInt(2, 2, minute)) {
        return false;
    }
    if (cursor.Eat(':') && !cursor.ReadInt(2, 2, second)) {
        return false;
    }
    if (cursor.Eat('.')) {
        const std::size_t start = cursor.pos;
        if (!cursor.ReadInt(1, 3, fraction)) {
            return false;
        }
        for (std::size_t digits = cursor.pos - start; digits < 3; ++digits) {
            fraction *= 10;
        }
    }
    if (hour > 23 || minute > 59 || second > 60) {
        return false;
    }
    ms_of_day = ((hour * 60 + minute) * 60 + second) * std::int64_t{1000} + fraction;
    return true;
}

// Reads an optional "Z", "+HH:MM" or "-HHMM" suffix; the result is UTC minus local time.
bool ReadZone(Cursor& cursor, std::int64_t& offset_ms) {
    offset_ms = 0;
    if (cursor.Eat('Z') || cursor.AtEnd()) {
        return true;
    }
    const int sign = cursor.Eat('+') ? -1 : (cursor.Eat('-') ? 1 : 0);
    int hours = 0;
    int minutes = 0;
    if (sign == 0 || !cursor.ReadInt(2, 2, hours)) {
        return false;
    }
    cursor.Eat(':');
    if (!cursor.ReadInt(2, 2, minutes)) {
        return false;
    }
    offset_ms = std::int64_t{sign} * (hours * 60 + minutes) * 60'000;
    return true;
}

// ISO "YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|+HH:MM]" (UTC unless an offset is given) or US
// "M/D/YYYY[ H:MM[:SS]]" (a time of day is US/Eastern) into Unix milliseconds.
std::optional<std::int64_t> ParseDateTime(std::string_view text) {
    Cursor cursor{text};
    int year = 0;
    int month = 0;
    int day = 0;
    const bool us = text.find('/') != std::string_view::npos;
    const bool date_ok =
        us ? cursor.ReadInt(1, 2, month) && cursor.Eat('/') && cursor.ReadInt(1, 2, day) &&
                 cursor.Eat('/') && cursor.ReadInt(4, 4, year)
           : cursor.ReadInt(4, 4, year) && cursor.Eat('-') && cursor.ReadInt(1, 2, month) &&
                 cursor.Eat('-') && cursor.ReadInt(1, 2, day);
    if (!date_ok || !ValidDate(year, month, day)) {
        return std::nullopt;
    }
    const std::int64_t midnight_ms = DaysFromCivil(year, month, day) * kMsPerDay;
    if (cursor.AtEnd()) {
        return midnight_ms;
    }
    std::int64_t ms_of_day = 0;
    int hour = 0;
    if (!(cursor.Eat('T') || cursor.Eat(' ')) || !ReadTimeOfDay(cursor, ms_of_day, hour)) {
        return std::nullopt;
    }
    std::int64_t offset_ms = 0;
    if (us) {
        offset_ms = (IsUsDaylightTime(year, month, day, hour) ? 4 : 5) * kMsPerHour;
    } else if (!ReadZone(cursor, offset_ms)) {
        return std::nullopt;
    }
    if (!cursor.AtEnd()) {
        return std::nullopt;
    }
    return midnight_ms + ms_of_day + offset_ms;
}

bool ParseDouble(std::string_view text, double& out) {
    text = Trim(text);
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

// An epoch number (seconds, or milliseconds above 1e11) or a date-time, in Unix milliseconds.
std::optional<std::int64_t> ParseTimeMs(std::string_view text) {
    text = Trim(text);
    const bool numeric = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '-';
    }) && text.find('-', 1) == std::string_view::npos;
    double epoch = 0;
    if (numeric && ParseDouble(text, epoch)) {
        return std::llround(std::abs(epoch) > kEpochMsThreshold ? epoch : epoch * 1000.0);
    }
    return ParseDateTime(text);
}

std::string Quote(std::string_view text) {
    return "'" + std::string(text) + "'";
}

// Fills `bar` and `time_ms` from one row; `where` is "path:N".
Status ParseRow(const std::vector<std::string>& fields,
                const Columns& columns,
                const std::string& where,
                Bar& bar,
                std::int64_t& time_ms) {
    std::string time_text(Trim(fields[columns.time]));
    if (columns.time_of_day >= 0) {
        time_text += " " + std::string(Trim(fields[columns.time_of_day]));
    }
    const std::optional<std::int64_t> time = ParseTimeMs(time_text);
    if (!time) {
        return InvalidArgument(where + ": bad time " + Quote(time_text) + " in column " +
                               Quote(columns.names[columns.time]));
    }
    time_ms = *time;
    const auto read = [&](int column, double& out) -> Status {
        if (column < 0 || (column == columns.volume && Trim(fields[column]).empty())) {
            return Status::Ok();
        }
        if (!ParseDouble(fields[column], out)) {
            return InvalidArgument(where + ": bad number " + Quote(fields[column]) + " in column " +
                                   Quote(columns.names[column]));
        }
        return Status::Ok();
    };
    KV_RETURN_IF_ERROR(read(columns.close, bar.close));
    bar.open = bar.close;
    KV_RETURN_IF_ERROR(read(columns.open, bar.open));
    bar.high = std::max(bar.open, bar.close);
    bar.low = std::min(bar.open, bar.close);
    KV_RETURN_IF_ERROR(read(columns.high, bar.high));
    KV_RETURN_IF_ERROR(read(columns.low, bar.low));
    KV_RETURN_IF_ERROR(read(columns.volume, bar.volume));
    return Status::Ok();
}

std::int64_t FloorDiv(std::int64_t a, std::int64_t b) {
    return a / b - ((a % b != 0 && (a < 0) != (b < 0)) ? 1 : 0);
}

// Sets each bar's time_s to its open time. Bars stamped at their end open one bar length (the
// smallest step between rows) earlier; a lone end-stamped bar keeps its end time.
void SetOpenTimes(std::vector<Bar>& bars, const std::vector<std::int64_t>& times_ms, bool is_end) {
    std::int64_t length_ms = 0;
    for (std::size_t i = 1; is_end && i < times_ms.size(); ++i) {
        const std::int64_t step = times_ms[i] - times_ms[i - 1];
        if (step > 0 && (length_ms == 0 || step < length_ms)) {
            length_ms = step;
        }
    }
    for (std::size_t i = 0; i < bars.size(); ++i) {
        // An end of 18:04:59.999 rounds to an open of 18:00:00.
        const std::int64_t open_ms = is_end ? times_ms[i] - length_ms + 500 : times_ms[i];
        bars[i].time_s = FloorDiv(open_ms, 1000);
    }
}

}  // namespace

Result<std::vector<Bar>> LoadCsvBars(const std::string& path, const std::string& symbol) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
        return NotFound("market CSV not found: " + path);
    }
    std::ifstream in(path, std::ios::binary);
    std::string line;
    if (std::filesystem::is_directory(path, ec) || !in) {
        return InvalidArgument("cannot read market CSV: " + path);
    }
    if (!std::getline(in, line)) {
        return InvalidArgument(path + ": empty file (no header row)");
    }
    if (line.starts_with("\xEF\xBB\xBF")) {
        line.erase(0, 3);
    }
    if (!line.empty() && line.back() == '\r') {
        line.pop_back();
    }
    Result<Columns> columns = MapColumns(line, path);
    if (!columns.ok()) {
        return columns.status();
    }
    const int max_column = std::max({columns->time, columns->time_of_day, columns->open,
                                     columns->high, columns->low, columns->close, columns->volume});

    std::vector<Bar> bars;
    std::vector<std::int64_t> times_ms;
    for (int line_number = 2; std::getline(in, line); ++line_number) {
        if (Trim(line).empty()) {
            continue;
        }
        const std::string where = path + ":" + std::to_string(line_number);
        const std::vector<std::string> fields = SplitCsvLine(Trim(line));
        if (static_cast<int>(fields.size()) <= max_column) {
            return InvalidArgument(where + ": expected " + std::to_string(max_column + 1) +
                                   " fields, found " + std::to_string(fields.size()));
        }
        Bar bar;
        bar.symbol = symbol;
        std::int64_t time_ms = 0;
        KV_RETURN_IF_ERROR(ParseRow(fields, *columns, where, bar, time_ms));
        bars.push_back(std::move(bar));
        times_ms.push_back(time_ms);
    }
    if (in.bad()) {
        return InvalidArgument("read error in market CSV: " + path);
    }
    SetOpenTimes(bars, times_ms, columns->time_is_end);
    return bars;
}

}  // namespace kvs
