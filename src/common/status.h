#pragma once
// Expected failures are values: Status (no payload) and Result<T> (a T or a Status).
// Broken invariants are not values: they abort through KV_CHECK (common/check.h).

#include "common/check.h"

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace kvs {

enum class StatusCode : std::uint8_t {
    kOk = 0,
    kInvalidArgument,  // malformed input: empty, invalid UTF-8, bad option value
    kNotFound,         // unknown session or file
    kContextFull,  // the session's context cannot hold the work (the message says how much room is
                   // left)
    kTooLarge,     // input larger than a fixed limit (batch size, body size)
    kResourceExhausted,  // no free slot or memory now; may succeed later
    kAborted,            // work was cancelled
    kUnavailable,        // model or backend cannot run the work
    kInternal,           // a library call failed unexpectedly
    kStorage,            // the durable store could not record the work (disk full, I/O error,
                         // permission denied): nothing was acknowledged
};

// A short stable name for a code: "invalid_argument", "context_full", ...
const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
public:
    Status() = default;

    Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

    static Status Ok() { return {}; }

    bool ok() const { return code_ == StatusCode::kOk; }

    StatusCode code() const { return code_; }

    const std::string& message() const { return message_; }

    // "context_full: session 3 has 12 tokens of room, the query needs 48"
    std::string ToString() const;

private:
    StatusCode code_ = StatusCode::kOk;
    std::string message_;
};

inline Status InvalidArgument(std::string message) {
    return {StatusCode::kInvalidArgument, std::move(message)};
}

inline Status NotFound(std::string message) {
    return {StatusCode::kNotFound, std::move(message)};
}

inline Status ContextFull(std::string message) {
    return {StatusCode::kContextFull, std::move(message)};
}

inline Status TooLarge(std::string message) {
    return {StatusCode::kTooLarge, std::move(message)};
}

inline Status Unavailable(std::string message) {
    return {StatusCode::kUnavailable, std::move(message)};
}

inline Status Internal(std::string message) {
    return {StatusCode::kInternal, std::move(message)};
}

// A value or the Status that explains why there is none. A Result built from a Status must not
// be built from an ok Status.
template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)

    Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
        KV_CHECK(!std::get<Status>(v_).ok(), "a Result cannot hold an ok Status");
    }

    bool ok() const { return std::holds_alternative<T>(v_); }

    const Status& status() const {
        static const Status kOkStatus;
        return ok() ? kOkStatus : std::get<Status>(v_);
    }

    T& value() & {
        KV_CHECK(ok(), "value() on an error Result: " + status().ToString());
        return std::get<T>(v_);
    }

    const T& value() const& {
        KV_CHECK(ok(), "value() on an error Result: " + status().ToString());
        return std::get<T>(v_);
    }

    T&& value() && {
        KV_CHECK(ok(), "value() on an error Result: " + status().ToString());
        return std::get<T>(std::move(v_));
    }

    T* operator->() { return &value(); }

    const T* operator->() const { return &value(); }

    T& operator*() & { return value(); }

    const T& operator*() const& { return value(); }

private:
    std::variant<T, Status> v_;
};

}  // namespace kvs

// Return early from a function returning Status or Result<T> when `expr` (a Status) failed.
#define KV_RETURN_IF_ERROR(expr)           \
    do {                                   \
        ::kvs::Status kv_status_ = (expr); \
        if (!kv_status_.ok()) {            \
            return kv_status_;             \
        }                                  \
    } while (false)
