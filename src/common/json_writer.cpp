#include "common/json_writer.h"

#include "common/check.h"
#include "common/utf8.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace kvs {
namespace {

void AppendEscapedAscii(std::string& out, char c) {
    switch (c) {
        case '"':
            out += "\\\"";
            return;
        case '\\':
            out += "\\\\";
            return;
        case '\b':
            out += "\\b";
            return;
        case '\f':
            out += "\\f";
            return;
        case '\n':
            out += "\\n";
            return;
        case '\r':
            out += "\\r";
            return;
        case '\t':
            out += "\\t";
            return;
        default:
            break;
    }
    if (static_cast<unsigned char>(c) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
        out += buf;
        return;
    }
    out += c;
}

}  // namespace

std::string JsonQuote(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 2);
    out += '"';
    for (std::size_t i = 0; i < text.size();) {
        const auto n =
            static_cast<std::size_t>(Utf8SequenceLength(static_cast<unsigned char>(text[i])));
        if (n == 1) {
            AppendEscapedAscii(out, text[i]);
            i += 1;
        } else if (n > 1 && i + n <= text.size() && IsValidUtf8(text.substr(i, n))) {
            out.append(text.substr(i, n));
            i += n;
        } else {
            out += "\\ufffd";  // not well-formed UTF-8: one replacement character a byte
            i += 1;
        }
    }
    out += '"';
    return out;
}

std::string JsonNumber(double v) {
    if (!std::isfinite(v)) {
        return "null";
    }
    char buf[32];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    KV_CHECK(ec == std::errc(), "to_chars failed");
    return {buf, end};
}

void JsonWriter::NewLine() {
    if (indent_ > 0) {
        out_ += '\n';
        out_.append(levels_.size() * static_cast<std::size_t>(indent_), ' ');
    }
}

void JsonWriter::BeforeValue() {
    KV_CHECK(!done_, "JSON value after the top-level value");
    if (levels_.empty()) {
        return;
    }
    Level& level = levels_.back();
    if (level.object) {
        KV_CHECK(key_pending_, "JSON value in an object without a key");
        key_pending_ = false;
        return;
    }
    out_ += level.empty ? "" : ",";
    level.empty = false;
    NewLine();
}

JsonWriter& JsonWriter::Key(std::string_view key) {
    KV_CHECK(!levels_.empty() && levels_.back().object && !key_pending_,
             "JSON key outside an object or twice");
    Level& level = levels_.back();
    out_ += level.empty ? "" : ",";
    level.empty = false;
    NewLine();
    out_ += JsonQuote(key);
    out_ += indent_ > 0 ? ": " : ":";
    key_pending_ = true;
    return *this;
}

JsonWriter& JsonWriter::BeginObject() {
    BeforeValue();
    out_ += '{';
    levels_.push_back({.object = true});
    return *this;
}

JsonWriter& JsonWriter::BeginArray() {
    BeforeValue();
    out_ += '[';
    levels_.push_back({.object = false});
    return *this;
}

JsonWriter& JsonWriter::Close(bool object) {
    KV_CHECK(!levels_.empty() && levels_.back().object == object && !key_pending_,
             "unbalanced JSON end");
    const bool empty = levels_.back().empty;
    levels_.pop_back();
    if (!empty) {
        NewLine();
    }
    out_ += object ? '}' : ']';
    done_ = levels_.empty();
    return *this;
}

JsonWriter& JsonWriter::EndObject() {
    return Close(true);
}

JsonWriter& JsonWriter::EndArray() {
    return Close(false);
}

JsonWriter& JsonWriter::String(std::string_view v) {
    BeforeValue();
    out_ += JsonQuote(v);
    done_ = levels_.empty();
    return *this;
}

JsonWriter& JsonWriter::Number(double v) {
    BeforeValue();
    out_ += JsonNumber(v);
    done_ = levels_.empty();
    return *this;
}

JsonWriter& JsonWriter::Int(std::int64_t v) {
    BeforeValue();
    out_ += std::to_string(v);
    done_ = levels_.empty();
    return *this;
}

JsonWriter& JsonWriter::Bool(bool v) {
    BeforeValue();
    out_ += v ? "true" : "false";
    done_ = levels_.empty();
    return *this;
}

JsonWriter& JsonWriter::Null() {
    BeforeValue();
    out_ += "null";
    done_ = levels_.empty();
    return *this;
}

JsonWriter& JsonWriter::Numbers(const std::vector<double>& v) {
    BeginArray();
    for (double x : v) {
        Number(x);
    }
    return EndArray();
}

const std::string& JsonWriter::str() const {
    KV_CHECK(done_, "JSON text unfinished");
    return out_;
}

}  // namespace kvs
