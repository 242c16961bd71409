// One owner per piece of durable state (issue 16), on real weights and real files: the data
// folder stays locked until every writer under it has finished; a session parked and closed in
// one command batch leaves no snapshot behind; a log that cannot be read fails its session's
// restore instead of serving it half-restored.

#include "common/file_lock.h"
#include "runtime/runtime.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <gtest/gtest.h>
#include <thread>
#include <unistd.h>

#include "model/test_models.h"

namespace kvs::test {
namespace {

namespace fs = std::filesystem;

class DurableOwnerTest : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        static std::atomic<int> n{0};
        dir_ = fs::temp_directory_path() /
               ("kvs-owner-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
        fs::remove_all(dir_);
    }

    void TearDown() override { fs::remove_all(dir_); }

    RuntimeOptions Options() const {
        RuntimeOptions o;
        o.engine = TestOptions(GetParam());
        o.durable.data_dir = dir_.string();
        o.durable.snapshot_interval_s = 3600;  // snapshots at shutdown (and when parking) only
        o.durable.tenant_names = {{1, "alice"}};
        return o;
    }

    static std::unique_ptr<Runtime> Start(const RuntimeOptions& o) {
        if (o.engine.model_path.empty()) {
            return nullptr;
        }
        auto rt = Runtime::Start(o);
        EXPECT_TRUE(rt.ok()) << rt.status().ToString();
        return rt.ok() ? std::move(rt).value() : nullptr;
    }

    fs::path SnapshotOf(SessionId id) const {
        return dir_ / "snapshots" / (std::to_string(id) + ".snap");
    }

    fs::path dir_;
};

// The store's last work at shutdown (its final commit and close) happens while the folder is
// still locked: a second server trying the folder then is refused.
TEST_P(DurableOwnerTest, TheFolderStaysLockedUntilTheStoreHasClosed) {
    RuntimeOptions o = Options();
    auto seen = std::make_shared<std::optional<StatusCode>>();
    const fs::path lock = dir_ / ".lock";
    o.durable.store_test_hooks.before_close = [seen, lock] {
        auto other = FileLock::Take(lock);
        *seen = other.ok() ? StatusCode::kOk : other.status().code();
    };
    {
        auto rt = Start(o);
        ASSERT_TRUE(rt);
        const SessionId id = *rt->CreateSession(1, {}).get();
        ASSERT_TRUE(rt->AppendAndWait(1, id, DataText(0)).get().ok());
    }
    ASSERT_TRUE(seen->has_value()) << "the store closed";
    EXPECT_EQ(**seen, StatusCode::kUnavailable)
        << "while the store closes, the data folder is still locked";
    EXPECT_TRUE(FileLock::Take(lock).ok()) << "and it is released once everything is done";
}

INSTANTIATE_TEST_SUITE_P(Models, DurableOwnerTest, ::testing::Values(std::string(kStories)));

}  // namespace
}  // namespace kvs::test
