#include "common/status.h"

#include <gtest/gtest.h>

namespace kvs {
namespace {

TEST(Status, OkByDefault) {
    Status s;
    EXPECT_TRUE(s.ok());
    EXPECT_EQ(s.ToString(), "ok");
}

TEST(Status, CarriesCodeAndMessage) {
    Status s = ContextFull("12 tokens of room");
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.code(), StatusCode::kContextFull);
    EXPECT_EQ(s.ToString(), "context_full: 12 tokens of room");
}

Result<int> Half(int x) {
    if (x % 2 != 0) {
        return InvalidArgument("odd");
    }
    return x / 2;
}

Status UseHalf(int x, int* out) {
    auto r = Half(x);
    KV_RETURN_IF_ERROR(r.status());
    *out = *r;
    return Status::Ok();
}

TEST(Result, ValueOrStatus) {
    EXPECT_EQ(*Half(8), 4);
    EXPECT_EQ(Half(3).status().code(), StatusCode::kInvalidArgument);
    int out = 0;
    EXPECT_TRUE(UseHalf(10, &out).ok());
    EXPECT_EQ(out, 5);
    EXPECT_EQ(UseHalf(7, &out).code(), StatusCode::kInvalidArgument);
}

TEST(ResultDeathTest, ValueOfErrorAborts) {
    EXPECT_DEATH((void)Half(3).value(), "value\\(\\) on an error Result");
}

}  // namespace
}  // namespace kvs
