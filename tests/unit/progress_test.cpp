#include "common/progress.h"

#include <cstdio>
#include <gtest/gtest.h>
#include <string>

namespace kvs {
namespace {

std::string ReadAll(std::FILE* f) {
    std::rewind(f);
    std::string text;
    char buf[256];
    while (std::fgets(buf, sizeof(buf), f) != nullptr) {
        text += buf;
    }
    return text;
}

int CountLines(const std::string& text) {
    int n = 0;
    for (char c : text) {
        n += c == '\n' ? 1 : 0;
    }
    return n;
}

TEST(ProgressBar, PlainOutputPrintsEachTenthOnce) {
    std::FILE* f = std::tmpfile();
    ASSERT_NE(f, nullptr);
    {
        ProgressBar bar("work", 1000, f);
        for (std::size_t i = 1; i <= 1000; ++i) {
            bar.Update(i, "items");
        }
        bar.Finish("done");
    }
    const std::string text = ReadAll(f);
    std::fclose(f);
    // A file is not a terminal: one line per 10% step (0%..100%, at most 11), plus the final one.
    EXPECT_LE(CountLines(text), 12);
    EXPECT_GE(CountLines(text), 10);
    EXPECT_NE(text.find("work"), std::string::npos);
    EXPECT_NE(text.find("100%"), std::string::npos);
    EXPECT_NE(text.find("1000/1000"), std::string::npos);
    EXPECT_EQ(text.find('\r'), std::string::npos);
}

TEST(ProgressBar, ClampsPastTotal) {
    std::FILE* f = std::tmpfile();
    ASSERT_NE(f, nullptr);
    {
        ProgressBar bar("x", 10, f);
        bar.Update(50);
    }
    const std::string text = ReadAll(f);
    std::fclose(f);
    EXPECT_NE(text.find("10/10"), std::string::npos) << text;
    EXPECT_EQ(text.find("50/10"), std::string::npos) << text;
}

}  // namespace
}  // namespace kvs
