#pragma once
// POSIX file descriptors (the standard library cannot fsync, flock or read a descriptor): an
// owning handle and the loops every caller needs (short reads and writes, EINTR). Any thread; one
// UniqueFd is used by one thread at a time.

#include "common/status.h"

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <utility>

namespace kvs {

// Owns one file descriptor: closes it on destruction (errors from that close are ignored; call
// Close() where they matter). Movable, not copyable. -1 means none.
class UniqueFd {
public:
    UniqueFd() = default;

    explicit UniqueFd(int fd) : fd_(fd) {}

    ~UniqueFd() { (void)Close(); }

    UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}

    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) {
            (void)Close();
            fd_ = other.Release();
        }
        return *this;
    }

    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;

    bool valid() const { return fd_ >= 0; }

    int get() const { return fd_; }

    // Gives up ownership: returns the descriptor (or -1) and holds none.
    int Release() { return std::exchange(fd_, -1); }

    // Closes the descriptor now: 0, or the errno of close(2) (the descriptor is gone either way).
    // 0 when there is none.
    int Close();

private:
    int fd_ = -1;
};

// open(2) with O_CLOEXEC added, retried on EINTR. An invalid UniqueFd on failure, errno set.
UniqueFd OpenFd(const std::filesystem::path& path, int flags, unsigned mode = 0600);

// Writes all of `bytes` (looping over short writes, retrying EINTR): 0, or errno (EIO when write
// returns 0).
int WriteAll(int fd, std::span<const std::uint8_t> bytes);

// Reads exactly `bytes.size()` bytes: 0, or errno (EIO at an early end of file).
int ReadAll(int fd, std::span<std::uint8_t> bytes);

// fsync(2) retried on EINTR: 0 or errno. A write-back error (ENOSPC, EIO) surfaces here.
int SyncFd(int fd);

// Opens `dir` and fsyncs it, so that entries created or renamed in it are durable. kInternal
// names the folder and the errno text.
Status SyncDir(const std::filesystem::path& dir);

// strerror(err) as a string, thread-safe.
std::string ErrnoText(int err);

}  // namespace kvs
