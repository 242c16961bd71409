#include "common/file_io.h"

#include "common/fd.h"

#include <cerrno>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <string>
#include <unistd.h>

namespace kvs {

namespace fs = std::filesystem;

Status WriteFileAtomic(const fs::path& path,
                       std::initializer_list<std::span<const std::uint8_t>> parts) {
    const fs::path tmp = fs::path(path).concat(".tmp");
    const auto fail = [&](const char* what, int err) {
        ::unlink(tmp.c_str());
        return Internal(std::string("cannot ") + what + " " + tmp.string() + ": " + ErrnoText(err));
    };
    UniqueFd fd = OpenFd(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (!fd.valid()) {
        return Internal("cannot create " + tmp.string() + ": " + ErrnoText(errno));
    }
    int err = 0;
    for (const auto& part : parts) {
        if (err == 0) {
            err = WriteAll(fd.get(), part);
        }
    }
    if (err == 0) {
        err = SyncFd(fd.get());  // a write-back error (ENOSPC) surfaces here
    }
    if (const int closed = fd.Close(); closed != 0 && err == 0) {
        err = closed;
    }
    if (err != 0) {
        return fail("write", err);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        return fail("rename", errno);
    }
    // The rename is durable once the folder's entry is.
    return SyncDir(path.has_parent_path() ? path.parent_path() : fs::path("."));
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
