#include "engine/backend.h"

#include <llama.h>

#include <atomic>
#include <cstdio>
#include <mutex>

namespace kvs {
namespace {

std::atomic<int> g_min_level{
    GGML_LOG_LEVEL_WARN};  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)

void LogToStderr(ggml_log_level level, const char* text, void* /*user*/) {
    // CONT lines continue the previous message; keep them only in verbose mode.
    if (level == GGML_LOG_LEVEL_CONT) {
        if (g_min_level.load() <= GGML_LOG_LEVEL_INFO) {
            std::fputs(text, stderr);
        }
        return;
    }
    if (static_cast<int>(level) >= g_min_level.load()) {
        std::fputs(text, stderr);
    }
}

}  // namespace

void InitBackend(LibraryLogLevel level) {
    switch (level) {
        case LibraryLogLevel::kQuiet:
            g_min_level = GGML_LOG_LEVEL_ERROR;
            break;
        case LibraryLogLevel::kWarnings:
            g_min_level = GGML_LOG_LEVEL_WARN;
            break;
        case LibraryLogLevel::kVerbose:
            g_min_level = GGML_LOG_LEVEL_DEBUG;
            break;
    }
    static std::once_flag once;
    std::call_once(once, [] {
        llama_log_set(LogToStderr, nullptr);
        llama_backend_init();
    });
}

}  // namespace kvs
