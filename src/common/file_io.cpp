#include "common/file_io.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <string>
#include <unistd.h>

namespace kvs {
namespace {

namespace fs = std::filesystem;

// Calls write until all of `bytes` is written: 0 or errno.
int WriteAll(int fd, std::span<const std::uint8_t> bytes) {
    const std::uint8_t* p = bytes.data();
    std::size_t n = bytes.size();
    while (n > 0) {
        const ssize_t r = ::write(fd, p, std::min<std::size_t>(n, 1U << 30));
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

}  // namespace

Status WriteFileAtomic(const fs::path& path,
                       std::initializer_list<std::span<const std::uint8_t>> parts) {
    const fs::path tmp = fs::path(path).concat(".tmp");
    const auto fail = [&](const char* what, int err) {
        ::unlink(tmp.c_str());
        return Internal(std::string("cannot ") + what + " " + tmp.string() + ": " +
                        std::strerror(err));
    };
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return Internal("cannot create " + tmp.string() + ": " + std::strerror(errno));
    }
    int err = 0;
    for (const auto& part : parts) {
        if (err == 0) {
            err = WriteAll(fd, part);
        }
    }
    if (err == 0 && ::fsync(fd) != 0) {  // a write-back error (ENOSPC) surfaces here
        err = errno;
    }
    if (::close(fd) != 0 && err == 0) {
        err = errno;
    }
    if (err != 0) {
        return fail("write", err);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        return fail("rename", errno);
    }
    // The rename is durable once the folder's entry is.
    const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        return Internal("cannot open " + dir.string() + " to sync it: " + std::strerror(errno));
    }
    const int synced = ::fsync(dfd);
    const int sync_err = errno;
    ::close(dfd);
    if (synced != 0) {
        return Internal("cannot sync " + dir.string() + ": " + std::strerror(sync_err));
    }
    return Status::Ok();
}

Result<std::vector<std::uint8_t>> ReadWholeFile(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return NotFound("cannot read " + path.string());
    }
    std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                    std::istreambuf_iterator<char>());
    if (in.bad()) {
        return Internal("error reading " + path.string());
    }
    return bytes;
}

}  // namespace kvs
