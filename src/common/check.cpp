#include "common/check.h"

#include <cstdio>
#include <cstdlib>

namespace kvs {

void CheckFailed(const char* file, int line, const char* cond, const std::string& msg) {
    std::fprintf(stderr, "kvstream: check failed at %s:%d: %s: %s\n", file, line, cond,
                 msg.c_str());
    std::fflush(stderr);
    std::abort();
}

}  // namespace kvs
