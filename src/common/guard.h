#pragma once
// The root of a thread is where an exception ends the process. Code there runs callbacks and
// commands (replies that render JSON, allocate, take locks) through Guarded(): whatever they
// throw is reported on stderr with what was running, and the thread goes on with its next job.

#include <cstdio>
#include <exception>

namespace kvs {

// Runs f(); false (and a line on stderr naming `what`) when it threw. Never throws itself.
template <typename F>
bool Guarded(const char* what, F&& f) noexcept {
    try {
        f();
        return true;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "kvstream: %s failed: %s\n", what, e.what());
    } catch (...) {
        std::fprintf(stderr, "kvstream: %s failed: an exception of unknown type\n", what);
    }
    return false;
}

}  // namespace kvs
