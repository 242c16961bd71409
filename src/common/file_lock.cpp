#include "common/file_lock.h"

#include "common/fd.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <utility>

namespace kvs {

FileLock::~FileLock() {
    if (fd_ >= 0) {
        ::close(fd_);  // releases the flock
    }
}

FileLock::FileLock(FileLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
}

Result<FileLock> FileLock::Take(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        return Status(StatusCode::kStorage,
                      "cannot open the lock file " + path.string() + ": " + ErrnoText(errno));
    }
    FileLock lock(fd);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        if (err == EWOULDBLOCK) {
            return Status(StatusCode::kUnavailable, path.string() + " is locked by another holder");
        }
        return Status(StatusCode::kStorage, "cannot lock " + path.string() + ": " + ErrnoText(err));
    }
    return lock;
}

}  // namespace kvs
