#pragma once
// Data records: the JSON objects a client appends to a session (`{"records": [...]}` on the
// session's /data route), rendered as text lines the model reads. Bars and trades render exactly
// like the built-in feed (kvs::RenderBar / kvs::RenderTick). Pure functions, safe on any thread.

#include "common/status.h"
#include "http/json_body.h"

#include <cstddef>
#include <string>

namespace kvs {

enum class RecordFormat {
    kAuto,      // per record: kOhlcv, else kTrade, else kKeyValue (see RenderRecords)
    kOhlcv,     // one bar per record
    kTrade,     // one trade per record
    kKeyValue,  // "k1=v1 k2=v2" in the record's member order
    kCustom,    // RecordTemplate::pattern with {field} placeholders
};

struct RecordTemplate {
    RecordFormat format = RecordFormat::kAuto;
    std::string pattern;  // kCustom only: "{symbol} closed at {close}"; "{{" and "}}" are braces
};

// A template from a request: a name ("auto", "ohlcv", "trade", "kv") or an object
// {"format": "<pattern>"} (kCustom). kInvalidArgument for an unknown name (the message lists the
// names), any other JSON type, an object with other members or without a "format" string, and a
// pattern that is longer than 1024 bytes, has no {field} placeholder, an empty "{}", or an
// unbalanced brace ("unbalanced '{' at byte 7 of the record format (write '{{' for a brace)").
Result<RecordTemplate> ParseRecordTemplate(const Json& value);

// The inverse of ParseRecordTemplate: the name, or {"format": pattern} for kCustom.
Json RecordTemplateJson(const RecordTemplate& t);

struct RecordLimits {
    std::size_t max_records = 1000;     // per call
    std::size_t max_line_bytes = 4096;  // per rendered line, without its '\n'
};

// One line per record, each ending in '\n', in array order; all or nothing.
//
// Fields (first alias present wins; a member set to null counts as absent):
//   kOhlcv  symbol|s (string, default ""), time|t|timestamp (required: integer Unix seconds or
//           an ISO-8601 UTC string), open|o, high|h, low|l, close|c (required numbers),
//           volume|v (number, default 0) -> kvs::RenderBar
//   kTrade  symbol|s, time|t|timestamp (required: integer Unix milliseconds or ISO string),
//           price|p, size|q|qty (required numbers), side ("B", "S", "buy", "sell" in any case;
//           default "B") -> kvs::RenderTick
//   kKeyValue "k1=v1 k2=v2 ..." with values as FormatJsonValue writes them
//   kCustom each {field} replaced by FormatJsonValue of the member of that exact name
//   kAuto   kOhlcv when the record has all of open, high, low and close (any alias), else kTrade
//           when it has a price and a size (any alias), else kKeyValue. A record detected as a
//           bar or trade must then be a valid one.
// ISO times: "2023-03-13", "2023-03-13T10:05Z", "2023-03-13T10:05:00.250Z" ('T' or a space;
// 'Z' or "+00:00"; years 1 to 9999); a bar's time drops any fraction of a second. Integer
// times must fall in the same years. Control characters anywhere in a line (newlines, tabs,
// C1 controls, U+2028/U+2029) become spaces: a record is one line.
//
// Errors (all of them say which record):
//   kInvalidArgument "records must be a non-empty array of objects", "records[3] must be an
//                    object", "records[2]: field 'close' must be a number", "records[1]: field
//                    'price' is missing (the format uses it)", "records[0]: the object is empty"
//                    (kKeyValue), or a kCustom pattern that ParseRecordTemplate would reject
//   kTooLarge        "1200 records; at most 1000 per append",
//                    "records[4] renders to 5000 bytes; at most 4096 per line"
// `records` must come from ParseJsonBody (its depth limit bounds the compact JSON of nested
// values, which is written recursively).
Result<std::string> RenderRecords(const Json& records,
                                  const RecordTemplate& t,
                                  const RecordLimits& limits);

}  // namespace kvs
