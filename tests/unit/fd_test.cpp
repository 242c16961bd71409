// common/fd.h and common/xxh64.h: descriptor ownership, whole reads and writes, folder sync, and
// the checksum of the on-disk formats.

#include "common/fd.h"

#include "common/xxh64.h"

#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <gtest/gtest.h>
#include <string>
#include <unistd.h>
#include <vector>

namespace kvs {
namespace {

namespace fs = std::filesystem;

bool IsOpen(int fd) {
    return ::fcntl(fd, F_GETFD) != -1;
}

TEST(UniqueFd, ClosesOnDestructionAndMovesOwnership) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const int read_end = fds[0];
    {
        UniqueFd a(read_end);
        UniqueFd b(fds[1]);
        UniqueFd moved = std::move(a);
        EXPECT_FALSE(a.valid());
        EXPECT_EQ(moved.get(), read_end);
        EXPECT_TRUE(IsOpen(read_end));
        EXPECT_EQ(b.Close(), 0);
        EXPECT_FALSE(b.valid());
        EXPECT_FALSE(IsOpen(fds[1]));
        EXPECT_EQ(b.Close(), 0);  // none left: nothing to do
    }
    EXPECT_FALSE(IsOpen(read_end));
    UniqueFd released(::dup(0));
    const int raw = released.Release();
    EXPECT_FALSE(released.valid());
    EXPECT_TRUE(IsOpen(raw));
    ::close(raw);
}

TEST(WriteAllReadAll, MoveEveryByteThroughAPipe) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    UniqueFd r(fds[0]);
    UniqueFd w(fds[1]);
    const std::vector<std::uint8_t> data = {1, 2, 3, 250, 0, 7};
    ASSERT_EQ(WriteAll(w.get(), data), 0);
    std::vector<std::uint8_t> got(4);
    ASSERT_EQ(ReadAll(r.get(), got), 0);
    EXPECT_EQ(got, std::vector<std::uint8_t>({1, 2, 3, 250}));
    w.Close();
    std::vector<std::uint8_t> rest(3);  // only 2 bytes are left before the end of file
    EXPECT_EQ(ReadAll(r.get(), rest), EIO);
    EXPECT_EQ(WriteAll(-1, data), EBADF);
}

TEST(OpenFdAndSyncDir, ReportFailuresWithErrno) {
    const fs::path dir = fs::temp_directory_path() / ("kvs-fd-test-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    UniqueFd f = OpenFd(dir / "x", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_TRUE(f.valid());
    EXPECT_NE(::fcntl(f.get(), F_GETFD) & FD_CLOEXEC, 0);  // O_CLOEXEC added
    EXPECT_EQ(SyncFd(f.get()), 0);
    EXPECT_TRUE(SyncDir(dir).ok());
    const UniqueFd missing = OpenFd(dir / "nope" / "x", O_RDONLY);
    EXPECT_FALSE(missing.valid());
    EXPECT_EQ(errno, ENOENT);
    const Status st = SyncDir(dir / "nope");
    EXPECT_EQ(st.code(), StatusCode::kInternal);
    EXPECT_NE(st.message().find("No such file or directory"), std::string::npos) << st.message();
    fs::remove_all(dir);
}

TEST(Xxh64, MatchesTheReferenceValues) {
    const auto sum = [](const std::string& s) {
        return Xxh64({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
    };
    EXPECT_EQ(sum(""), 0xEF46DB3751D8E999ULL);
    EXPECT_EQ(sum("abc"), 0x44BC2CF5AD770999ULL);
    EXPECT_EQ(sum("The quick brown fox jumps over the lazy dog"), 0x0B242D361FDA71BCULL);
}

}  // namespace
}  // namespace kvs
