// ParseRecordTemplate and RenderRecords: JSON records -> one text line each.

#include "http/records.h"

#include "feed/market.h"

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

// Assigns the value of `expr` (a Result) to `lhs`, or returns its Status.
#define KV_ASSIGN_OR_RETURN(lhs, expr)  \
    do {                                \
        auto kv_result_ = (expr);       \
        if (!kv_result_.ok()) {         \
            return kv_result_.status(); \
        }                               \
        (lhs) = std::move(*kv_result_); \
    } while (false)

namespace kvs {
namespace {

constexpr std::size_t kMaxPatternBytes = 1024;
constexpr std::int64_t kMinTimeS = -62'135'596'800;  // 0001-01-01T00:00:00Z
constexpr std::int64_t kMaxTimeS = 253'402'300'799;  // 9999-12-31T23:59:59Z

// ---- Custom patterns ----

// A piece of a custom pattern: literal text, or the name of a field to substitute.
struct Segment {
    std::string text;
    bool is_field = false;
};

std::string AtByte(std::size_t i) {
    return " at byte " + std::to_string(i) + " of the record format";
}

Result<std::vector<Segment>> ParsePattern(std::string_view pattern) {
    if (pattern.size() > kMaxPatternBytes) {
        return InvalidArgument("the record format has " + std::to_string(pattern.size()) +
                               " bytes; at most " + std::to_string(kMaxPatternBytes));
    }
    std::vector<Segment> segments(1);  // segments.back() is the literal being collected
    bool has_field = false;
    for (std::size_t i = 0; i < pattern.size(); ++i) {
        const char c = pattern[i];
        const char next = i + 1 < pattern.size() ? pattern[i + 1] : '\0';
        if ((c == '{' || c == '}') && next == c) {  // "{{" or "}}": a literal brace
            segments.back().text += c;
            ++i;
        } else if (c == '}') {
            return InvalidArgument("unbalanced '}'" + AtByte(i) + " (write '}}' for a brace)");
        } else if (c == '{') {
            const std::size_t close = pattern.find_first_of("{}", i + 1);
            if (close == std::string_view::npos || pattern[close] == '{') {
                return InvalidArgument("unbalanced '{'" + AtByte(i) + " (write '{{' for a brace)");
            }
            if (close == i + 1) {
                return InvalidArgument("empty placeholder '{}'" + AtByte(i));
            }
            segments.push_back({std::string(pattern.substr(i + 1, close - i - 1)), true});
            segments.emplace_back();
            has_field = true;
            i = close;
        } else {
            segments.back().text += c;
        }
    }
    if (!has_field) {
        return InvalidArgument("the record format has no {field} placeholder");
    }
    return segments;
}

// ---- Times ----

// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t DaysFromCivil(std::int64_t year, int month, int day) {
    if (month <= 2) {
        --year;
    }
    const std::int64_t era = (year >= 0 ? year : year - 399) / 400;
    const std::int64_t yoe = year - era * 400;  // [0, 399]
    const std::int64_t doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;  // [0, 146096]
    return era * 146097 + doe - 719468;
}

int DaysInMonth(int year, int month) {
    constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : kDays[month - 1];
}

bool IsDigit(char c) {
    return c >= '0' && c <= '9';
}

// Reads `count` digits at `pos` into `out`.
bool ReadDigits(std::string_view text, std::size_t& pos, int count, int& out) {
    out = 0;
    for (int k = 0; k < count; ++k, ++pos) {
        if (pos >= text.size() || !IsDigit(text[pos])) {
            return false;
        }
        out = out * 10 + (text[pos] - '0');
    }
    return true;
}

bool Skip(std::string_view text, std::size_t& pos, std::string_view expected) {
    if (text.substr(pos, expected.size()) != expected) {
        return false;
    }
    pos += expected.size();
    return true;
}

// The digits of a fraction of a second at `pos` (1 to 9; the first 3 count) as milliseconds.
bool ReadFractionMs(std::string_view text, std::size_t& pos, int& ms) {
    const std::size_t first = pos;
    for (int weight = 100; pos < text.size() && IsDigit(text[pos]); ++pos, weight /= 10) {
        ms += weight * (text[pos] - '0');
    }
    return pos > first && pos - first <= 9;
}

// "(T| )HH:MM[:SS[.f...]](Z|+00:00)" at `pos` as milliseconds of the day.
std::optional<int> ReadTimeOfDayMs(std::string_view text, std::size_t& pos) {
    int hour = 0, minute = 0, second = 0, ms = 0;
    if (!(Skip(text, pos, "T") || Skip(text, pos, " ")) || !ReadDigits(text, pos, 2, hour) ||
        !Skip(text, pos, ":") || !ReadDigits(text, pos, 2, minute)) {
        return std::nullopt;
    }
    if (Skip(text, pos, ":") && (!ReadDigits(text, pos, 2, second) ||
                                 (Skip(text, pos, ".") && !ReadFractionMs(text, pos, ms)))) {
        return std::nullopt;
    }
    if ((!Skip(text, pos, "Z") && !Skip(text, pos, "+00:00")) || hour > 23 || minute > 59 ||
        second > 59) {
        return std::nullopt;
    }
    return ((hour * 60 + minute) * 60 + second) * 1000 + ms;
}

// Unix milliseconds of "YYYY-MM-DD" (midnight) or "YYYY-MM-DD" and a ReadTimeOfDayMs time.
std::optional<std::int64_t> ParseIsoUtcMs(std::string_view text) {
    std::size_t pos = 0;
    int year = 0, month = 0, day = 0;
    if (!ReadDigits(text, pos, 4, year) || !Skip(text, pos, "-") ||
        !ReadDigits(text, pos, 2, month) || !Skip(text, pos, "-") ||
        !ReadDigits(text, pos, 2, day) || year < 1 || month < 1 || month > 12 || day < 1 ||
        day > DaysInMonth(year, month)) {
        return std::nullopt;
    }
    const std::optional<int> ms_of_day = pos == text.size() ? 0 : ReadTimeOfDayMs(text, pos);
    if (!ms_of_day.has_value() || pos != text.size()) {
        return std::nullopt;
    }
    return DaysFromCivil(year, month, day) * 86'400'000 + *ms_of_day;
}

// ---- Fields ----

// The first alias present in `record` (nullptr when none is), and the name to use in errors:
// the alias found, else the first one.
struct Found {
    const Json* value;
    const char* name;
};

Found FindAlias(const Json& record, std::initializer_list<const char*> names) {
    for (const char* name : names) {
        if (const Json* value = FindField(record, name)) {
            return {value, name};
        }
    }
    return {nullptr, *names.begin()};
}

Result<double> NumberField(const Json& record,
                           std::initializer_list<const char*> names,
                           std::optional<double> fallback = std::nullopt) {
    const Found found = FindAlias(record, names);
    if (found.value == nullptr && fallback.has_value()) {
        return *fallback;
    }
    if (found.value == nullptr || !found.value->is_number()) {
        return InvalidArgument(std::string("field '") + found.name + "' must be a number");
    }
    return found.value->get<double>();
}

Result<std::string> SymbolField(const Json& record) {
    const Found found = FindAlias(record, {"symbol", "s"});
    if (found.value == nullptr) {
        return std::string();
    }
    if (!found.value->is_string()) {
        return InvalidArgument(std::string("field '") + found.name + "' must be a string");
    }
    return found.value->get<std::string>();
}

// Unix milliseconds from an integer number of `unit_ms` or an ISO-8601 string.
Result<std::int64_t> TimeFieldMs(const Json& record, std::int64_t unit_ms, const char* unit) {
    const Found found = FindAlias(record, {"time", "t", "timestamp"});
    const std::int64_t min = kMinTimeS * 1000 / unit_ms;
    const std::int64_t max = (kMaxTimeS * 1000 + 999) / unit_ms;
    if (found.value != nullptr && found.value->is_number_integer()) {
        const bool is_unsigned = found.value->is_number_unsigned();
        if (!is_unsigned || found.value->get<std::uint64_t>() <= static_cast<std::uint64_t>(max)) {
            const auto n = found.value->get<std::int64_t>();
            if (n >= min && n <= max) {
                return n * unit_ms;
            }
        }
    } else if (found.value != nullptr && found.value->is_string()) {
        if (auto ms = ParseIsoUtcMs(found.value->get_ref<const std::string&>())) {
            return *ms;
        }
    }
    return InvalidArgument(std::string("field '") + found.name + "' must be " + unit +
                           " (years 1 to 9999) or an ISO-8601 UTC time like "
                           "\"2023-03-13T10:05:00Z\"");
}

// ---- One record ----

Result<std::string> RenderOhlcv(const Json& record) {
    Bar bar;
    std::int64_t time_ms = 0;
    KV_ASSIGN_OR_RETURN(bar.symbol, SymbolField(record));
    KV_ASSIGN_OR_RETURN(time_ms, TimeFieldMs(record, 1000, "Unix seconds"));
    bar.time_s = time_ms / 1000 - (time_ms % 1000 < 0 ? 1 : 0);
    KV_ASSIGN_OR_RETURN(bar.open, NumberField(record, {"open", "o"}));
    KV_ASSIGN_OR_RETURN(bar.high, NumberField(record, {"high", "h"}));
    KV_ASSIGN_OR_RETURN(bar.low, NumberField(record, {"low", "l"}));
    KV_ASSIGN_OR_RETURN(bar.close, NumberField(record, {"close", "c"}));
    KV_ASSIGN_OR_RETURN(bar.volume, NumberField(record, {"volume", "v"}, 0.0));
    return RenderBar(bar);
}

Result<std::string> RenderTrade(const Json& record) {
    Tick tick;
    KV_ASSIGN_OR_RETURN(tick.symbol, SymbolField(record));
    KV_ASSIGN_OR_RETURN(tick.time_ms, TimeFieldMs(record, 1, "Unix milliseconds"));
    KV_ASSIGN_OR_RETURN(tick.price, NumberField(record, {"price", "p"}));
    KV_ASSIGN_OR_RETURN(tick.size, NumberField(record, {"size", "q", "qty"}));
    if (const Json* side = FindField(record, "side")) {
        std::string name = side->is_string() ? side->get<std::string>() : std::string();
        for (char& c : name) {
            c = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
        }
        if (name != "b" && name != "buy" && name != "s" && name != "sell") {
            return InvalidArgument("field 'side' must be \"B\", \"S\", \"buy\" or \"sell\"");
        }
        tick.side = name[0] == 'b' ? 'B' : 'S';
    }
    return RenderTick(tick);
}

Result<std::string> RenderKeyValue(const Json& record) {
    if (record.empty()) {
        return InvalidArgument("the object is empty");
    }
    std::string line;
    for (auto it = record.begin(); it != record.end(); ++it) {
        line += line.empty() ? "" : " ";
        line += it.key();
        line += '=';
        line += FormatJsonValue(it.value());
    }
    return line;
}

Result<std::string> RenderCustom(const Json& record, const std::vector<Segment>& segments) {
    std::string line;
    for (const Segment& segment : segments) {
        if (!segment.is_field) {
            line += segment.text;
            continue;
        }
        const auto it = record.find(segment.text);
        if (it == record.end()) {
            return InvalidArgument("field '" + QuoteForMessage(segment.text) +
                                   "' is missing (the format uses it)");
        }
        line += FormatJsonValue(*it);
    }
    return line;
}

Result<std::string> RenderOne(const Json& record,
                              RecordFormat format,
                              const std::vector<Segment>& segments) {
    if (format == RecordFormat::kAuto) {
        const auto has = [&](std::initializer_list<const char*> names) {
            return FindAlias(record, names).value != nullptr;
        };
        if (has({"open", "o"}) && has({"high", "h"}) && has({"low", "l"}) && has({"close", "c"})) {
            format = RecordFormat::kOhlcv;
        } else if (has({"price", "p"}) && has({"size", "q", "qty"})) {
            format = RecordFormat::kTrade;
        } else {
            format = RecordFormat::kKeyValue;
        }
    }
    switch (format) {
        case RecordFormat::kOhlcv:
            return RenderOhlcv(record);
        case RecordFormat::kTrade:
            return RenderTrade(record);
        case RecordFormat::kCustom:
            return RenderCustom(record, segments);
        default:
            return RenderKeyValue(record);
    }
}

// Replaces control characters with spaces and drops a trailing '\n': C0 and DEL bytes, C1
// controls (U+0080..U+009F, bytes C2 80..C2 9F) and U+2028/U+2029 (E2 80 A8/A9) become one space.
std::string OneLine(std::string_view text) {
    if (!text.empty() && text.back() == '\n') {
        text.remove_suffix(1);
    }
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto byte = static_cast<unsigned char>(text[i]);
        const auto next = i + 1 < text.size() ? static_cast<unsigned char>(text[i + 1]) : 0;
        const auto third = i + 2 < text.size() ? static_cast<unsigned char>(text[i + 2]) : 0;
        if (byte < 0x20 || byte == 0x7F) {
            out += ' ';
        } else if (byte == 0xC2 && next >= 0x80 && next <= 0x9F) {
            out += ' ';
            i += 1;
        } else if (byte == 0xE2 && next == 0x80 && (third == 0xA8 || third == 0xA9)) {
            out += ' ';
            i += 2;
        } else {
            out += text[i];
        }
    }
    return out;
}

}  // namespace

Result<RecordTemplate> ParseRecordTemplate(const Json& value) {
    if (value.is_string()) {
        const auto& name = value.get_ref<const std::string&>();
        for (const auto& [known, format] :
             {std::pair{"auto", RecordFormat::kAuto}, std::pair{"ohlcv", RecordFormat::kOhlcv},
              std::pair{"trade", RecordFormat::kTrade}, std::pair{"kv", RecordFormat::kKeyValue}}) {
            if (name == known) {
                return RecordTemplate{format, ""};
            }
        }
        return InvalidArgument("unknown record format '" + QuoteForMessage(name) +
                               "'; use auto, ohlcv, trade, kv or {\"format\": \"...{field}...\"}");
    }
    if (!value.is_object()) {
        return InvalidArgument(
            "the record format must be a name (auto, ohlcv, trade, kv) or an object "
            "{\"format\": \"...{field}...\"}");
    }
    KV_RETURN_IF_ERROR(RejectUnknownFields(value, {"format"}));
    std::optional<std::string> pattern;
    KV_ASSIGN_OR_RETURN(pattern, OptString(value, "format", kMaxPatternBytes));
    if (!pattern.has_value()) {
        return InvalidArgument("a custom record format needs a \"format\" string");
    }
    KV_RETURN_IF_ERROR(ParsePattern(*pattern).status());
    return RecordTemplate{RecordFormat::kCustom, std::move(*pattern)};
}

Json RecordTemplateJson(const RecordTemplate& t) {
    switch (t.format) {
        case RecordFormat::kAuto:
            return "auto";
        case RecordFormat::kOhlcv:
            return "ohlcv";
        case RecordFormat::kTrade:
            return "trade";
        case RecordFormat::kKeyValue:
            return "kv";
        case RecordFormat::kCustom:
            break;
    }
    return Json{{"format", t.pattern}};
}

Result<std::string> RenderRecords(const Json& records,
                                  const RecordTemplate& t,
                                  const RecordLimits& limits) {
    if (!records.is_array() || records.empty()) {
        return InvalidArgument("records must be a non-empty array of objects");
    }
    if (records.size() > limits.max_records) {
        return TooLarge(std::to_string(records.size()) + " records; at most " +
                        std::to_string(limits.max_records) + " per append");
    }
    std::vector<Segment> segments;
    if (t.format == RecordFormat::kCustom) {
        KV_ASSIGN_OR_RETURN(segments, ParsePattern(t.pattern));
    }
    std::string out;
    for (std::size_t i = 0; i < records.size(); ++i) {
        const std::string where = "records[" + std::to_string(i) + "]";
        if (!records[i].is_object()) {
            return InvalidArgument(where + " must be an object");
        }
        Result<std::string> rendered = RenderOne(records[i], t.format, segments);
        if (!rendered.ok()) {
            return Status(rendered.status().code(), where + ": " + rendered.status().message());
        }
        const std::string line = OneLine(*rendered);
        if (line.size() > limits.max_line_bytes) {
            return TooLarge(where + " renders to " + std::to_string(line.size()) +
                            " bytes; at most " + std::to_string(limits.max_line_bytes) +
                            " per line");
        }
        out += line;
        out += '\n';
    }
    return out;
}

}  // namespace kvs
