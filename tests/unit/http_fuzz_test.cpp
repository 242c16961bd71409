// A brief, seeded mutation fuzzer for everything in src/http/ that reads untrusted bytes. It
// asserts only that nothing throws or crashes and that every error carries a message; the
// sanitizer build (ASan + UBSan) is what turns memory and arithmetic bugs into failures.

#include "common/rng.h"
#include "http/json_body.h"
#include "http/records.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace kvs {
namespace {

// A fixed count, the same on every machine and build (the sanitizer build included): the
// mutants are seeded, so every run tries exactly the same bodies.
constexpr int kIterations = 50'000;

using Rng = SplitMix64;

std::vector<std::string> Seeds() {
    std::string deep = "{\"a\":";
    for (int i = 0; i < 30; ++i) {
        deep += i % 2 == 0 ? "[" : "{\"k\":";
    }
    deep += "1";
    for (int i = 29; i >= 0; --i) {
        deep += i % 2 == 0 ? "]" : "}";
    }
    deep += "}";
    return {
        R"({"name": "btc-desk", "max_context": 4096, "system": "You are a market analyst."})",
        R"({"query": "Is BTC trending up?", "max_tokens": 64, "temperature": 0.7,
            "stop": ["\n\n", "Q:"], "stream": true})",
        R"({"stop": "###", "max_tokens": 4096, "top_k": 40, "top_p": 0.95, "seed": 42})",
        R"({"text": "BTC 2023-03-13T09:35Z c=60012.5\n", "wait": false})",
        R"({"records": [{"symbol": "ETH", "time": 1678699500, "open": 1650.2, "high": 1652,
            "low": 1649.8, "close": 1651.3, "volume": 123.4}], "format": "ohlcv"})",
        R"({"records": [{"s": "BTC", "t": "2023-11-14 22:13:20+00:00", "o": 1, "h": 2,
            "l": 0.5, "c": 1.5}, {"s": "X", "t": -62135596800, "o": 1, "h": 1, "l": 1, "c": 1}]})",
        R"({"records": [{"s": "BTC", "t": 1700000000125, "p": 60012.5, "q": 0.25, "side": "S"},
            {"symbol": "ETH", "timestamp": "2023-11-14T22:13:20.125Z", "price": 3000,
             "qty": 2, "side": "buy"}], "format": "trade"})",
        R"({"records": [{"t": "9999-12-31T23:59:59.999Z", "p": 1e300, "q": -0, "side": "SELL"}]})",
        R"({"records": [{"event": "halt", "symbol": "AAPL", "n": [1, {"c": null}], "ok": true}],
            "format": "kv"})",
        R"({"format": {"format": "{symbol} closed at {close}"},
            "records": [{"symbol": "SPX", "close": 5000.25}]})",
        R"({"format": {"format": "{{literal}} {a} }} {b}"},
            "records": [{"a": "x\ny", "b": [1, {"c": null}]}]})",
        R"({"template": "kv", "records": [{"k": "v"}, {"k2": true}, {"k3": null}, {}]})",
        R"({"query": "caf\u00e9 \ud83d\udcc8 \u0000 \u2028", "stop": "\u0085"})",
        R"({"n": [0, -0, 1e308, -1e-308, 18446744073709551615, -9223372036854775808, 3.0, 1E+2]})",
        R"({"q": "日本語 € 📈", "max_token": 5})",
        " \t\r\n{ \"a\" : [ ] , \"b\" : { } , \"c\" : \"\" } ",
        R"({"records": []})",
        "{}",
        deep,
        R"({"records": [{"t": "2024-02-29T12:00:00.5Z", "o": 1, "h": 1, "l": 1, "c": 1,
            "v": 1e15, "s": "\u0001\u007f"}], "format": "auto"})",
    };
}

// One random change: flip a bit, overwrite, insert, delete, truncate, duplicate or splice.
void Mutate(std::string& s, Rng& rng, const std::vector<std::string>& seeds) {
    constexpr char kInteresting[] = "{}[]\":,\\-+.eE0129tfnu \n\x00\xC3\xA9\xE2\x80\xA8\xFF";
    const auto random_byte = [&] {
        return rng.Below(2) == 0 ? kInteresting[rng.Below(sizeof(kInteresting) - 1)]
                                 : static_cast<char>(rng.Below(256));
    };
    const std::size_t pos = s.empty() ? 0 : rng.Below(s.size());
    switch (rng.Below(7)) {
        case 0:
            if (!s.empty()) {
                s[pos] = static_cast<char>(s[pos] ^ (1 << rng.Below(8)));
            }
            break;
        case 1:
            if (!s.empty()) {
                s[pos] = random_byte();
            }
            break;
        case 2:
            s.insert(s.begin() + static_cast<std::ptrdiff_t>(pos), random_byte());
            break;
        case 3:
            s.erase(pos, 1 + rng.Below(8));
            break;
        case 4:
            s.resize(pos);
            break;
        case 5: {  // duplicate a chunk somewhere else
            const std::string chunk = s.substr(pos, 1 + rng.Below(32));
            s.insert(s.empty() ? 0 : rng.Below(s.size() + 1), chunk);
            break;
        }
        default: {  // splice: our head, another seed's tail
            const std::string& other = seeds[rng.Below(seeds.size())];
            s = s.substr(0, pos) + other.substr(other.empty() ? 0 : rng.Below(other.size()));
            break;
        }
    }
}

struct Counts {
    int parsed = 0;
    int rendered = 0;
};

// Every failed Status must carry a message.
template <typename T>
void CheckResult(const Result<T>& result) {
    if (!result.ok()) {
        EXPECT_FALSE(result.status().message().empty()) << result.status().ToString();
    }
}

void Exercise(const std::string& body, Counts& counts) {
    BodyLimits body_limits;
    body_limits.max_body_bytes = 1 << 16;
    Result<Json> parsed = ParseJsonBody(body, body_limits);
    CheckResult(parsed);
    if (!parsed.ok()) {
        return;
    }
    ++counts.parsed;
    const Json& obj = *parsed;
    std::vector<RecordTemplate> templates = {
        {RecordFormat::kAuto, ""},
        {RecordFormat::kOhlcv, ""},
        {RecordFormat::kTrade, ""},
        {RecordFormat::kKeyValue, ""},
        {RecordFormat::kCustom, "{symbol} closed at {close}"},
        {RecordFormat::kCustom, "{a"},  // invalid: RenderRecords must refuse it cleanly
    };
    const Status unknown = RejectUnknownFields(obj, {"query", "max_tokens", "stop", "records"});
    EXPECT_TRUE(unknown.ok() || !unknown.message().empty());
    for (auto it = obj.begin(); it != obj.end(); ++it) {
        const char* field = it.key().c_str();
        CheckResult(OptString(obj, field, 64));
        CheckResult(OptInt(obj, field, -5, 4096));
        CheckResult(OptNumber(obj, field, 0, 2));
        CheckResult(OptBool(obj, field));
        CheckResult(OptStringOrList(obj, field, 4, 16));
        static_cast<void>(FormatJsonValue(it.value()));
        Result<RecordTemplate> t = ParseRecordTemplate(it.value());
        CheckResult(t);
        if (t.ok()) {
            templates.push_back(*t);
        }
    }
    RecordLimits small;
    small.max_records = 3;
    small.max_line_bytes = 40;
    for (auto it = obj.begin(); it != obj.end(); ++it) {
        for (const RecordTemplate& t : templates) {
            for (const RecordLimits& limits : {RecordLimits{}, small}) {
                Result<std::string> text = RenderRecords(it.value(), t, limits);
                CheckResult(text);
                counts.rendered += text.ok() ? 1 : 0;
            }
        }
    }
}

TEST(HttpFuzz, MutatedBodiesNeverCrashOrThrow) {
    const std::vector<std::string> seeds = Seeds();
    Rng rng(0x6B7673747265616DULL);  // "kvstream"
    Counts counts;
    int iterations = 0;
    std::string body;
    for (; iterations < kIterations; ++iterations) {
        // Mostly fresh mutants of a seed; sometimes keep mutating the last one.
        if (iterations < static_cast<int>(seeds.size())) {
            body = seeds[static_cast<std::size_t>(iterations)];
        } else {
            if (rng.Below(4) != 0 || body.size() > 4096) {
                body = seeds[rng.Below(seeds.size())];
            }
            for (std::size_t n = rng.Below(4) == 0 ? 2 + rng.Below(3) : 1; n > 0; --n) {
                Mutate(body, rng, seeds);
            }
        }
        try {
            Exercise(body, counts);
        } catch (const std::exception& e) {
            FAIL() << "iteration " << iterations << " threw " << e.what() << " on body:\n" << body;
        }
        if (::testing::Test::HasFailure()) {
            FAIL() << "iteration " << iterations << " failed on body:\n" << body;
        }
    }
    // A fuzzer whose mutants never parse or render tests nothing.
    EXPECT_GT(counts.parsed, iterations / 50) << iterations << " iterations";
    EXPECT_GT(counts.rendered, iterations / 100) << iterations << " iterations";
    std::printf("http fuzz: %d iterations, %d parsed, %d renders succeeded\n", iterations,
                counts.parsed, counts.rendered);
}

}  // namespace
}  // namespace kvs
