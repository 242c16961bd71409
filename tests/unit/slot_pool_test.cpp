#include "session/slot_pool.h"

#include <gtest/gtest.h>

namespace kvs {
namespace {

TEST(SlotPool, HandsOutLowestFreeSlot) {
    SlotPool pool(0, 3);
    EXPECT_EQ(pool.n_free(), 3);
    EXPECT_EQ(*pool.Acquire(), 0);
    EXPECT_EQ(*pool.Acquire(), 1);
    EXPECT_EQ(*pool.Acquire(), 2);
    EXPECT_FALSE(pool.Acquire().has_value());
    pool.Release(1);
    pool.Release(0);
    EXPECT_EQ(*pool.Acquire(), 0);
    EXPECT_EQ(*pool.Acquire(), 1);
    EXPECT_FALSE(pool.CanAcquire());
}

TEST(SlotPoolDeathTest, DoubleReleaseAborts) {
    SlotPool pool(0, 2);
    const SeqId s = *pool.Acquire();
    pool.Release(s);
    EXPECT_DEATH(pool.Release(s), "not in use");
}

}  // namespace
}  // namespace kvs
