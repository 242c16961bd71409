// KV snapshot files (persist/snapshot.h): round trip, every kind of damage detected with a clear
// message, incompatible model or KV settings refused, atomic writes, and a brief mutation fuzzer
// over the header parser and decoder.

#include "persist/snapshot.h"

#include <filesystem>
#include <gtest/gtest.h>
#include <random>
#include <unistd.h>

namespace kvs {
namespace {

const SnapshotExpectation kMine{0x1111, 0x2222};

std::vector<std::uint8_t> Sample(std::size_t n_tokens = 5, std::size_t n_state = 300) {
    Tokens tokens;
    for (std::size_t i = 0; i < n_tokens; ++i) {
        tokens.push_back(static_cast<Token>(i * 7919 + 1));
    }
    std::vector<std::uint8_t> state(n_state);
    for (std::size_t i = 0; i < n_state; ++i) {
        state[i] = static_cast<std::uint8_t>(i * 31 + 7);
    }
    return EncodeSnapshot(42, kMine, 17, tokens, state);
}

std::string ErrorOf(const std::vector<std::uint8_t>& bytes,
                    const SnapshotExpectation& expect = kMine) {
    auto s = DecodeSnapshot(bytes, expect);
    return s.ok() ? "" : s.status().message();
}

TEST(Snapshot, RoundTrip) {
    const auto bytes = Sample();
    EXPECT_EQ(bytes.size(), kSnapshotHeaderBytes + 5 * 4 + 300);
    auto s = DecodeSnapshot(bytes, kMine);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(s->header.session, 42U);
    EXPECT_EQ(s->header.log_version, 17U);
    ASSERT_EQ(s->tokens.size(), 5U);
    EXPECT_EQ(s->tokens[3], 3 * 7919 + 1);
    ASSERT_EQ(s->state.size(), 300U);
    EXPECT_EQ(s->state[299], static_cast<std::uint8_t>(299 * 31 + 7));
    // Empty tokens and state are fine too.
    EXPECT_TRUE(DecodeSnapshot(EncodeSnapshot(1, kMine, 0, {}, {}), kMine).ok());
}

TEST(Snapshot, DamageIsDetected) {
    const auto good = Sample();
    auto bytes = good;
    bytes[0] = 'X';
    EXPECT_EQ(ErrorOf(bytes), "not a kvstream snapshot (no KVSSNAP1 magic)");
    bytes = good;
    bytes[8] = 2;  // format version 2: refused before the checksum
    EXPECT_NE(ErrorOf(bytes).find("format version 2"), std::string::npos);
    bytes = good;
    bytes[44] ^= 1;  // log version, covered by the header checksum
    EXPECT_EQ(ErrorOf(bytes), "the header fails its checksum (corrupted)");
    bytes = good;
    bytes[kSnapshotHeaderBytes + 2] ^= 0x40;
    EXPECT_EQ(ErrorOf(bytes), "the tokens fail their checksum (corrupted)");
    bytes = good;
    bytes.back() ^= 1;
    EXPECT_EQ(ErrorOf(bytes), "the sequence state fails its checksum (corrupted)");
    bytes = good;
    bytes.resize(bytes.size() - 1);
    EXPECT_NE(ErrorOf(bytes).find("truncated or padded"), std::string::npos);
    bytes = good;
    bytes.push_back(0);
    EXPECT_NE(ErrorOf(bytes).find("truncated or padded"), std::string::npos);
    bytes.assign(good.begin(), good.begin() + 50);
    EXPECT_NE(ErrorOf(bytes).find("shorter than the 96-byte header"), std::string::npos);
}

TEST(Snapshot, OtherModelOrKvSettingsAreRefused) {
    const auto bytes = Sample();
    EXPECT_EQ(ErrorOf(bytes, {0x9999, kMine.kv_fingerprint}),
              "made with another model (fingerprint differs)");
    EXPECT_NE(ErrorOf(bytes, {kMine.model_fingerprint, 0x9999}).find("other KV settings"),
              std::string::npos);
}

TEST(Snapshot, AtomicWriteReplacesWholeFilesOnly) {
    const auto dir =
        std::filesystem::temp_directory_path() / ("kvs-snap-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const auto path = dir / "1.snap";
    const auto a = Sample(3, 10);
    const auto b = Sample(4, 20);
    ASSERT_TRUE(WriteFileAtomic(path, {a}).ok());
    ASSERT_TRUE(WriteFileAtomic(path, {b}).ok());
    EXPECT_EQ(*ReadWholeFile(path), b);
    EXPECT_FALSE(std::filesystem::exists(dir / "1.snap.tmp"));
    // A folder that does not exist: a clear error, nothing left behind.
    const Status st = WriteFileAtomic(dir / "missing" / "2.snap", {a});
    EXPECT_EQ(st.code(), StatusCode::kInternal);
    EXPECT_NE(st.message().find("No such file or directory"), std::string::npos);
    EXPECT_EQ(ReadWholeFile(dir / "nothing").status().code(), StatusCode::kNotFound);
    std::filesystem::remove_all(dir);
}

// Mutated files never crash the parser and are never accepted with a changed payload.
TEST(Snapshot, FuzzedFilesAreRefusedOrIntact) {
    const auto good = Sample(40, 2000);
    const auto intact = DecodeSnapshot(good, kMine);
    ASSERT_TRUE(intact.ok());
    std::mt19937_64 rng(12345);
    int n_accepted = 0;
    for (int iter = 0; iter < 20000; ++iter) {
        auto bytes = good;
        const int n_edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < n_edits; ++e) {
            const std::size_t at = bytes.empty() ? 0 : rng() % bytes.size();
            switch (rng() % 4) {
                case 0:
                    if (!bytes.empty()) {
                        bytes[at] ^= static_cast<std::uint8_t>(1U << (rng() % 8));
                    }
                    break;
                case 1:
                    bytes.resize(at);
                    break;
                case 2:
                    bytes.insert(bytes.begin() + static_cast<long>(at),
                                 static_cast<std::uint8_t>(rng()));
                    break;
                default:
                    if (at + 8 <= bytes.size()) {  // a plausible-looking huge size
                        for (int i = 0; i < 8; ++i) {
                            bytes[at + static_cast<std::size_t>(i)] = 0xff;
                        }
                    }
            }
        }
        auto header = ParseSnapshotHeader(bytes, bytes.size());
        auto s = DecodeSnapshot(bytes, kMine);
        if (!header.ok()) {
            EXPECT_FALSE(header.status().message().empty());
        }
        if (s.ok()) {  // only an edit that changed nothing can pass
            ++n_accepted;
            EXPECT_EQ(s->tokens, intact->tokens);
            EXPECT_EQ(s->state, intact->state);
        } else {
            EXPECT_FALSE(s.status().message().empty());
        }
    }
    EXPECT_LT(n_accepted, 200) << "almost every mutation must be caught";
}

// Files on disk: WriteSnapshotFile round-trips; ReadSnapshotFile with and without the state
// refuses damaged files (without the state, damage in the state itself is left for the loader).
TEST(Snapshot, FilesWrittenAndReadBackWithOrWithoutTheState) {
    const auto dir =
        std::filesystem::temp_directory_path() / ("kvs-snapfile-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const Tokens tokens = {1, 5, 9, 200, 31};
    const std::vector<std::uint8_t> state(500, 0x5a);
    const auto file = dir / "7.snap";
    ASSERT_TRUE(WriteSnapshotFile(file, 7, kMine, 3, tokens, state).ok());
    for (const bool with_state : {false, true}) {
        auto s = ReadSnapshotFile(file, kMine, with_state);
        ASSERT_TRUE(s.ok()) << s.status().ToString();
        EXPECT_EQ(s->header.session, 7U);
        EXPECT_EQ(s->header.log_version, 3U);
        EXPECT_EQ(s->tokens, tokens);
        EXPECT_EQ(s->state.size(), with_state ? state.size() : 0U);
    }
    EXPECT_NE(ReadSnapshotFile(file, {0x1111, 0x9}, false).status().message().find("KV settings"),
              std::string::npos);
    EXPECT_EQ(ReadSnapshotFile(dir / "none.snap", kMine, false).status().code(),
              StatusCode::kNotFound);

    const auto good = ReadWholeFile(file).value();
    std::mt19937_64 rng(777);
    for (int iter = 0; iter < 300; ++iter) {
        auto bytes = good;
        const std::size_t at = rng() % bytes.size();
        if (rng() % 2 == 0) {
            bytes[at] ^= static_cast<std::uint8_t>(1U << (rng() % 8));
        } else {
            bytes.resize(at);
        }
        ASSERT_TRUE(WriteFileAtomic(file, {bytes}).ok());
        const bool in_state = bytes.size() == good.size() && at >= kSnapshotHeaderBytes + 20;
        auto light = ReadSnapshotFile(file, kMine, false);
        auto whole = ReadSnapshotFile(file, kMine, true);
        EXPECT_FALSE(whole.ok()) << "iteration " << iter;
        EXPECT_EQ(light.ok(), in_state)
            << "iteration " << iter << ": " << light.status().ToString();
        if (light.ok()) {
            EXPECT_EQ(light->tokens, tokens);
        }
    }
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kvs
