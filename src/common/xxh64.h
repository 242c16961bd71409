#pragma once
// XXH64 (the reference algorithm, seed 0): the checksum of spill files (session/park_store) and
// KV snapshot files (persist/snapshot). Stored on disk, so it never changes. Little-endian hosts
// only (a static_assert). A pure function: any thread.

#include <cstdint>
#include <span>

namespace kvs {

std::uint64_t Xxh64(std::span<const std::uint8_t> bytes);

}  // namespace kvs
