// Reading the session store (persist/store.h) on real SQLite files: a read that meets a damaged
// database is an error, never a short result taken for the whole log.

#include "persist/store.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <gtest/gtest.h>
#include <unistd.h>

namespace kvs {
namespace {

namespace fs = std::filesystem;

class StoreReadTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("kvs-store-read-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }

    void TearDown() override { fs::remove_all(dir_); }

    fs::path Db() const { return dir_ / "kvstream.db"; }

    std::unique_ptr<Store> Open(StoreOptions o = {}) {
        o.path = Db().string();
        auto s = Store::Open(o);
        EXPECT_TRUE(s.ok()) << s.status().ToString();
        return s.ok() ? std::move(s).value() : nullptr;
    }

    // `n` entries of `n_bytes` each for session 1, in one group commit.
    static void Fill(Store& s, int n, std::size_t n_bytes) {
        std::vector<std::future<Status>> done;
        for (int v = 1; v <= n; ++v) {
            auto p = std::make_shared<std::promise<Status>>();
            done.push_back(p->get_future());
            s.Append({1, static_cast<std::uint64_t>(v),
                      std::string(n_bytes, static_cast<char>('a' + v % 26))},
                     [p](Status st) { p->set_value(st); });
        }
        for (auto& f : done) {
            ASSERT_TRUE(f.get().ok());
        }
    }

    fs::path dir_;
};

// Overwrites pages [first, last) of a closed database file with garbage.
void DamagePages(const fs::path& db, int first, int last) {
    std::fstream f(db, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f);
    const std::string junk(4096, '\xff');
    for (int page = first; page < last; ++page) {
        f.seekp(static_cast<std::streamoff>(page) * 4096);
        f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    }
    ASSERT_TRUE(f.good());
}

TEST_F(StoreReadTest, ADamagedLogIsAnErrorNotAShortLog) {
    {
        StoreOptions fast;
        fast.sync = SyncPolicy::kOff;
        auto s = Open(fast);
        ASSERT_TRUE(s);
        Fill(*s, 2000, 900);  // ~450 pages of log
        auto all = s->LoadLog(1, 0);
        ASSERT_TRUE(all.ok());
        ASSERT_EQ(all->size(), 2000U);
    }  // closing checkpoints the WAL into the file
    ASSERT_GT(fs::file_size(Db()), 300U * 4096);
    DamagePages(Db(), 200, 210);
    auto s = Open();
    ASSERT_TRUE(s);
    auto log = s->LoadLog(1, 0);
    EXPECT_FALSE(log.ok()) << "read " << (log.ok() ? log->size() : 0)
                           << " entries of 2000 and called it the whole log";
    if (!log.ok()) {
        EXPECT_NE(log.status().message().find("data log"), std::string::npos)
            << log.status().ToString();
    }
}

// A read does not wait for a commit in progress (its own read-only connection in WAL mode): here
// the writer is held inside a transaction, before its sync, while the log is read.
TEST_F(StoreReadTest, AReadIsNotBlockedByACommitInProgress) {
    auto entered = std::make_shared<std::promise<void>>();
    auto release = std::make_shared<std::promise<void>>();
    std::shared_future<void> released = release->get_future().share();
    auto armed = std::make_shared<std::atomic<bool>>(false);
    StoreOptions o;
    o.test_hooks.before_commit = [entered, released, armed] {
        if (armed->exchange(false)) {
            entered->set_value();
            released.wait();  // the writer holds its transaction (and its lock) here
        }
    };
    auto s = Open(o);
    ASSERT_TRUE(s);
    Fill(*s, 3, 10);
    armed->store(true);
    std::promise<Status> committed;
    s->Append({1, 4, "held"}, [&committed](Status st) { committed.set_value(st); });
    entered->get_future().wait();
    auto read = std::async(std::launch::async, [&s] { return s->LoadLog(1, 0); });
    // Generous: a read takes microseconds; a blocked one would wait for the release forever.
    const bool done = read.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
    release->set_value();
    EXPECT_TRUE(done) << "the read waited for the commit";
    auto log = read.get();
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    EXPECT_EQ(log->size(), 3U) << "the read sees what was committed, not the open transaction";
    EXPECT_TRUE(committed.get_future().get().ok());
    EXPECT_EQ(s->LoadLog(1, 0)->size(), 4U);
}

}  // namespace
}  // namespace kvs
