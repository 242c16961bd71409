#include "session/park_store.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

namespace kvs {
namespace {

namespace fs = std::filesystem;

using Blob = std::vector<std::uint8_t>;

// `n` bytes that differ per `seed`, so mixed-up blobs are caught.
Blob MakeBlob(std::size_t n, std::uint64_t seed) {
    Blob blob(n);
    auto x = static_cast<std::uint32_t>(seed * 2654435761U + 1);
    for (auto& b : blob) {
        x = x * 1664525U + 1013904223U;
        b = static_cast<std::uint8_t>(x >> 24);
    }
    return blob;
}

int CountSpillFiles(const fs::path& dir) {
    int n = 0;
    for (const auto& entry : fs::directory_iterator(dir)) {
        const std::string name = entry.path().filename().string();
        n += name.ends_with(".park") || name.ends_with(".park.tmp") ? 1 : 0;
    }
    return n;
}

class ParkStoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        root_ = fs::temp_directory_path() /
                ("kvs_park_store_test_" + std::to_string(::getpid()) + "_" + info->name());
        fs::remove_all(root_);
        fs::create_directories(root_);
        dir_ = root_ / "spill";
    }

    void TearDown() override {
        store_.reset();
        fs::remove_all(root_);
    }

    // A store over dir_ (or RAM only) with the given budget.
    ParkStore& Open(std::size_t budget_bytes, bool with_disk = true) {
        ParkStoreOptions options;
        options.host_budget_bytes = budget_bytes;
        options.spill_dir = with_disk ? dir_.string() : "";
        auto store = ParkStore::Create(options);
        EXPECT_TRUE(store.ok()) << store.status().ToString();
        store_ = std::move(store).value();
        return *store_;
    }

    fs::path root_;
    fs::path dir_;
    std::unique_ptr<ParkStore> store_;
};

TEST(ParkChecksum, MatchesXxh64ReferenceValues) {
    const auto sum = [](const std::string& s) {
        return ParkChecksum({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
    };
    EXPECT_EQ(sum(""), 0xEF46DB3751D8E999ULL);
    EXPECT_EQ(sum("a"), 0xD24EC4F1A98C6E5BULL);
    EXPECT_EQ(sum("abc"), 0x44BC2CF5AD770999ULL);
    EXPECT_EQ(sum("The quick brown fox jumps over the lazy dog"), 0x0B242D361FDA71BCULL);
    std::string long_input;
    for (int i = 0; i < 1024; ++i) {
        long_input.push_back(static_cast<char>(i % 256));
    }
    EXPECT_EQ(sum(long_input + "xyz"), 0xE146CB31B65BC21AULL);  // libxxhash 0.8.1
}

TEST_F(ParkStoreTest, RoundTripInRam) {
    ParkStore& store = Open(1000);
    Blob blob = MakeBlob(300, 1);
    ASSERT_TRUE(store.Put(7, std::move(blob)).ok());
    EXPECT_TRUE(blob.empty());  // NOLINT(bugprone-use-after-move): Put empties it on success
    EXPECT_TRUE(store.Contains(7));
    EXPECT_FALSE(store.IsOnDisk(7));
    EXPECT_EQ(store.stats().n_host, 1U);
    EXPECT_EQ(store.stats().host_bytes, 300U);
    auto taken = store.Take(7);
    ASSERT_TRUE(taken.ok());
    EXPECT_EQ(*taken, MakeBlob(300, 1));
    EXPECT_FALSE(store.Contains(7));
    EXPECT_EQ(store.stats().host_bytes, 0U);
    EXPECT_EQ(store.Take(7).status().code(), StatusCode::kNotFound);
    EXPECT_EQ(CountSpillFiles(dir_), 0);
}

TEST_F(ParkStoreTest, SpillsLeastRecentlyParkedFirst) {
    ParkStore& store = Open(300);
    for (SessionId id = 1; id <= 3; ++id) {
        ASSERT_TRUE(store.Put(id, MakeBlob(100, id)).ok());
    }
    EXPECT_EQ(store.stats().n_disk, 0U);
    ASSERT_TRUE(store.Put(4, MakeBlob(100, 4)).ok());   // 1 is the oldest
    ASSERT_TRUE(store.Put(2, MakeBlob(100, 22)).ok());  // 2 becomes the newest
    ASSERT_TRUE(store.Put(5, MakeBlob(150, 5)).ok());   // spills 3 and 4, not 2
    EXPECT_TRUE(store.IsOnDisk(1));
    EXPECT_FALSE(store.IsOnDisk(2));
    EXPECT_TRUE(store.IsOnDisk(3));
    EXPECT_TRUE(store.IsOnDisk(4));
    EXPECT_FALSE(store.IsOnDisk(5));
    const ParkStats stats = store.stats();
    EXPECT_EQ(stats.n_host, 2U);
    EXPECT_EQ(stats.n_disk, 3U);
    EXPECT_EQ(stats.host_bytes, 250U);
    EXPECT_EQ(stats.disk_bytes, 300U);
    EXPECT_EQ(stats.n_spills, 3U);
    EXPECT_TRUE(fs::exists(store.SpillPath(1)));
    EXPECT_EQ(CountSpillFiles(dir_), 3);
}

TEST_F(ParkStoreTest, TakeFromDiskReturnsSameBytesAndRemovesFile) {
    ParkStore& store = Open(100);
    ASSERT_TRUE(store.Put(1, MakeBlob(100, 1)).ok());
    ASSERT_TRUE(store.Put(2, MakeBlob(100, 2)).ok());
    ASSERT_TRUE(store.IsOnDisk(1));
    EXPECT_EQ(fs::file_size(store.SpillPath(1)), 140U);  // 40-byte header
    auto taken = store.Take(1);
    ASSERT_TRUE(taken.ok()) << taken.status().ToString();
    EXPECT_EQ(*taken, MakeBlob(100, 1));
    EXPECT_FALSE(fs::exists(store.SpillPath(1)));
    EXPECT_FALSE(store.Contains(1));
    EXPECT_EQ(store.stats().n_disk, 0U);
    EXPECT_EQ(store.stats().disk_bytes, 0U);
    EXPECT_EQ(store.stats().n_disk_reads, 1U);
}

TEST_F(ParkStoreTest, PutReplacesOlderBlobWherever) {
    ParkStore& store = Open(200);
    ASSERT_TRUE(store.Put(1, MakeBlob(150, 1)).ok());
    ASSERT_TRUE(store.Put(1, MakeBlob(200, 11)).ok());  // the older 150 bytes are counted out
    EXPECT_EQ(store.stats().n_disk, 0U);
    EXPECT_EQ(store.stats().host_bytes, 200U);
    ASSERT_TRUE(store.Put(1, MakeBlob(500, 12)).ok());  // RAM -> straight to disk
    EXPECT_TRUE(store.IsOnDisk(1));
    EXPECT_EQ(store.stats().host_bytes, 0U);
    ASSERT_TRUE(store.Put(1, MakeBlob(600, 13)).ok());  // disk -> disk
    EXPECT_EQ(store.stats().disk_bytes, 600U);
    ASSERT_TRUE(store.Put(1, MakeBlob(10, 14)).ok());  // disk -> RAM, file removed
    EXPECT_FALSE(store.IsOnDisk(1));
    EXPECT_FALSE(fs::exists(store.SpillPath(1)));
    const ParkStats stats = store.stats();
    EXPECT_EQ(stats.n_host + stats.n_disk, 1U);
    EXPECT_EQ(stats.host_bytes + stats.disk_bytes, 10U);
    EXPECT_EQ(*store.Take(1), MakeBlob(10, 14));
}

TEST_F(ParkStoreTest, EraseInRamAndOnDisk) {
    ParkStore& store = Open(100);
    ASSERT_TRUE(store.Put(1, MakeBlob(100, 1)).ok());
    ASSERT_TRUE(store.Put(2, MakeBlob(100, 2)).ok());
    ASSERT_TRUE(store.IsOnDisk(1));
    store.Erase(1);
    store.Erase(2);
    store.Erase(3);  // absent: no-op
    EXPECT_FALSE(store.Contains(1));
    EXPECT_FALSE(store.Contains(2));
    EXPECT_EQ(CountSpillFiles(dir_), 0);
    const ParkStats stats = store.stats();
    EXPECT_EQ(stats.n_host + stats.n_disk + stats.host_bytes + stats.disk_bytes, 0U);
}

TEST_F(ParkStoreTest, WithoutSpillDirPastBudgetIsResourceExhaustedAndChangesNothing) {
    ParkStore& store = Open(250, /*with_disk=*/false);
    EXPECT_TRUE(store.SpillPath(1).empty());
    ASSERT_TRUE(store.Put(1, MakeBlob(100, 1)).ok());
    ASSERT_TRUE(store.Put(2, MakeBlob(100, 2)).ok());
    Blob blob = MakeBlob(100, 3);
    const Status status = store.Put(3, std::move(blob));
    EXPECT_EQ(status.code(), StatusCode::kResourceExhausted);
    EXPECT_NE(status.message().find("no spill_dir"), std::string::npos) << status.message();
    EXPECT_EQ(blob, MakeBlob(100, 3));  // NOLINT(bugprone-use-after-move): kept on error
    Blob big = MakeBlob(251, 4);
    EXPECT_EQ(store.Put(4, std::move(big)).code(), StatusCode::kResourceExhausted);
    EXPECT_EQ(big.size(), 251U);  // NOLINT(bugprone-use-after-move)
    EXPECT_FALSE(store.Contains(3));
    EXPECT_EQ(store.stats().host_bytes, 200U);
    ASSERT_TRUE(store.Put(1, MakeBlob(150, 5)).ok());  // replacing frees the older bytes
    EXPECT_EQ(*store.Take(1), MakeBlob(150, 5));
    EXPECT_EQ(*store.Take(2), MakeBlob(100, 2));
}

TEST_F(ParkStoreTest, DamagedSpillFileIsAnErrorAndDropsEntry) {
    ParkStore& store = Open(0);  // every non-empty blob goes to disk
    for (SessionId id = 1; id <= 4; ++id) {
        ASSERT_TRUE(store.Put(id, MakeBlob(1000, id)).ok());
    }
    {
        std::fstream f(store.SpillPath(1), std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(40 + 500);
        f.put(static_cast<char>(MakeBlob(1000, 1)[500] ^ 0x5A));
    }
    fs::resize_file(store.SpillPath(2), 900);
    fs::remove(store.SpillPath(3));
    {
        std::fstream f(store.SpillPath(4), std::ios::in | std::ios::out | std::ios::binary);
        f.put('X');  // the magic
    }
    const std::vector<std::pair<SessionId, std::string>> cases = {
        {1, "fails its checksum"}, {2, "is truncated"}, {3, "cannot open"}, {4, "magic"}};
    for (const auto& [id, what] : cases) {
        const auto taken = store.Take(id);
        ASSERT_FALSE(taken.ok()) << id;
        // A file that cannot be read is a storage error; a damaged one is internal.
        EXPECT_EQ(taken.status().code(), id == 3 ? StatusCode::kStorage : StatusCode::kInternal);
        const std::string& message = taken.status().message();
        EXPECT_NE(message.find(what), std::string::npos) << message;
        EXPECT_NE(message.find("session " + std::to_string(id) + " is lost"), std::string::npos)
            << message;
        EXPECT_FALSE(store.Contains(id));
    }
    EXPECT_EQ(CountSpillFiles(dir_), 0);
    EXPECT_EQ(store.stats().n_disk, 0U);
    EXPECT_EQ(store.stats().disk_bytes, 0U);
}

TEST_F(ParkStoreTest, OversizedBlobGoesStraightToDisk) {
    ParkStore& store = Open(100);
    ASSERT_TRUE(store.Put(1, MakeBlob(60, 1)).ok());
    ASSERT_TRUE(store.Put(2, MakeBlob(101, 2)).ok());
    EXPECT_FALSE(store.IsOnDisk(1));  // not spilled to make room
    EXPECT_TRUE(store.IsOnDisk(2));
    EXPECT_EQ(store.stats().n_spills, 1U);
    EXPECT_EQ(*store.Take(2), MakeBlob(101, 2));
}

TEST_F(ParkStoreTest, FailedSpillKeepsEveryBlob) {
    ParkStore& store = Open(200);
    ASSERT_TRUE(store.Put(1, MakeBlob(100, 1)).ok());
    ASSERT_TRUE(store.Put(2, MakeBlob(100, 2)).ok());
    fs::create_directories(dir_ / "1.park.tmp");  // opening the temp file for writing fails
    Blob blob = MakeBlob(100, 3);
    Status status = store.Put(3, std::move(blob));
    EXPECT_EQ(status.code(), StatusCode::kStorage);
    EXPECT_NE(status.message().find("spilling session 1"), std::string::npos) << status.message();
    EXPECT_EQ(blob, MakeBlob(100, 3));  // NOLINT(bugprone-use-after-move): kept on error
    EXPECT_FALSE(store.IsOnDisk(1));
    EXPECT_FALSE(store.Contains(3));
    fs::create_directories(dir_ / "4.park.tmp");
    Blob big = MakeBlob(300, 4);
    EXPECT_EQ(store.Put(4, std::move(big)).code(), StatusCode::kStorage);
    EXPECT_EQ(big.size(), 300U);  // NOLINT(bugprone-use-after-move)
    fs::remove(dir_ / "1.park.tmp");
    ASSERT_TRUE(store.Put(3, std::move(blob)).ok());
    EXPECT_EQ(*store.Take(1), MakeBlob(100, 1));
    EXPECT_EQ(*store.Take(2), MakeBlob(100, 2));
    EXPECT_EQ(*store.Take(3), MakeBlob(100, 3));
}

TEST_F(ParkStoreTest, DestructorRemovesSpillFilesAndItsFolder) {
    ParkStore& store = Open(10);
    for (SessionId id = 1; id <= 5; ++id) {
        ASSERT_TRUE(store.Put(id, MakeBlob(10, id)).ok());
    }
    EXPECT_EQ(CountSpillFiles(dir_), 4);
    store_.reset();
    EXPECT_FALSE(fs::exists(dir_));  // the store made it
}

TEST_F(ParkStoreTest, OneStorePerFolderAndStaleFilesAreSwept) {
    fs::create_directories(dir_);
    std::ofstream(dir_ / "42.park") << "left by a dead store";
    std::ofstream(dir_ / "notes.txt") << "not ours";
    ParkStore& store = Open(10);
    EXPECT_FALSE(fs::exists(dir_ / "42.park"));
    ParkStoreOptions options;
    options.spill_dir = dir_.string();
    const auto second = ParkStore::Create(options);
    EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
    EXPECT_NE(second.status().message().find("in use"), std::string::npos);
    ASSERT_TRUE(store.Put(1, MakeBlob(20, 1)).ok());
    store_.reset();
    EXPECT_TRUE(fs::exists(dir_ / "notes.txt"));  // not its folder: only its files go
    EXPECT_EQ(CountSpillFiles(dir_), 0);
    ParkStoreOptions file_options;
    file_options.spill_dir = (dir_ / "notes.txt").string();
    EXPECT_EQ(ParkStore::Create(file_options).status().code(), StatusCode::kInvalidArgument);
}

// I/O failures are storage errors naming the path and the errno text; a folder in use is
// unavailable; only a spill_dir that exists and is not a folder is a bad argument.
TEST_F(ParkStoreTest, IoFailuresAreStorageErrorsWithPathAndErrno) {
    std::ofstream(root_ / "plain") << "a file";
    ParkStoreOptions under_file;
    under_file.spill_dir = (root_ / "plain" / "spill").string();
    const auto made = ParkStore::Create(under_file);
    EXPECT_EQ(made.status().code(), StatusCode::kStorage) << made.status().ToString();
    EXPECT_NE(made.status().message().find(under_file.spill_dir), std::string::npos)
        << made.status().ToString();
    EXPECT_NE(made.status().message().find("Not a directory"), std::string::npos)
        << made.status().ToString();

    ParkStore& store = Open(100);
    ParkStoreOptions same;
    same.spill_dir = dir_.string();
    EXPECT_EQ(ParkStore::Create(same).status().code(), StatusCode::kUnavailable);

    fs::create_directories(dir_ / "7.park.tmp");  // opening the temp file for writing fails
    const Status spill = store.Put(7, MakeBlob(300, 7));
    EXPECT_EQ(spill.code(), StatusCode::kStorage) << spill.ToString();
    EXPECT_NE(spill.message().find((dir_ / "7.park").string()), std::string::npos)
        << spill.ToString();
    EXPECT_NE(spill.message().find("Is a directory"), std::string::npos) << spill.ToString();
}

TEST_F(ParkStoreTest, RandomOperationsMatchAMapModel) {
    constexpr std::size_t kBudget = 1000;
    ParkStore& store = Open(kBudget);
    std::map<SessionId, Blob> model;
    std::mt19937 rng(20240611);
    for (int step = 0; step < 500; ++step) {  // each spill fsyncs: keep it short
        const SessionId id = rng() % 16;
        const auto op = rng() % 10;
        if (op < 5) {
            Blob blob = MakeBlob(rng() % 1200, static_cast<std::uint64_t>(step));
            model[id] = blob;
            ASSERT_TRUE(store.Put(id, std::move(blob)).ok()) << "step " << step;
        } else if (op < 8) {
            auto taken = store.Take(id);
            auto it = model.find(id);
            ASSERT_EQ(taken.ok(), it != model.end()) << "step " << step;
            if (it != model.end()) {
                ASSERT_EQ(*taken, it->second) << "step " << step;
                model.erase(it);
            }
        } else {
            store.Erase(id);
            model.erase(id);
        }
        const ParkStats stats = store.stats();
        std::size_t total_bytes = 0;
        for (const auto& [key, blob] : model) {
            total_bytes += blob.size();
        }
        ASSERT_EQ(stats.n_host + stats.n_disk, model.size());
        ASSERT_EQ(stats.host_bytes + stats.disk_bytes, total_bytes);
        ASSERT_LE(stats.host_bytes, kBudget);
        ASSERT_EQ(CountSpillFiles(dir_), static_cast<int>(stats.n_disk));
    }
    for (SessionId id = 0; id < 16; ++id) {
        ASSERT_EQ(store.Contains(id), model.contains(id));
    }
    EXPECT_GT(store.stats().n_spills, 50U);  // the sequence exercised both places
    EXPECT_GT(store.stats().n_disk_reads, 20U);
}

}  // namespace
}  // namespace kvs
