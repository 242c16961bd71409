// The session store (persist/store.h) on real SQLite files: sessions and questions survive a
// reopen, the data log is group-committed (fewer syncs than appends) and read back in order
// exactly once, a failed commit (full disk, duplicate version) acknowledges and writes nothing
// of its batch, and bad paths are clear errors.

#include "persist/store.h"

#include <atomic>
#include <filesystem>
#include <future>
#include <gtest/gtest.h>
#include <thread>
#include <unistd.h>

namespace kvs {
namespace {

class StoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("kvs-store-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
    }

    void TearDown() override { std::filesystem::remove_all(dir_); }

    std::unique_ptr<Store> Open(StoreOptions o = {}) {
        o.path = (dir_ / "sessions.db").string();
        auto s = Store::Open(o);
        EXPECT_TRUE(s.ok()) << s.status().ToString();
        return s.ok() ? std::move(s).value() : nullptr;
    }

    // Appends synchronously; the commit's status.
    static Status AppendNow(Store& s, SessionId id, std::uint64_t v, const std::string& text) {
        std::promise<Status> p;
        s.Append({id, v, text}, [&p](Status st) { p.set_value(st); });
        return p.get_future().get();
    }

    std::filesystem::path dir_;
};

TEST_F(StoreTest, SessionsAndQuestionsSurviveAReopen) {
    {
        auto s = Open();
        ASSERT_TRUE(s);
        ASSERT_TRUE(
            s->PutSession({7, "acme", "Bars:\n", true, 2048, R"({"template":"ohlcv"})", {}}).ok());
        ASSERT_TRUE(s->PutSession({9, "other", "", false, 0, "", {}}).ok());
        ASSERT_TRUE(s->PutFlash(7, {3, "Trend?", 16, 0.5, 0.9, 40, 1234}).ok());
        ASSERT_TRUE(s->PutFlash(7, {4, "Last close?", 8, 0, 1, 0, 0}).ok());
        ASSERT_TRUE(s->DeleteFlash(7, 4).ok());
        ASSERT_TRUE(AppendNow(*s, 9, 1, "gone soon").ok());
        ASSERT_TRUE(s->DeleteSession(9).ok());
    }
    auto s = Open();
    ASSERT_TRUE(s);
    auto sessions = s->LoadSessions();
    ASSERT_TRUE(sessions.ok());
    ASSERT_EQ(sessions->size(), 1U);
    const StoredSession& a = sessions->front();
    EXPECT_EQ(a.id, 7U);
    EXPECT_EQ(a.tenant, "acme");
    EXPECT_EQ(a.prefix, "Bars:\n");
    EXPECT_TRUE(a.roll);
    EXPECT_EQ(a.max_context, 2048);
    EXPECT_EQ(a.settings, R"({"template":"ohlcv"})");
    ASSERT_EQ(a.flash.size(), 1U);
    EXPECT_EQ(a.flash[0].id, 3U);
    EXPECT_EQ(a.flash[0].question, "Trend?");
    EXPECT_EQ(a.flash[0].max_tokens, 16);
    EXPECT_DOUBLE_EQ(a.flash[0].temperature, 0.5);
    EXPECT_EQ(a.flash[0].top_k, 40);
    EXPECT_EQ(a.flash[0].seed, 1234U);
    EXPECT_TRUE(s->LoadLog(9, 0)->empty()) << "a deleted session's log is gone";
    auto highest = s->LoadHighestIds();
    ASSERT_TRUE(highest.ok());
    EXPECT_EQ(highest->session, 9U) << "deleted sessions count: their ids are never reused";
    EXPECT_EQ(highest->flash, 4U);
}

// Many writers: every append acknowledged, committed in fewer transactions than entries, and
// read back per session in version order, exactly once, after a reopen.
TEST_F(StoreTest, GroupCommitKeepsEveryAcknowledgedAppendInOrder) {
    constexpr int kThreads = 8;
    constexpr int kPerThread = 200;
    {
        auto s = Open();
        ASSERT_TRUE(s);
        std::atomic<int> acked{0};
        std::vector<std::thread> writers;
        for (int t = 0; t < kThreads; ++t) {
            writers.emplace_back([&, t] {
                for (int v = 1; v <= kPerThread; ++v) {
                    s->Append({static_cast<SessionId>(t + 1), static_cast<std::uint64_t>(v),
                               "s" + std::to_string(t) + " v" + std::to_string(v)},
                              [&acked](Status st) { acked += st.ok() ? 1 : 0; });
                }
            });
        }
        for (auto& w : writers) {
            w.join();
        }
        s->Flush();
        EXPECT_EQ(acked, kThreads * kPerThread);
        const StoreStats st = s->stats();
        EXPECT_EQ(st.n_entries, static_cast<std::uint64_t>(kThreads * kPerThread));
        EXPECT_LT(st.n_commits, st.n_entries) << "appends must share commits";
        std::printf("group commit: %llu entries in %llu commits\n",
                    static_cast<unsigned long long>(st.n_entries),
                    static_cast<unsigned long long>(st.n_commits));
    }
    auto s = Open();
    ASSERT_TRUE(s);
    for (int t = 0; t < kThreads; ++t) {
        auto log = s->LoadLog(static_cast<SessionId>(t + 1), 0);
        ASSERT_TRUE(log.ok());
        ASSERT_EQ(log->size(), static_cast<std::size_t>(kPerThread));
        for (int v = 1; v <= kPerThread; ++v) {
            EXPECT_EQ((*log)[v - 1].version, static_cast<std::uint64_t>(v));
            EXPECT_EQ((*log)[v - 1].text, "s" + std::to_string(t) + " v" + std::to_string(v));
        }
    }
    EXPECT_EQ(s->LoadLog(1, 150)->size(), 50U) << "only what follows a snapshot's version";
}

// A full disk (a page limit) fails the append with a clear error; what was acknowledged before
// stays, and nothing of the failed batch is written.
TEST_F(StoreTest, AFullDiskFailsAppendsAndKeepsWhatWasAcknowledged) {
    StoreOptions o;
    o.max_pages = 16;  // 16 pages of 4 KiB
    auto s = Open(o);
    ASSERT_TRUE(s);
    std::uint64_t v = 0;
    Status st;
    while (st.ok() && v < 10000) {
        st = AppendNow(*s, 1, ++v, std::string(512, 'x'));
    }
    ASSERT_FALSE(st.ok()) << "the page limit must bite";
    EXPECT_EQ(st.code(), StatusCode::kInternal);
    EXPECT_NE(st.message().find("full"), std::string::npos) << st.message();
    auto log = s->LoadLog(1, 0);
    ASSERT_TRUE(log.ok()) << "reads keep working";
    EXPECT_EQ(log->size(), v - 1) << "every acknowledged append, not the failed one";
    EXPECT_GE(s->stats().n_failed, 1U);
}

// A batch with a bad entry (a version written twice) fails as a whole: no half-written batch.
// The three appends are made one batch for sure: the writer is held inside the commit before
// them until all three are queued.
TEST_F(StoreTest, AFailedBatchWritesNothing) {
    std::atomic<bool> hold{false};
    std::promise<void> entered;
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    StoreOptions o;
    o.test_hooks.before_commit = [&hold, &entered, released] {
        if (hold.exchange(false)) {
            entered.set_value();
            released.wait();
        }
    };
    auto s = Open(o);
    ASSERT_TRUE(s);
    ASSERT_TRUE(AppendNow(*s, 1, 1, "one").ok());
    hold = true;
    std::promise<Status> held_outcome;
    s->Append({2, 1, "holds the writer"}, [&](Status x) { held_outcome.set_value(x); });
    entered.get_future().get();
    std::vector<Status> outcomes(3);
    std::promise<void> all;
    std::atomic<int> left{3};
    const std::vector<LogEntry> batch = {{1, 2, "two"}, {1, 1, "dup"}, {1, 3, "three"}};
    for (std::size_t i = 0; i < batch.size(); ++i) {
        s->Append(batch[i], [&, i](Status x) {
            outcomes[i] = x;
            if (--left == 0) {
                all.set_value();
            }
        });
    }
    release.set_value();
    EXPECT_TRUE(held_outcome.get_future().get().ok());
    all.get_future().get();
    EXPECT_NE(outcomes[1].message().find("UNIQUE"), std::string::npos) << outcomes[1].ToString();
    for (const Status& x : outcomes) {
        EXPECT_FALSE(x.ok()) << "the batch shares one commit: none of it is acknowledged";
    }
    auto log = s->LoadLog(1, 0);
    ASSERT_TRUE(log.ok());
    ASSERT_EQ(log->size(), 1U) << "nothing of the failed batch is written";
    EXPECT_EQ(log->front().text, "one");
    EXPECT_EQ(s->stats().n_failed, 3U);
}

// Ids are never reused, so a session or question stored under an id that is taken is an error,
// never a replacement of the stored row (another tenant's, maybe).
TEST_F(StoreTest, AStoredSessionIsNeverOverwritten) {
    auto s = Open();
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->PutSession({4, "alice", "Alice's notes:\n", false, 0, "", {}}).ok());
    ASSERT_TRUE(s->PutFlash(4, {2, "Alice's question?", 8, 0, 1, 0, 0}).ok());
    const Status again = s->PutSession({4, "bob", "Bob's notes:\n", true, 0, "", {}});
    EXPECT_EQ(again.code(), StatusCode::kInternal) << again.ToString();
    EXPECT_NE(again.message().find("session 4"), std::string::npos) << again.ToString();
    std::promise<Status> queued;
    s->PutSession({4, "bob", "", false, 0, "", {}}, [&](Status x) { queued.set_value(x); });
    EXPECT_FALSE(queued.get_future().get().ok()) << "the queued form refuses it too";
    EXPECT_FALSE(s->PutFlash(4, {2, "Bob's question?", 8, 0, 1, 0, 0}).ok());
    auto sessions = s->LoadSessions();
    ASSERT_TRUE(sessions.ok());
    ASSERT_EQ(sessions->size(), 1U);
    EXPECT_EQ(sessions->front().tenant, "alice");
    EXPECT_EQ(sessions->front().prefix, "Alice's notes:\n");
    ASSERT_EQ(sessions->front().flash.size(), 1U);
    EXPECT_EQ(sessions->front().flash[0].question, "Alice's question?");
}

TEST_F(StoreTest, BadPathsAndPoliciesAreClearErrors) {
    StoreOptions missing;
    missing.path = (dir_ / "missing" / "x.db").string();
    auto bad = Store::Open(missing);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find("cannot open the session store"), std::string::npos);
    EXPECT_EQ(*ParseSyncPolicy("full"), SyncPolicy::kFull);
    EXPECT_EQ(*ParseSyncPolicy("normal"), SyncPolicy::kNormal);
    EXPECT_EQ(*ParseSyncPolicy("off"), SyncPolicy::kOff);
    EXPECT_EQ(ParseSyncPolicy("fast").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kvs
