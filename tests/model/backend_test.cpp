// The CPU backend variant this process runs (src/engine/backend.h): the requested one or the best
// this CPU can run, its features named, and ggml's AMX kernels only with the documented opt-in.

#include "engine/backend.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <gtest/gtest.h>
#include <string>

namespace kvs::test {
namespace {

TEST(Backend, RunsTheRequestedOrBestVariantWithoutAmx) {
    const Status st = InitBackend(LibraryLogLevel::kQuiet);
    ASSERT_TRUE(st.ok()) << st.ToString();
    const CpuBackendInfo& b = CpuBackend();
    std::printf("%s; runnable here:", CpuBackendLine().c_str());
    for (const std::string& v : b.runnable) {
        std::printf(" %s", v.c_str());
    }
    std::printf("\n");
    EXPECT_FALSE(b.features.empty()) << "the loaded backend names no features";
    const char* wanted = std::getenv("KVSTREAM_CPU_VARIANT");
    if (wanted != nullptr && *wanted != '\0' && std::string(wanted) != "auto") {
        EXPECT_EQ(b.variant, wanted);
    } else if (b.variant != "built-in") {
        ASSERT_FALSE(b.runnable.empty());
        EXPECT_EQ(b.variant, b.runnable.front()) << "the best variant is the default";
    }
    if (!KVSTREAM_LLAMA_AMX) {
        EXPECT_NE(b.variant, "sapphirerapids");
        EXPECT_EQ(std::count(b.features.begin(), b.features.end(), "AMX_INT8"), 0);
        EXPECT_EQ(std::count(b.extra_buffers.begin(), b.extra_buffers.end(), "AMX"), 0)
            << "ggml's AMX weight buffers without the KVSTREAM_AMX=1 opt-in";
    }
}

}  // namespace
}  // namespace kvs::test
