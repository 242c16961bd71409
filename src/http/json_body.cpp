// ParseJsonBody and the typed field readers.

#include "http/json_body.h"

#include "common/utf8.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace kvs {
namespace {

constexpr std::size_t kMaxReasonBytes = 120;  // of nlohmann's message in "malformed JSON"
constexpr std::size_t kMaxQuotedBytes = 64;

// Thrown by the parser callback to stop parsing at the first exceeded limit; caught in
// ParseJsonBody and never seen outside this file.
class LimitExceeded : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The first `max_bytes` of `text`, cut on a code point boundary, with "..." when cut.
std::string Truncate(std::string_view text, std::size_t max_bytes) {
    if (text.size() <= max_bytes) {
        return std::string(text);
    }
    return std::string(text.substr(0, CompleteUtf8Prefix(text.substr(0, max_bytes)))) + "...";
}

// nlohmann's message without its prefix: "[json.exception.parse_error.101] parse error at line
// 1, column 4: syntax error while parsing value - invalid literal; last read: 'tru'" ->
// "invalid literal".
std::string ShortReason(std::string_view what) {
    if (const std::size_t dash = what.find(" - "); dash != std::string_view::npos) {
        what.remove_prefix(dash + 3);
    } else if (const std::size_t bracket = what.find("] "); bracket != std::string_view::npos) {
        what.remove_prefix(bracket + 2);
    }
    if (const std::size_t last = what.find("; last read:"); last != std::string_view::npos) {
        what = what.substr(0, last);  // the offset says where; the token may be long
    }
    return Truncate(what, kMaxReasonBytes);
}

std::string Field(const char* field) {
    return std::string("field '") + field + "'";
}

// A string value that is at most max_bytes long and holds no NUL byte.
Status CheckString(const Json& value, const std::string& label, std::size_t max_bytes) {
    if (!value.is_string()) {
        return InvalidArgument(label + " must be a string");
    }
    const auto& text = value.get_ref<const std::string&>();
    if (text.size() > max_bytes) {
        return InvalidArgument(label + " is longer than " + std::to_string(max_bytes) + " bytes");
    }
    if (text.find('\0') != std::string::npos) {
        return InvalidArgument(label + " contains a NUL character");
    }
    return Status::Ok();
}

}  // namespace

Result<Json> ParseJsonBody(std::string_view body, const BodyLimits& limits) {
    if (body.size() > limits.max_body_bytes) {
        return TooLarge("the body has " + std::to_string(body.size()) + " bytes; the limit is " +
                        std::to_string(limits.max_body_bytes));
    }
    if (!IsValidUtf8(body)) {
        return InvalidArgument("the body is not valid UTF-8");
    }
    // nlohmann passes each event the number of containers open around it, so a container that
    // starts at `depth` is level depth + 1 and a key at `depth` belongs to the object at level
    // `depth`; members[d] counts the members of the object open at level d + 1.
    std::vector<std::size_t> members;
    const auto check_limits = [&](int depth, Json::parse_event_t event, Json& /*parsed*/) {
        if (event == Json::parse_event_t::object_start ||
            event == Json::parse_event_t::array_start) {
            if (depth >= limits.max_depth) {
                throw LimitExceeded("JSON nested deeper than " + std::to_string(limits.max_depth) +
                                    " levels");
            }
            members.resize(static_cast<std::size_t>(depth) + 1);
            members.back() = 0;
        } else if (event == Json::parse_event_t::key && depth >= 1 &&
                   static_cast<std::size_t>(depth) <= members.size()) {
            if (++members[static_cast<std::size_t>(depth) - 1] > limits.max_object_members) {
                throw LimitExceeded("a JSON object has more than " +
                                    std::to_string(limits.max_object_members) + " members");
            }
        }
        return true;
    };
    Json parsed;
    try {
        parsed = Json::parse(body.data(), body.data() + body.size(), check_limits,
                             /*allow_exceptions=*/true, /*ignore_comments=*/false);
    } catch (const LimitExceeded& e) {
        return InvalidArgument(e.what());
    } catch (const Json::parse_error& e) {
        const std::size_t offset = e.byte > 0 ? e.byte - 1 : 0;
        return InvalidArgument("malformed JSON at byte " + std::to_string(offset) + ": " +
                               ShortReason(e.what()));
    } catch (const Json::exception& e) {  // out_of_range 406: a number too large for a double
        return InvalidArgument("malformed JSON: " + ShortReason(e.what()));
    }
    if (!parsed.is_object()) {
        return InvalidArgument("the body must be a JSON object");
    }
    return parsed;
}

const Json* FindField(const Json& obj, const std::string& field) {
    KV_CHECK(obj.is_object(), "FindField on a JSON " + std::string(obj.type_name()));
    const auto it = obj.find(field);
    if (it == obj.end() || it->is_null()) {
        return nullptr;
    }
    return &*it;
}

Result<std::optional<std::string>> OptString(const Json& obj,
                                             const char* field,
                                             std::size_t max_bytes) {
    const Json* value = FindField(obj, field);
    if (value == nullptr) {
        return std::optional<std::string>();
    }
    KV_RETURN_IF_ERROR(CheckString(*value, Field(field), max_bytes));
    return std::optional<std::string>(value->get<std::string>());
}

Result<std::optional<std::int64_t>> OptInt(const Json& obj,
                                           const char* field,
                                           std::int64_t min,
                                           std::int64_t max) {
    const Json* value = FindField(obj, field);
    if (value == nullptr) {
        return std::optional<std::int64_t>();
    }
    // Non-negative integers parse as unsigned; those above int64 are out of any range.
    bool in_range = false;
    std::int64_t n = 0;
    constexpr auto kInt64Max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (value->is_number_unsigned() && value->get<std::uint64_t>() <= kInt64Max) {
        n = static_cast<std::int64_t>(value->get<std::uint64_t>());
        in_range = n >= min && n <= max;
    } else if (value->is_number_integer() && !value->is_number_unsigned()) {
        n = value->get<std::int64_t>();
        in_range = n >= min && n <= max;
    }
    if (!in_range) {
        return InvalidArgument(Field(field) + " must be an integer in " + std::to_string(min) +
                               ".." + std::to_string(max));
    }
    return std::optional<std::int64_t>(n);
}

Result<std::optional<double>> OptNumber(const Json& obj,
                                        const char* field,
                                        double min,
                                        double max) {
    const Json* value = FindField(obj, field);
    if (value == nullptr) {
        return std::optional<double>();
    }
    const double x = value->is_number() ? value->get<double>() : std::nan("");
    if (!std::isfinite(x) || x < min || x > max) {
        return InvalidArgument(Field(field) + " must be a number in " + ShortestNumber(min) + ".." +
                               ShortestNumber(max));
    }
    return std::optional<double>(x);
}

Result<std::optional<bool>> OptBool(const Json& obj, const char* field) {
    const Json* value = FindField(obj, field);
    if (value == nullptr) {
        return std::optional<bool>();
    }
    if (!value->is_boolean()) {
        return InvalidArgument(Field(field) + " must be true or false");
    }
    return std::optional<bool>(value->get<bool>());
}

Result<std::optional<std::vector<std::string>>> OptStringOrList(const Json& obj,
                                                                const char* field,
                                                                std::size_t max_items,
                                                                std::size_t max_bytes) {
    using Items = std::optional<std::vector<std::string>>;
    const Json* value = FindField(obj, field);
    if (value == nullptr) {
        return Items();
    }
    if (value->is_string()) {
        KV_RETURN_IF_ERROR(CheckString(*value, Field(field), max_bytes));
        return Items(std::vector<std::string>{value->get<std::string>()});
    }
    if (!value->is_array()) {
        return InvalidArgument(Field(field) + " must be a string or an array of strings");
    }
    if (value->size() > max_items) {
        return InvalidArgument(Field(field) + " has " + std::to_string(value->size()) +
                               " items; at most " + std::to_string(max_items));
    }
    std::vector<std::string> items;
    items.reserve(value->size());
    for (std::size_t i = 0; i < value->size(); ++i) {
        const std::string label = std::string("field '") + field + "[" + std::to_string(i) + "]'";
        KV_RETURN_IF_ERROR(CheckString((*value)[i], label, max_bytes));
        items.push_back((*value)[i].get<std::string>());
    }
    return Items(std::move(items));
}

Status RejectUnknownFields(const Json& obj, std::initializer_list<const char*> allowed) {
    KV_CHECK(obj.is_object(), "RejectUnknownFields on a JSON " + std::string(obj.type_name()));
    for (auto it = obj.begin(); it != obj.end(); ++it) {
        const bool known = std::any_of(allowed.begin(), allowed.end(),
                                       [&](const char* name) { return it.key() == name; });
        if (known) {
            continue;
        }
        std::string message = "unknown field '" + QuoteForMessage(it.key()) + "'; allowed: ";
        const char* separator = "";
        for (const char* name : allowed) {
            message += separator;
            message += name;
            separator = ", ";
        }
        return InvalidArgument(std::move(message));
    }
    return Status::Ok();
}

std::string FormatJsonValue(const Json& value) {
    switch (value.type()) {
        case Json::value_t::string:
            return value.get<std::string>();
        case Json::value_t::number_integer:
            return std::to_string(value.get<std::int64_t>());
        case Json::value_t::number_unsigned:
            return std::to_string(value.get<std::uint64_t>());
        case Json::value_t::number_float:
            return ShortestNumber(value.get<double>());
        case Json::value_t::boolean:
            return value.get<bool>() ? "true" : "false";
        case Json::value_t::null:
            return "null";
        default:  // object, array, binary, discarded
            return value.dump(-1, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
    }
}

std::string ShortestNumber(double value) {
    char buf[64];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
    KV_CHECK(ec == std::errc(), "to_chars(double) needs at most 24 bytes");
    return std::string(buf, end);
}

std::string QuoteForMessage(std::string_view text) {
    std::string out = Truncate(text, kMaxQuotedBytes);
    std::replace_if(
        out.begin(), out.end(),
        [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == '\x7F'; }, ' ');
    return out;
}

}  // namespace kvs
