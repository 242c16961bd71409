#pragma once
// KV_CHECK: a broken invariant (a bug, not bad input) aborts with file, line and a message.

#include <string>

namespace kvs {

[[noreturn]] void CheckFailed(const char* file, int line, const char* cond, const std::string& msg);

}  // namespace kvs

#define KV_CHECK(cond, msg)                                     \
    do {                                                        \
        if (!(cond)) [[unlikely]] {                             \
            ::kvs::CheckFailed(__FILE__, __LINE__, #cond, msg); \
        }                                                       \
    } while (false)

// A point the code must never reach (a bug); aborts like a failed KV_CHECK.
#define KV_FAIL(msg) ::kvs::CheckFailed(__FILE__, __LINE__, "unreachable", msg)
