#pragma once
// JSON request bodies: ParseJsonBody checks size, UTF-8, syntax, nesting and object sizes before
// any field is read; the Opt* readers turn one field into a typed value or an error that names
// the field. Pure functions, safe on any thread. Only src/http/ includes nlohmann/json.hpp.

#include "common/status.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvs {

// Objects keep their members in the order the client wrote them (records render in that order).
// A duplicated key keeps its first position and its last value.
using Json = nlohmann::ordered_json;

struct BodyLimits {
    std::size_t max_body_bytes = 1 << 20;
    int max_depth = 32;  // nested objects/arrays; the top-level object is level 1
    // Members of any one object. ordered_json finds keys by linear search, so an object with
    // 100,000 members would take seconds to parse; no request needs more than a few dozen.
    std::size_t max_object_members = 1000;
};

// The body as a JSON object, or:
//   kTooLarge        "the body has N bytes; the limit is M" (checked before anything else)
//   kInvalidArgument "the body is not valid UTF-8"
//                    "malformed JSON at byte N: <reason>" (N: 0-based offset where the parser
//                      stopped, the body's length when it ended early; <reason> at most ~120 bytes)
//                    "malformed JSON: number overflow parsing '1e400'" (no offset known)
//                    "JSON nested deeper than 32 levels"
//                    "a JSON object has more than 1000 members"
//                    "the body must be a JSON object"
// Nesting and member limits are checked while parsing (the parser stops at the first excess),
// and nlohmann's parser is iterative, so no body can exhaust the stack. Never throws
// nlohmann exceptions.
Result<Json> ParseJsonBody(std::string_view body, const BodyLimits& limits);

// The readers below take an object (checked: anything else is a bug) and a field name. A field
// that is absent or null gives std::nullopt. Errors are kInvalidArgument and name the field.

// The member `field` of `obj`, or nullptr when it is absent or null.
const Json* FindField(const Json& obj, const std::string& field);

// "field 'query' must be a string" / "field 'query' is longer than N bytes" /
// "field 'query' contains a NUL character" (a \u0000 escape).
Result<std::optional<std::string>> OptString(const Json& obj,
                                             const char* field,
                                             std::size_t max_bytes);

// An integer in min..max: "field 'max_tokens' must be an integer in 1..4096". Numbers written
// with a fraction or exponent (3.0, 3.5, 1e2) and booleans are not integers.
Result<std::optional<std::int64_t>> OptInt(const Json& obj,
                                           const char* field,
                                           std::int64_t min,
                                           std::int64_t max);

// A finite number (integer or not) in min..max: "field 'temperature' must be a number in 0..2".
// Booleans are not numbers.
Result<std::optional<double>> OptNumber(const Json& obj, const char* field, double min, double max);

// "field 'stream' must be true or false".
Result<std::optional<bool>> OptBool(const Json& obj, const char* field);

// A string (one item) or an array of strings, like OpenAI's `stop`; [] gives an empty vector.
// "field 'stop' must be a string or an array of strings", "field 'stop' has 5 items; at most 4",
// "field 'stop[1]' must be a string", "field 'stop[1]' is longer than 64 bytes", and the NUL
// check of OptString.
Result<std::optional<std::vector<std::string>>> OptStringOrList(const Json& obj,
                                                                const char* field,
                                                                std::size_t max_items,
                                                                std::size_t max_bytes);

// Ok when every member of `obj` is in `allowed` (null members too), else the first stranger:
// "unknown field 'max_token'; allowed: query, max_tokens, stop".
Status RejectUnknownFields(const Json& obj, std::initializer_list<const char*> allowed);

// Text for one JSON value as the model reads it: strings as they are, integers in decimal,
// other numbers in shortest round-trip form (3.0 -> "3", 0.1 -> "0.1", 1e21 -> "1e+21"),
// true/false, null, objects and arrays as compact JSON.
std::string FormatJsonValue(const Json& value);

// The shortest text that reads back as `value` ("3", "0.1", "1e+21", "-0", "inf", "nan").
std::string ShortestNumber(double value);

// Untrusted text quoted in an error message: at most 64 bytes (cut on a code point boundary,
// "..." appended), control characters as spaces.
std::string QuoteForMessage(std::string_view text);

}  // namespace kvs
