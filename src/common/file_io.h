#pragma once
// Durable file writes (POSIX: the standard library cannot fsync).

#include "common/status.h"

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <span>
#include <vector>

namespace kvs {

// Writes `parts` one after another to `<path>.tmp`, fsyncs it, renames it to `path` and fsyncs
// the folder, so `path` holds either its old content or all of the new one. On failure the
// temporary file is removed and kInternal names the step and the errno text (ENOSPC: "No space
// left on device").
Status WriteFileAtomic(const std::filesystem::path& path,
                       std::initializer_list<std::span<const std::uint8_t>> parts);

// The whole file. kNotFound when it cannot be opened, kInternal on a read error.
Result<std::vector<std::uint8_t>> ReadWholeFile(const std::filesystem::path& path);

}  // namespace kvs
