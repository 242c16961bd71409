#include "http/json_body.h"

#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace kvs {
namespace {

// The error message of a failed parse ("" when it succeeded, so a mismatch shows both).
std::string ParseError(std::string_view body, const BodyLimits& limits = {}) {
    Result<Json> parsed = ParseJsonBody(body, limits);
    return parsed.ok() ? "" : parsed.status().message();
}

Json Obj(std::string_view text) {
    Result<Json> parsed = ParseJsonBody(text, {});
    EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
    return parsed.ok() ? *parsed : Json::object();
}

template <typename T>
std::string ErrorOf(const Result<T>& result) {
    return result.ok() ? "" : result.status().ToString();
}

TEST(HttpJson, ParsesObjectAndKeepsMemberOrder) {
    Result<Json> parsed = ParseJsonBody(R"({"z": 1, "a": [true, null], "m": {"k": "v"}})", {});
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    std::vector<std::string> keys;
    for (auto it = parsed->begin(); it != parsed->end(); ++it) {
        keys.push_back(it.key());
    }
    EXPECT_EQ(keys, (std::vector<std::string>{"z", "a", "m"}));
    EXPECT_EQ((*parsed)["m"]["k"], "v");
}

TEST(HttpJson, RejectsOversizedBodyBeforeParsing) {
    BodyLimits limits;
    limits.max_body_bytes = 10;
    Result<Json> parsed = ParseJsonBody("{\"abc\": 12345}", limits);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), StatusCode::kTooLarge);
    EXPECT_EQ(parsed.status().message(), "the body has 14 bytes; the limit is 10");
    EXPECT_EQ(ParseError("{\"a\": 1}", limits), "");
}

TEST(HttpJson, RejectsInvalidUtf8) {
    Result<Json> parsed = ParseJsonBody("{\"a\": \"\xC3\x28\"}", {});
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(parsed.status().message(), "the body is not valid UTF-8");
}

TEST(HttpJson, ReportsMalformedJsonWithOffset) {
    EXPECT_EQ(ParseError("{\"a\": tru}"), "malformed JSON at byte 9: invalid literal");
    EXPECT_EQ(ParseError("{\"a\" 1}"),
              "malformed JSON at byte 5: unexpected number literal; expected ':'");
    EXPECT_EQ(ParseError("{\"a\": 1"),
              "malformed JSON at byte 7: unexpected end of input; expected '}'");
    EXPECT_EQ(ParseError(""),
              "malformed JSON at byte 0: unexpected end of input; expected '[', '{', or a literal");
    EXPECT_EQ(ParseError("{} {}"),
              "malformed JSON at byte 3: unexpected '{'; expected end of input");
    EXPECT_EQ(ParseError("{\"a\": 1e400}"), "malformed JSON: number overflow parsing '1e400'");
    // Lone surrogates from escapes are malformed too.
    EXPECT_EQ(
        ParseError(R"({"a": "\ud800"})"),
        "malformed JSON at byte 13: invalid string: surrogate U+D800..U+DBFF must be followed "
        "by U+DC00..U+DFFF");
}

TEST(HttpJson, MalformedReasonIsShort) {
    // The offending token is not echoed: it may be a megabyte long.
    const std::string body = "{\"a\": \"" + std::string(5000, 'x') + "\x01\"}";
    EXPECT_EQ(ParseError(body),
              "malformed JSON at byte 5007: invalid string: control character U+0001 (SOH) must "
              "be escaped to \\u0001");
    // A reason that quotes a long number is cut.
    const std::string error = ParseError("{\"a\": 1" + std::string(400, '0') + "}");
    EXPECT_EQ(error, "malformed JSON: number overflow parsing '1" + std::string(94, '0') + "...");
}

TEST(HttpJson, EnforcesDepthLimit) {
    std::string ok_body = "{\"a\":";
    for (int i = 0; i < 31; ++i) {
        ok_body += "[";
    }
    std::string too_deep = ok_body + "[]";
    for (int i = 0; i < 31; ++i) {
        ok_body += "]";
        too_deep += "]";
    }
    ok_body += "}";
    too_deep += "}";
    EXPECT_EQ(ParseError(ok_body), "");  // 32 levels: the object and 31 arrays
    EXPECT_EQ(ParseError(too_deep), "JSON nested deeper than 32 levels");
    BodyLimits shallow;
    shallow.max_depth = 2;
    EXPECT_EQ(ParseError(R"({"a": {"b": 1}})", shallow), "");
    EXPECT_EQ(ParseError(R"({"a": {"b": {}}})", shallow), "JSON nested deeper than 2 levels");
}

TEST(HttpJson, DeepNestingStopsEarlyWithoutRecursion) {
    // A whole megabyte of '[' or '{"a":' must neither overflow the stack nor build a tree.
    EXPECT_EQ(ParseError(std::string(1 << 20, '[')), "JSON nested deeper than 32 levels");
    std::string objects;
    while (objects.size() < (1 << 20) - 5) {
        objects += "{\"a\":";
    }
    EXPECT_EQ(ParseError(objects), "JSON nested deeper than 32 levels");
}

TEST(HttpJson, EnforcesMemberLimit) {
    BodyLimits limits;
    limits.max_object_members = 3;
    EXPECT_EQ(ParseError(R"({"a": 1, "b": {"x": 1, "y": 2, "z": 3}, "c": 3})", limits), "");
    EXPECT_EQ(ParseError(R"({"a": 1, "b": 2, "c": 3, "d": 4})", limits),
              "a JSON object has more than 3 members");
    EXPECT_EQ(ParseError(R"({"a": [{"w": 1, "x": 1, "y": 2, "z": 3}]})", limits),
              "a JSON object has more than 3 members");
}

TEST(HttpJson, TopLevelMustBeAnObject) {
    for (const char* body : {"[1]", "\"text\"", "42", "null", "true"}) {
        EXPECT_EQ(ParseError(body), "the body must be a JSON object") << body;
    }
}

TEST(HttpJson, OptStringReadsAndValidates) {
    const Json obj = Obj(R"({"q": "caf\u00e9", "n": 3, "nul": "a\u0000b", "null": null})");
    Result<std::optional<std::string>> q = OptString(obj, "q", 16);
    ASSERT_TRUE(q.ok());
    EXPECT_EQ(q->value(), "caf\xC3\xA9");
    EXPECT_FALSE(OptString(obj, "absent", 16)->has_value());
    EXPECT_FALSE(OptString(obj, "null", 16)->has_value());
    EXPECT_EQ(ErrorOf(OptString(obj, "n", 16)), "invalid_argument: field 'n' must be a string");
    EXPECT_EQ(ErrorOf(OptString(obj, "q", 4)),
              "invalid_argument: field 'q' is longer than 4 bytes");
    EXPECT_EQ(ErrorOf(OptString(obj, "nul", 16)),
              "invalid_argument: field 'nul' contains a NUL character");
}

TEST(HttpJson, OptIntAcceptsOnlyIntegersInRange) {
    const Json obj = Obj(
        R"({"ok": 7, "neg": -3, "float": 3.5, "whole_float": 3.0, "exp": 1e2, "bool": true,
            "str": "7", "big": 18446744073709551615, "low": 0})");
    EXPECT_EQ(OptInt(obj, "ok", 1, 4096)->value(), 7);
    EXPECT_EQ(OptInt(obj, "neg", -10, 10)->value(), -3);
    EXPECT_FALSE(OptInt(obj, "absent", 1, 4096)->has_value());
    for (const char* field : {"float", "whole_float", "exp", "bool", "str", "big", "low"}) {
        EXPECT_EQ(
            ErrorOf(OptInt(obj, field, 1, 4096)),
            std::string("invalid_argument: field '") + field + "' must be an integer in 1..4096");
    }
}

TEST(HttpJson, OptNumberAcceptsIntegersAndFractions) {
    const Json obj = Obj(R"({"t": 0.7, "i": 2, "big": 5, "bool": false, "s": "1"})");
    EXPECT_EQ(OptNumber(obj, "t", 0, 2)->value(), 0.7);
    EXPECT_EQ(OptNumber(obj, "i", 0, 2)->value(), 2.0);
    EXPECT_FALSE(OptNumber(obj, "absent", 0, 2)->has_value());
    EXPECT_EQ(ErrorOf(OptNumber(obj, "big", 0, 2)),
              "invalid_argument: field 'big' must be a number in 0..2");
    EXPECT_EQ(ErrorOf(OptNumber(obj, "bool", 0, 1.5)),
              "invalid_argument: field 'bool' must be a number in 0..1.5");
    EXPECT_EQ(ErrorOf(OptNumber(obj, "s", -1, 1)),
              "invalid_argument: field 's' must be a number in -1..1");
}

TEST(HttpJson, OptBoolAcceptsOnlyBooleans) {
    const Json obj = Obj(R"({"yes": true, "no": false, "one": 1})");
    EXPECT_EQ(OptBool(obj, "yes")->value(), true);
    EXPECT_EQ(OptBool(obj, "no")->value(), false);
    EXPECT_FALSE(OptBool(obj, "absent")->has_value());
    EXPECT_EQ(ErrorOf(OptBool(obj, "one")), "invalid_argument: field 'one' must be true or false");
}

TEST(HttpJson, OptStringOrListTakesOneOrMany) {
    const Json obj = Obj(R"({"one": "\n\n", "many": ["a", "bc"], "empty": [], "num": 5,
                             "mixed": ["a", 1], "long": ["abcdef"], "nul": ["\u0000"]})");
    EXPECT_EQ(OptStringOrList(obj, "one", 4, 8)->value(), std::vector<std::string>{"\n\n"});
    EXPECT_EQ(OptStringOrList(obj, "many", 4, 8)->value(), (std::vector<std::string>{"a", "bc"}));
    EXPECT_TRUE(OptStringOrList(obj, "empty", 4, 8)->value().empty());
    EXPECT_FALSE(OptStringOrList(obj, "absent", 4, 8)->has_value());
    EXPECT_EQ(ErrorOf(OptStringOrList(obj, "num", 4, 8)),
              "invalid_argument: field 'num' must be a string or an array of strings");
    EXPECT_EQ(ErrorOf(OptStringOrList(obj, "many", 1, 8)),
              "invalid_argument: field 'many' has 2 items; at most 1");
    EXPECT_EQ(ErrorOf(OptStringOrList(obj, "mixed", 4, 8)),
              "invalid_argument: field 'mixed[1]' must be a string");
    EXPECT_EQ(ErrorOf(OptStringOrList(obj, "long", 4, 5)),
              "invalid_argument: field 'long[0]' is longer than 5 bytes");
    EXPECT_EQ(ErrorOf(OptStringOrList(obj, "nul", 4, 5)),
              "invalid_argument: field 'nul[0]' contains a NUL character");
}

TEST(HttpJson, RejectUnknownFieldsListsAllowedNames) {
    const Json obj = Obj(R"({"query": "q", "max_token": 5})");
    EXPECT_TRUE(RejectUnknownFields(obj, {"query", "max_token"}).ok());
    const Status status = RejectUnknownFields(obj, {"query", "max_tokens", "stop"});
    EXPECT_EQ(status.ToString(),
              "invalid_argument: unknown field 'max_token'; allowed: query, max_tokens, stop");
    const Json long_key = Obj("{\"" + std::string(100, 'k') + "\\n\": 1}");
    EXPECT_EQ(RejectUnknownFields(long_key, {"a"}).message(),
              "unknown field '" + std::string(64, 'k') + "...'; allowed: a");
}

TEST(HttpJson, FormatJsonValueWritesShortestForms) {
    const Json obj = Obj(R"({"s": "x y", "i": -42, "u": 18446744073709551615, "f": 3.0,
                             "g": 0.1, "e": 1e21, "t": true, "n": null,
                             "o": {"a": [1, 2.5, "\u00e9"]}})");
    EXPECT_EQ(FormatJsonValue(obj["s"]), "x y");
    EXPECT_EQ(FormatJsonValue(obj["i"]), "-42");
    EXPECT_EQ(FormatJsonValue(obj["u"]), "18446744073709551615");
    EXPECT_EQ(FormatJsonValue(obj["f"]), "3");
    EXPECT_EQ(FormatJsonValue(obj["g"]), "0.1");
    EXPECT_EQ(FormatJsonValue(obj["e"]), "1e+21");
    EXPECT_EQ(FormatJsonValue(obj["t"]), "true");
    EXPECT_EQ(FormatJsonValue(obj["n"]), "null");
    EXPECT_EQ(FormatJsonValue(obj["o"]), "{\"a\":[1,2.5,\"\xC3\xA9\"]}");
    EXPECT_EQ(ShortestNumber(60012.5), "60012.5");
}

}  // namespace
}  // namespace kvs
