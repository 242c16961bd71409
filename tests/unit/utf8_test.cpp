#include "common/utf8.h"

#include <gtest/gtest.h>
#include <string>

namespace kvs {
namespace {

TEST(Utf8, AcceptsWellFormed) {
    EXPECT_TRUE(IsValidUtf8(""));
    EXPECT_TRUE(IsValidUtf8("plain ascii"));
    EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x93\x88"));  // é € 📈
}

TEST(Utf8, RejectsMalformed) {
    EXPECT_FALSE(IsValidUtf8("\xC3"));              // truncated
    EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
    EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate U+D800
    EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // past U+10FFFF
    EXPECT_FALSE(IsValidUtf8("\x80"));              // lone continuation
    EXPECT_FALSE(IsValidUtf8("ok\xE2\x82 then"));   // bad continuation
    EXPECT_FALSE(IsValidUtf8(std::string("a\xFF", 2)));
}

TEST(Utf8, CompletePrefixDropsCutSequence) {
    const std::string euro = "\xE2\x82\xAC";
    EXPECT_EQ(CompleteUtf8Prefix("abc"), 3U);
    EXPECT_EQ(CompleteUtf8Prefix("ab" + euro), 5U);
    EXPECT_EQ(CompleteUtf8Prefix("ab" + euro.substr(0, 2)), 2U);
    EXPECT_EQ(CompleteUtf8Prefix("ab" + euro.substr(0, 1)), 2U);
    EXPECT_EQ(CompleteUtf8Prefix(""), 0U);
}

}  // namespace
}  // namespace kvs
