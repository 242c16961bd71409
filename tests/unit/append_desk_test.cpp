// AppendDesk: admission of appends off the engine thread (runtime/append_desk.h).

#include "runtime/append_desk.h"

#include <gtest/gtest.h>
#include <set>
#include <thread>
#include <vector>

namespace kvs {
namespace {

DeskSession Reject(int n_ctx, int n_tokens) {
    return {.tenant = 1,
            .on_full = OnFull::kReject,
            .n_ctx = n_ctx,
            .n_prefix_tokens = 2,
            .n_tokens = n_tokens,
            .accepted_version = 0,
            .max_behind_tokens = 0};
}

auto Yes() {
    return [](std::uint64_t, int) { return true; };
}

TEST(AppendDesk, OwnersOnly) {
    AppendDesk desk;
    desk.Add(7, Reject(100, 2));
    EXPECT_EQ(desk.Admit(2, 7, 1, Yes()).status().message(), "unknown session 7");
    EXPECT_EQ(desk.Admit(1, 8, 1, Yes()).status().message(), "unknown session 8");
    EXPECT_EQ(*desk.Admit(1, 7, 1, Yes()), 1U);
    desk.Remove(7);
    EXPECT_EQ(desk.Admit(1, 7, 1, Yes()).status().code(), StatusCode::kNotFound);
}

TEST(AppendDesk, RejectSessionsCountQueuedTokens) {
    AppendDesk desk;
    desk.Add(1, Reject(100, 10));
    int after = 0;
    auto r = desk.Admit(1, 1, 90, [&](std::uint64_t v, int n) {
        EXPECT_EQ(v, 1U);
        after = n;
        return true;
    });
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(after, 100);
    auto full = desk.Admit(1, 1, 1, Yes());
    EXPECT_EQ(full.status().code(), StatusCode::kContextFull);
    EXPECT_NE(full.status().message().find("room for 0 more tokens"), std::string::npos);
    // A revoked append frees its room; its version is not given out again.
    desk.Revoke(1, 1);
    EXPECT_EQ(*desk.Admit(1, 1, 90, Yes()), 2U);
}

TEST(AppendDesk, RollingWindowsCheckOnlyTheWindow) {
    AppendDesk desk;
    DeskSession s = Reject(100, 2);
    s.on_full = OnFull::kRoll;
    desk.Add(1, s);
    for (int i = 0; i < 50; ++i) {
        ASSERT_TRUE(desk.Admit(1, 1, 98, Yes()).ok()) << i;
    }
    EXPECT_EQ(desk.Admit(1, 1, 99, Yes()).status().code(), StatusCode::kContextFull);
}

// Revoking an append of a full rolling window takes back only what it added to the count (the
// window's size is capped), not its whole length.
TEST(AppendDesk, RevokingFromAFullRollingWindowKeepsItsCount) {
    AppendDesk desk;
    DeskSession s = Reject(100, 2);
    s.on_full = OnFull::kRoll;
    desk.Add(1, s);
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(desk.Admit(1, 1, 60, Yes()).ok());  // 62, then 100, 100 (capped)
    }
    desk.Revoke(1, 2);
    desk.Revoke(1, 3);
    int after = 0;
    ASSERT_TRUE(desk.Admit(1, 1, 10,
                           [&](std::uint64_t, int n) {
                               after = n;
                               return true;
                           })
                    .ok());
    EXPECT_EQ(after, 72) << "62 before the revoked appends, plus 10";
}

TEST(AppendDesk, IngestMayFallOnlySoFarBehind) {
    AppendDesk desk;
    DeskSession s = Reject(1000, 0);
    s.max_behind_tokens = 50;
    desk.Add(1, s);
    ASSERT_TRUE(desk.Admit(1, 1, 30, Yes()).ok());
    auto behind = desk.Admit(1, 1, 30, Yes());
    EXPECT_EQ(behind.status().code(), StatusCode::kResourceExhausted);
    EXPECT_NE(behind.status().message().find("30 tokens waiting"), std::string::npos);
    desk.Ingested(1, 1);
    EXPECT_EQ(desk.BehindTokens(1), 0);
    EXPECT_TRUE(desk.Admit(1, 1, 30, Yes()).ok());
    // Nothing behind: one append larger than the limit still goes (else it never could).
    desk.Ingested(1, 99);
    EXPECT_TRUE(desk.Admit(1, 1, 80, Yes()).ok());
    EXPECT_EQ(desk.BehindTokens(1), 80);
    desk.Revoke(1, 3);
    EXPECT_EQ(desk.BehindTokens(1), 0);
}

TEST(AppendDesk, WorkThatCannotBeQueuedUndoesTheAdmission) {
    AppendDesk desk;
    desk.Add(1, Reject(100, 0));
    auto r = desk.Admit(1, 1, 60, [](std::uint64_t, int) { return false; });
    EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
    EXPECT_EQ(desk.BehindTokens(1), 0);
    EXPECT_EQ(*desk.Admit(1, 1, 100, Yes()), 1U) << "neither the version nor the room was used";
}

TEST(AppendDesk, ConcurrentAdmissionsGetEveryVersionOnceInQueueOrder) {
    AppendDesk desk;
    desk.Add(1, Reject(1 << 30, 0));
    std::vector<std::uint64_t> queued;  // in the order `then` ran
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 500; ++i) {
                ASSERT_TRUE(desk.Admit(1, 1, 3,
                                       [&](std::uint64_t v, int) {
                                           queued.push_back(v);  // under the desk's lock
                                           return true;
                                       })
                                .ok());
            }
        });
    }
    for (std::thread& t : threads) {
        t.join();
    }
    ASSERT_EQ(queued.size(), 2000U);
    for (std::size_t i = 0; i < queued.size(); ++i) {
        EXPECT_EQ(queued[i], i + 1);
    }
}

}  // namespace
}  // namespace kvs
