#include "common/fd.h"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <system_error>
#include <unistd.h>

namespace kvs {

int UniqueFd::Close() {
    if (fd_ < 0) {
        return 0;
    }
    // Linux closes the descriptor even when close fails (EINTR included): never retry.
    const int r = ::close(std::exchange(fd_, -1));
    return r == 0 ? 0 : errno;
}

UniqueFd OpenFd(const std::filesystem::path& path, int flags, unsigned mode) {
    while (true) {
        const int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
        if (fd >= 0 || errno != EINTR) {
            return UniqueFd(fd);
        }
    }
}

int WriteAll(int fd, std::span<const std::uint8_t> bytes) {
    const std::uint8_t* p = bytes.data();
    std::size_t n = bytes.size();
    while (n > 0) {
        const ssize_t r = ::write(fd, p, std::min<std::size_t>(n, std::size_t{1} << 30));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return r < 0 ? errno : EIO;
        }
        p += r;
        n -= static_cast<std::size_t>(r);
    }
    return 0;
}

int ReadAll(int fd, std::span<std::uint8_t> bytes) {
    std::uint8_t* p = bytes.data();
    std::size_t n = bytes.size();
    while (n > 0) {
        const ssize_t r = ::read(fd, p, std::min<std::size_t>(n, std::size_t{1} << 30));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return r < 0 ? errno : EIO;
        }
        p += r;
        n -= static_cast<std::size_t>(r);
    }
    return 0;
}

int SyncFd(int fd) {
    while (::fsync(fd) != 0) {
        if (errno != EINTR) {
            return errno;
        }
    }
    return 0;
}

Status SyncDir(const std::filesystem::path& dir) {
    UniqueFd dfd = OpenFd(dir, O_RDONLY | O_DIRECTORY);
    if (!dfd.valid()) {
        return Internal("cannot open " + dir.string() + " to sync it: " + ErrnoText(errno));
    }
    if (const int err = SyncFd(dfd.get()); err != 0) {
        return Internal("cannot sync " + dir.string() + ": " + ErrnoText(err));
    }
    return Status::Ok();
}

std::string ErrnoText(int err) {
    return std::generic_category().message(err);
}

}  // namespace kvs
