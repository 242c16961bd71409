#include "feed/market.h"
#include "http/json_body.h"
#include "http/records.h"

#include <gtest/gtest.h>
#include <string>

namespace kvs {
namespace {

Json Parse(std::string_view text) {
    return Json::parse(text);
}

RecordTemplate Named(const char* name) {
    Result<RecordTemplate> t = ParseRecordTemplate(Json(name));
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? *t : RecordTemplate{};
}

RecordTemplate Custom(const char* pattern) {
    Result<RecordTemplate> t = ParseRecordTemplate(Json{{"format", pattern}});
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? *t : RecordTemplate{};
}

// The rendered text, or the error as "code: message".
std::string Render(std::string_view records,
                   const RecordTemplate& t = {},
                   const RecordLimits& limits = {}) {
    Result<std::string> out = RenderRecords(Parse(records), t, limits);
    return out.ok() ? *out : out.status().ToString();
}

std::string TemplateError(const Json& value) {
    Result<RecordTemplate> t = ParseRecordTemplate(value);
    return t.ok() ? "" : t.status().ToString();
}

TEST(HttpRecords, ParsesTemplateNames) {
    EXPECT_EQ(Named("auto").format, RecordFormat::kAuto);
    EXPECT_EQ(Named("ohlcv").format, RecordFormat::kOhlcv);
    EXPECT_EQ(Named("trade").format, RecordFormat::kTrade);
    EXPECT_EQ(Named("kv").format, RecordFormat::kKeyValue);
    const RecordTemplate custom = Custom("{symbol} closed at {close}");
    EXPECT_EQ(custom.format, RecordFormat::kCustom);
    EXPECT_EQ(custom.pattern, "{symbol} closed at {close}");
}

TEST(HttpRecords, RejectsBadTemplates) {
    EXPECT_EQ(TemplateError(Json("csv")),
              "invalid_argument: unknown record format 'csv'; use auto, ohlcv, trade, kv or "
              "{\"format\": \"...{field}...\"}");
    EXPECT_EQ(TemplateError(Json(3)),
              "invalid_argument: the record format must be a name (auto, ohlcv, trade, kv) or an "
              "object {\"format\": \"...{field}...\"}");
    EXPECT_EQ(TemplateError(Json{{"format", "no placeholder"}}),
              "invalid_argument: the record format has no {field} placeholder");
    EXPECT_EQ(TemplateError(Json{{"format", "{a} {b"}}),
              "invalid_argument: unbalanced '{' at byte 4 of the record format (write '{{' for a "
              "brace)");
    EXPECT_EQ(TemplateError(Json{{"format", "{a{b}"}}),
              "invalid_argument: unbalanced '{' at byte 0 of the record format (write '{{' for a "
              "brace)");
    EXPECT_EQ(TemplateError(Json{{"format", "{a} b}"}}),
              "invalid_argument: unbalanced '}' at byte 5 of the record format (write '}}' for a "
              "brace)");
    EXPECT_EQ(TemplateError(Json{{"format", "x {} {a}"}}),
              "invalid_argument: empty placeholder '{}' at byte 2 of the record format");
    EXPECT_EQ(TemplateError(Json{{"format", "{{a}}"}}),
              "invalid_argument: the record format has no {field} placeholder");
    EXPECT_EQ(TemplateError(Json{{"format", "{a}" + std::string(1022, 'x')}}),
              "invalid_argument: field 'format' is longer than 1024 bytes");
    EXPECT_EQ(TemplateError(Json{{"format", "{a}"}, {"extra", 1}}),
              "invalid_argument: unknown field 'extra'; allowed: format");
    EXPECT_EQ(TemplateError(Json::object()),
              "invalid_argument: a custom record format needs a \"format\" string");
    // A pattern that skipped ParseRecordTemplate is checked again.
    EXPECT_EQ(Render(R"([{"a": 1}])", RecordTemplate{RecordFormat::kCustom, "{a"}),
              "invalid_argument: unbalanced '{' at byte 0 of the record format (write '{{' for a "
              "brace)");
}

TEST(HttpRecords, OhlcvMatchesTheBuiltInFeed) {
    Bar bar;
    bar.symbol = "ETH";
    bar.time_s = 1678699500;  // 2023-03-13T09:25:00Z
    bar.open = 1650.2;
    bar.high = 1652;
    bar.low = 1649.8;
    bar.close = 1651.3;
    bar.volume = 123.4;
    const std::string expected = RenderBar(bar);
    ASSERT_EQ(expected, "ETH 2023-03-13T09:25Z o=1650.2 h=1652 l=1649.8 c=1651.3 v=123.4\n");
    EXPECT_EQ(Render(R"([{"symbol": "ETH", "time": 1678699500, "open": 1650.2, "high": 1652,
                          "low": 1649.8, "close": 1651.3, "volume": 123.4}])",
                     Named("ohlcv")),
              expected);
    // Aliases, an ISO time and auto detection give the same line.
    EXPECT_EQ(Render(R"([{"s": "ETH", "t": "2023-03-13T09:25:00Z", "o": 1650.2, "h": 1652,
                          "l": 1649.8, "c": 1651.3, "v": 123.4}])"),
              expected);
    EXPECT_EQ(Render(R"([{"timestamp": "2023-03-13 09:25+00:00", "o": 1650.2, "h": 1652,
                          "l": 1649.8, "c": 1651.3, "v": 123.4, "symbol": "ETH"}])"),
              expected);
    // No symbol, no volume, a date-only time (midnight) and a flat bar.
    EXPECT_EQ(Render(R"([{"t": "1990-01-02", "o": 17.24, "h": 17.24, "l": 17.24, "c": 17.24}])"),
              " 1990-01-02 c=17.24\n");
}

TEST(HttpRecords, OhlcvErrorsNameRecordAndField) {
    const RecordTemplate ohlcv = Named("ohlcv");
    EXPECT_EQ(Render(R"([{"t": 0, "o": 1, "h": 1, "l": 1, "c": 1},
                         {"t": 0, "o": 1, "h": 1, "l": 1, "c": 1},
                         {"t": 0, "o": 1, "h": 1, "l": 1}])",
                     ohlcv),
              "invalid_argument: records[2]: field 'close' must be a number");
    EXPECT_EQ(Render(R"([{"t": 0, "o": 1, "h": 1, "l": 1, "c": "1"}])", ohlcv),
              "invalid_argument: records[0]: field 'c' must be a number");
    EXPECT_EQ(Render(R"([{"t": 0, "o": true, "h": 1, "l": 1, "c": 1}])", ohlcv),
              "invalid_argument: records[0]: field 'o' must be a number");
    EXPECT_EQ(Render(R"([{"s": 5, "t": 0, "o": 1, "h": 1, "l": 1, "c": 1}])", ohlcv),
              "invalid_argument: records[0]: field 's' must be a string");
    const std::string time_error =
        "must be Unix seconds (years 1 to 9999) or an ISO-8601 UTC time like "
        "\"2023-03-13T10:05:00Z\"";
    for (const char* time :
         {"1.5", "\"2023-02-29\"", "\"2023-03-13T10:05:00\"", "\"2023-13-01\"",
          "\"2023-03-13T24:00Z\"", "\"2023-03-13T10:05:00.Z\"", "253402300800", "true"}) {
        EXPECT_EQ(Render(std::string(R"([{"o": 1, "h": 1, "l": 1, "c": 1, "time": )") + time + "}]",
                         ohlcv),
                  "invalid_argument: records[0]: field 'time' " + time_error)
            << time;
    }
    EXPECT_EQ(Render(R"([{"o": 1, "h": 1, "l": 1, "c": 1}])", ohlcv),
              "invalid_argument: records[0]: field 'time' " + time_error);
}

TEST(HttpRecords, TradeMatchesTheBuiltInFeed) {
    Tick tick;
    tick.symbol = "BTC";
    tick.time_ms = 1700000000125;
    tick.price = 60012.5;
    tick.size = 0.25;
    tick.side = 'S';
    const std::string expected = RenderTick(tick);
    ASSERT_EQ(expected, "BTC 2023-11-14T22:13:20.125Z S 0.25@60012.5\n");
    EXPECT_EQ(Render(R"([{"symbol": "BTC", "time": 1700000000125, "price": 60012.5,
                          "size": 0.25, "side": "sell"}])",
                     Named("trade")),
              expected);
    EXPECT_EQ(Render(R"([{"s": "BTC", "t": "2023-11-14T22:13:20.125Z", "p": 60012.5, "q": 0.25,
                          "side": "S"}])"),
              expected);
    // Default side "B"; "qty" alias; "Buy" in any case.
    EXPECT_EQ(Render(R"([{"s": "BTC", "t": 1700000000125, "price": 60012.5, "qty": 0.25},
                         {"s": "BTC", "t": 1700000000125, "price": 60012.5, "qty": 0.25,
                          "side": "Buy"}])"),
              "BTC 2023-11-14T22:13:20.125Z B 0.25@60012.5\n"
              "BTC 2023-11-14T22:13:20.125Z B 0.25@60012.5\n");
    EXPECT_EQ(Render(R"([{"t": 0, "p": 1, "q": 1, "side": "x"}])"),
              "invalid_argument: records[0]: field 'side' must be \"B\", \"S\", \"buy\" or "
              "\"sell\"");
    EXPECT_EQ(Render(R"([{"t": 0, "p": 1}])", Named("trade")),
              "invalid_argument: records[0]: field 'size' must be a number");
}

TEST(HttpRecords, KeyValueKeepsClientOrderAndFormatsValues) {
    EXPECT_EQ(Render(R"([{"z": "two words", "a": 3.0, "m": 0.1, "n": -7, "b": true,
                          "x": null, "o": {"k": [1, "v"]}}])",
                     Named("kv")),
              "z=two words a=3 m=0.1 n=-7 b=true x=null o={\"k\":[1,\"v\"]}\n");
    // Auto: neither a bar nor a trade.
    EXPECT_EQ(Render(R"([{"event": "halt", "symbol": "AAPL"}])"), "event=halt symbol=AAPL\n");
    EXPECT_EQ(Render(R"([{}])", Named("kv")), "invalid_argument: records[0]: the object is empty");
}

TEST(HttpRecords, ControlCharactersBecomeSpaces) {
    EXPECT_EQ(Render(R"([{"note": "a\nb\tc\r", "k\ney": "\u2028x\u0085"}])"),
              "note=a b c  k ey= x \n");
    EXPECT_EQ(Render(R"([{"s": "BT\nC", "t": 0, "o": 1, "h": 1, "l": 1, "c": 1}])"),
              "BT C 1970-01-01 c=1\n");
}

TEST(HttpRecords, CustomPatternSubstitutesFields) {
    EXPECT_EQ(Render(R"([{"symbol": "SPX", "close": 5000.25, "n": 3},
                         {"symbol": "VIX", "close": 17, "n": 4}])",
                     Custom("{{{symbol}}} closed at {close} ({n} trades)")),
              "{SPX} closed at 5000.25 (3 trades)\n{VIX} closed at 17 (4 trades)\n");
    EXPECT_EQ(Render(R"([{"symbol": "SPX", "close": 1}, {"symbol": "SPX"}])",
                     Custom("{symbol} closed at {close}")),
              "invalid_argument: records[1]: field 'close' is missing (the format uses it)");
    // null is a value (it prints), unlike a missing member.
    EXPECT_EQ(Render(R"([{"a": null}])", Custom("a={a}")), "a=null\n");
}

TEST(HttpRecords, AutoDetectsEachRecord) {
    EXPECT_EQ(Render(R"([{"s": "X", "t": 60, "o": 1, "h": 2, "l": 0.5, "c": 1.5},
                         {"s": "X", "t": 60000, "p": 1.5, "q": 2},
                         {"s": "X", "c": 1.5}])"),
              "X 1970-01-01T00:01Z o=1 h=2 l=0.5 c=1.5\n"
              "X 1970-01-01T00:01:00Z B 2@1.5\n"
              "s=X c=1.5\n");
    // Detected as a bar, so it must be a valid bar.
    EXPECT_EQ(Render(R"([{"o": 1, "h": 2, "l": 0.5, "c": 1.5}])"),
              "invalid_argument: records[0]: field 'time' must be Unix seconds (years 1 to 9999) "
              "or an ISO-8601 UTC time like \"2023-03-13T10:05:00Z\"");
}

TEST(HttpRecords, EnforcesShapeAndLimits) {
    EXPECT_EQ(Render("[]"), "invalid_argument: records must be a non-empty array of objects");
    EXPECT_EQ(Render(R"({"a": 1})"),
              "invalid_argument: records must be a non-empty array of objects");
    EXPECT_EQ(Render(R"([{"a": 1}, {"a": 1}, {"a": 1}, 4])"),
              "invalid_argument: records[3] must be an object");
    RecordLimits limits;
    limits.max_records = 2;
    EXPECT_EQ(Render(R"([{"a": 1}, {"a": 1}, {"a": 1}])", {}, limits),
              "too_large: 3 records; at most 2 per append");
    limits.max_line_bytes = 8;
    EXPECT_EQ(Render(R"([{"a": "123456"}, {"a": "1234567"}])", {}, limits),
              "too_large: records[1] renders to 9 bytes; at most 8 per line");
    EXPECT_EQ(Render(R"([{"a": "123456"}])", {}, limits), "a=123456\n");
}

TEST(HttpRecords, TimesCoverYearsOneToNineThousand) {
    EXPECT_EQ(Render(R"([{"t": "0001-01-01T00:00:00Z", "o": 1, "h": 1, "l": 1, "c": 1},
                         {"t": "9999-12-31T23:59:59.999999999Z", "o": 1, "h": 1, "l": 1, "c": 1},
                         {"t": -62135596800, "o": 1, "h": 1, "l": 1, "c": 1}])"),
              " 0001-01-01 c=1\n 9999-12-31T23:59:59Z c=1\n 0001-01-01 c=1\n");
    EXPECT_EQ(Render(R"([{"t": "2024-02-29T12:00:00.5Z", "p": 1, "q": 1}])"),
              " 2024-02-29T12:00:00.500Z B 1@1\n");
}

}  // namespace
}  // namespace kvs
