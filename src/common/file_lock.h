#pragma once
// FileLock: an exclusive advisory lock (flock) on one file, held for the object's lifetime.
// Declare it before whatever writes under the locked folder, so that it is released last.
//
// Thread-safety: one owner; Take may be called from any thread.

#include "common/status.h"

#include <filesystem>

namespace kvs {

class FileLock {
public:
    FileLock() = default;  // holds nothing
    ~FileLock();
    FileLock(FileLock&& other) noexcept;
    FileLock& operator=(FileLock&& other) noexcept;
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;

    // Creates `path` if needed and locks it without waiting. kUnavailable when another holder
    // (any process, or another FileLock of this one) has it; kStorage with the errno text when
    // the file cannot be made or locked.
    static Result<FileLock> Take(const std::filesystem::path& path);

    bool held() const { return fd_ >= 0; }

private:
    explicit FileLock(int fd) : fd_(fd) {}

    int fd_ = -1;
};

}  // namespace kvs
