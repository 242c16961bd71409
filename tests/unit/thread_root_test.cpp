// Exceptions at thread roots (common/guard.h): a callback that throws on the store's writer
// or reader thread or the snapshot writer's thread is reported, and the thread goes on; before, the
// throw reached the thread's root and ended the process.

#include "common/guard.h"
#include "persist/snapshot_writer.h"
#include "persist/store.h"

#include <filesystem>
#include <future>
#include <gtest/gtest.h>
#include <new>
#include <unistd.h>

namespace kvs {
namespace {

std::filesystem::path TempDir(const char* name) {
    auto dir = std::filesystem::temp_directory_path() /
               ("kvs-root-" + std::string(name) + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

TEST(ThreadRoots, GuardedReportsWhatThrew) {
    EXPECT_TRUE(Guarded("nothing", [] {}));
    EXPECT_FALSE(Guarded("an allocation", [] { throw std::bad_alloc(); }));
    EXPECT_FALSE(Guarded("an int", [] { throw 7; }));
}

TEST(ThreadRoots, AThrowingStoreCallbackLeavesTheWriterRunning) {
    const auto dir = TempDir("store");
    auto store = Store::Open({.path = (dir / "kvstream.db").string()});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    (*store)->Append({1, 1, "first"}, [](Status) { throw std::bad_alloc(); });
    std::promise<Status> second;
    (*store)->Append({1, 2, "second"}, [&second](Status st) { second.set_value(st); });
    EXPECT_TRUE(second.get_future().get().ok());
    auto log = (*store)->LoadLog(1, 0);
    ASSERT_TRUE(log.ok());
    EXPECT_EQ(log->size(), 2U) << "the throwing callback's entry was committed too";
    store->reset();
    std::filesystem::remove_all(dir);
}

// The store's reader thread: a page's reply that throws is reported and the next read is
// answered; before, the throw ended the process.
TEST(ThreadRoots, AThrowingReadReplyLeavesTheReaderRunning) {
    const auto dir = TempDir("reader");
    auto store = Store::Open({.path = (dir / "kvstream.db").string()});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    std::promise<Status> stored;
    (*store)->Append({1, 1, "first"}, [&stored](Status st) { stored.set_value(st); });
    ASSERT_TRUE(stored.get_future().get().ok());
    std::promise<void> threw;
    (*store)->ReadLogPage(1, 0, {}, [&threw](Result<LogPage>) {
        threw.set_value();
        throw std::bad_alloc();
    });
    threw.get_future().get();
    std::promise<Result<LogPage>> second;
    (*store)->ReadLogPage(1, 0, {},
                          [&second](Result<LogPage> page) { second.set_value(std::move(page)); });
    auto page = second.get_future().get();
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    ASSERT_EQ(page->entries.size(), 1U);
    EXPECT_EQ(page->entries[0].text, "first");
    store->reset();
    std::filesystem::remove_all(dir);
}

TEST(ThreadRoots, AThrowingSnapshotCallbackLeavesTheWriterRunning) {
    const auto dir = TempDir("snap");
    int n_done = 0;
    {
        SnapshotWriter writer(dir, {1, 2}, std::size_t{1} << 20,
                              [&n_done](const SnapshotWritten& w) {
                                  n_done += 1;
                                  if (w.session == 1) {
                                      throw std::runtime_error("rendering failed");
                                  }
                              });
        writer.Write({1, 1, {1, 2, 3}, {9, 9}});
        writer.Flush();
        writer.Write({2, 1, {4, 5}, {8}});
        writer.Flush();
        EXPECT_TRUE(std::filesystem::exists(writer.PathOf(2)));
    }
    EXPECT_EQ(n_done, 2);
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kvs
