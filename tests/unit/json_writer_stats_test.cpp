// common/json_writer.h and common/stats.h: the one JSON writer and the one quantile rule of the
// benchmark and CLI reports.

#include "common/json_writer.h"
#include "common/stats.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <gtest/gtest.h>
#include <limits>
#include <string>
#include <vector>

namespace kvs {
namespace {

TEST(JsonQuote, EscapesQuotesBackslashesAndControlCharacters) {
    EXPECT_EQ(JsonQuote("a\"b\\c"), R"("a\"b\\c")");
    EXPECT_EQ(JsonQuote("\n\r\t\b\f"), R"("\n\r\t\b\f")");
    EXPECT_EQ(JsonQuote(std::string("\x01\x1f\x00", 3)), R"("\u0001\u001f\u0000")");
    EXPECT_EQ(JsonQuote("\x7f/"), "\"\x7f/\"");  // DEL and '/' need no escape
    EXPECT_EQ(JsonQuote(""), "\"\"");
}

TEST(JsonQuote, KeepsUtf8AndReplacesMalformedBytes) {
    EXPECT_EQ(JsonQuote("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
              "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    EXPECT_EQ(JsonQuote("a\xff"), R"("a\ufffd")");                    // never a lead byte
    EXPECT_EQ(JsonQuote("\xc3"), R"("\ufffd")");                      // truncated sequence
    EXPECT_EQ(JsonQuote("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");  // a surrogate
    EXPECT_EQ(JsonQuote("\xc0\xaf"), R"("\ufffd\ufffd")");            // overlong '/'
}

TEST(JsonQuote, RoundTripsThroughAJsonParser) {
    std::string all;
    for (int c = 1; c < 128; ++c) {
        all += static_cast<char>(c);
    }
    all += "/path/to/\"model\".gguf \xe2\x82\xac";
    EXPECT_EQ(nlohmann::json::parse(JsonQuote(all)).get<std::string>(), all);
}

TEST(JsonNumber, ShortestRoundTripAndNullWhenNotFinite) {
    EXPECT_EQ(JsonNumber(0.1), "0.1");
    EXPECT_EQ(JsonNumber(3), "3");
    EXPECT_EQ(JsonNumber(-2.5e-7), "-2.5e-07");
    EXPECT_EQ(std::stod(JsonNumber(1.0 / 3.0)), 1.0 / 3.0);
    EXPECT_EQ(JsonNumber(std::numeric_limits<double>::quiet_NaN()), "null");
    EXPECT_EQ(JsonNumber(std::numeric_limits<double>::infinity()), "null");
    EXPECT_EQ(JsonNumber(-std::numeric_limits<double>::infinity()), "null");
}

TEST(JsonWriter, NestsObjectsAndArraysWithCommas) {
    JsonWriter w;
    w.BeginObject().Field("model", "a\"b").Field("n", 3).Field("ok", true);
    w.Key("runs").BeginArray();
    w.BeginObject().Field("p99", 1.5).EndObject();
    w.BeginObject().EndObject().Null();
    w.EndArray().Key("xs").Numbers({1, std::nan("")}).EndObject();
    EXPECT_EQ(w.str(),
              R"({"model":"a\"b","n":3,"ok":true,"runs":[{"p99":1.5},{},null],"xs":[1,null]})");
}

TEST(JsonWriter, IndentsLikeADump) {
    JsonWriter w(2);
    w.BeginObject().Field("a", 1).Key("b").BeginArray().Int(2).EndArray().Key("c");
    w.BeginArray().EndArray().EndObject();
    EXPECT_EQ(w.str(), "{\n  \"a\": 1,\n  \"b\": [\n    2\n  ],\n  \"c\": []\n}");
    EXPECT_EQ(nlohmann::json::parse(w.str())["b"][0], 2);
}

TEST(JsonWriterDeathTest, MisuseIsABug) {
    EXPECT_DEATH(
        {
            JsonWriter w;
            w.BeginObject().Int(1);
        },
        "without a key");
    EXPECT_DEATH(
        {
            JsonWriter w;
            w.BeginArray().EndObject();
        },
        "unbalanced");
    EXPECT_DEATH(
        {
            JsonWriter w;
            w.BeginArray();
            (void)w.str();
        },
        "unfinished");
}

TEST(Quantile, LinearBetweenClosestRanksLikeNumpy) {
    const std::vector<double> v = {15, 20, 35, 40, 50};  // given unsorted below
    const std::vector<double> shuffled = {40, 15, 50, 35, 20};
    EXPECT_DOUBLE_EQ(Quantile(shuffled, 0.0), 15);
    EXPECT_DOUBLE_EQ(Quantile(shuffled, 1.0), 50);
    EXPECT_DOUBLE_EQ(Quantile(shuffled, 0.5), 35);
    // numpy.quantile([15, 20, 35, 40, 50], [0.4, 0.9, 0.99]) = 29, 46, 49.6
    EXPECT_DOUBLE_EQ(Quantile(v, 0.4), 29);
    EXPECT_DOUBLE_EQ(Quantile(v, 0.9), 46);
    EXPECT_NEAR(Quantile(v, 0.99), 49.6, 1e-12);
    // numpy.quantile(range(1, 101), 0.99) = 99.01 (nearest rank would say 99)
    std::vector<double> hundred;
    for (int i = 1; i <= 100; ++i) {
        hundred.push_back(i);
    }
    EXPECT_NEAR(Quantile(hundred, 0.99), 99.01, 1e-9);
}

TEST(Quantile, OneSampleAndEmpty) {
    EXPECT_EQ(Quantile({7}, 0.0), 7);
    EXPECT_EQ(Quantile({7}, 0.99), 7);
    EXPECT_EQ(Quantile({}, 0.5), 0);
    EXPECT_EQ(Median({}), 0);
    EXPECT_EQ(Mean({}), 0);
}

TEST(Quantile, MedianIsTheMiddleOrTheMeanOfTheTwoMiddle) {
    EXPECT_EQ(Median({3, 1, 2}), 2);
    EXPECT_EQ(Median({4, 1, 3, 2}), 2.5);
    EXPECT_EQ(Mean({1, 2, 6}), 3);
}

TEST(QuantileDeathTest, OutsideZeroOneIsABug) {
    EXPECT_DEATH((void)Quantile({1}, 99), "outside");
}

}  // namespace
}  // namespace kvs
