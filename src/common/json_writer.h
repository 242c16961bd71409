#pragma once
// The one JSON writer of the benchmark and CLI reports (src/bench, src/cli). The HTTP server
// (src/http) renders its bodies with nlohmann::json instead.
//
//   JsonWriter w;
//   w.BeginObject().Field("model", path).Field("p99_ms", p99).Key("runs").BeginArray();
//   ...
//   w.EndArray().EndObject();
//   out << w.str();
//
// Output is RFC 8259 JSON: strings are escaped (`"`, `\`, every control character below U+0020;
// bytes that are not well-formed UTF-8 become U+FFFD, so the text is always valid UTF-8),
// numbers that are not finite are written as null, doubles in their shortest round-trip form.
// Misuse (a value where a key is due, unbalanced ends, str() on an unfinished text) is a bug and
// fails a KV_CHECK. Not thread-safe: one writer per thread.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kvs {

// `text` as a JSON string literal, quotes included (escaping as above).
std::string JsonQuote(std::string_view text);

// A JSON number: the shortest text that reads back as `v`; "null" when `v` is not finite.
std::string JsonNumber(double v);

class JsonWriter {
public:
    // indent > 0: one element a line, nested by `indent` spaces (like nlohmann's dump(indent));
    // 0: compact, no spaces.
    explicit JsonWriter(int indent = 0) : indent_(indent) {}

    JsonWriter& BeginObject();
    JsonWriter& EndObject();
    JsonWriter& BeginArray();
    JsonWriter& EndArray();
    // The next member's key (inside an object only).
    JsonWriter& Key(std::string_view key);

    JsonWriter& String(std::string_view v);
    JsonWriter& Number(double v);
    JsonWriter& Int(std::int64_t v);
    JsonWriter& Bool(bool v);
    JsonWriter& Null();
    JsonWriter& Numbers(const std::vector<double>& v);  // an array of numbers

    // Key(key) then the value.
    JsonWriter& Field(std::string_view key, std::string_view v) { return Key(key).String(v); }

    JsonWriter& Field(std::string_view key, const char* v) { return Key(key).String(v); }

    JsonWriter& Field(std::string_view key, const std::string& v) { return Key(key).String(v); }

    JsonWriter& Field(std::string_view key, double v) { return Key(key).Number(v); }

    JsonWriter& Field(std::string_view key, int v) { return Key(key).Int(v); }

    JsonWriter& Field(std::string_view key, std::int64_t v) { return Key(key).Int(v); }

    JsonWriter& Field(std::string_view key, bool v) { return Key(key).Bool(v); }

    // The finished text (every object and array closed, one top-level value written).
    const std::string& str() const;

private:
    struct Level {
        bool object = false;
        bool empty = true;
    };

    void BeforeValue();
    void NewLine();
    JsonWriter& Close(bool object);

    int indent_;
    std::string out_;
    std::vector<Level> levels_;
    bool key_pending_ = false;
    bool done_ = false;
};

}  // namespace kvs
