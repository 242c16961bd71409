#include "query/stop_strings.h"

#include <gtest/gtest.h>
#include <string>

namespace kvs {
namespace {

TEST(StopMatcher, FindsEarliestStop) {
    StopMatcher m({"\n", "END"});
    EXPECT_EQ(m.Find("abc", 3), std::string::npos);
    EXPECT_EQ(m.Find("ab\ncd", 5), 2U);
    EXPECT_EQ(m.Find("xxENDyy\n", 8), 2U);
}

TEST(StopMatcher, MatchesAcrossPieces) {
    // Text grows piece by piece; "END" completes only with the last piece.
    StopMatcher m({"END"});
    std::string text = "the E";
    EXPECT_EQ(m.Find(text, 1), std::string::npos);
    text += "N";
    EXPECT_EQ(m.Find(text, 1), std::string::npos);
    text += "D!";
    EXPECT_EQ(m.Find(text, 2), 4U);
}

TEST(StopMatcher, EmptyMatchesNothing) {
    StopMatcher m({});
    EXPECT_TRUE(m.empty());
    EXPECT_EQ(m.Find("anything", 8), std::string::npos);
}

}  // namespace
}  // namespace kvs
