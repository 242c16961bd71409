#pragma once
// KV snapshot files: one session's tokens and sequence state (the llama_state_seq_get_data
// blob), with a versioned, checksummed header that says which model and KV settings made it and
// which log position it covers. A snapshot that fails any check is never loaded: the caller
// rebuilds the session from its data log instead.
//
// Layout (little-endian, 96-byte header, then the tokens as int32, then the state bytes):
//   off  0  "KVSSNAP1"               magic
//   off  8  u32 format version (1)   u32 header bytes (96)
//   off 16  u64 session id
//   off 24  u64 model fingerprint    (ModelFingerprint: the GGUF's shape and size)
//   off 32  u64 KV fingerprint       (the context's KV settings: cells, types, flash attention)
//   off 40  u64 log version          (the session version the state covers)
//   off 48  u64 token count          u64 state bytes (off 56)
//   off 64  u64 XXH64 of the tokens  u64 XXH64 of the state (off 72)
//   off 80  u64 reserved (0)
//   off 88  u64 XXH64 of bytes 0..87
//
// Files are written atomically: `<name>.tmp`, fsync, rename, fsync of the folder.
// Standard library and POSIX only; no model needed (fingerprints are plain numbers here).

#include "common/file_io.h"  // WriteFileAtomic, ReadWholeFile: how snapshot files are written
#include "common/status.h"
#include "common/tokens.h"
#include "common/xxh64.h"  // Xxh64: the checksums of the format
#include "session/session.h"

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace kvs {

inline constexpr std::size_t kSnapshotHeaderBytes = 96;
inline constexpr std::uint32_t kSnapshotVersion = 1;

struct SnapshotHeader {
    std::uint64_t session = 0;
    std::uint64_t model_fingerprint = 0;
    std::uint64_t kv_fingerprint = 0;
    std::uint64_t log_version = 0;
    std::uint64_t n_tokens = 0;
    std::uint64_t state_bytes = 0;
    std::uint64_t tokens_checksum = 0;
    std::uint64_t state_checksum = 0;
};

struct Snapshot {
    SnapshotHeader header;
    Tokens tokens;
    std::vector<std::uint8_t> state;
};

// A session's tokens and sequence state at an append boundary: a snapshot's content.
struct SessionCapture {
    SessionId id = 0;
    std::uint64_t version = 0;  // the log version the state covers
    Tokens tokens;
    std::vector<std::uint8_t> state;  // the llama_state_seq_get_data blob
};

// What a loader expects: the loaded model's and context's fingerprints.
struct SnapshotExpectation {
    std::uint64_t model_fingerprint = 0;
    std::uint64_t kv_fingerprint = 0;
};

// The whole file for a snapshot (header checksums filled in).
std::vector<std::uint8_t> EncodeSnapshot(std::uint64_t session,
                                         const SnapshotExpectation& made_by,
                                         std::uint64_t log_version,
                                         std::span<const Token> tokens,
                                         std::span<const std::uint8_t> state);

// Writes a snapshot file atomically (WriteFileAtomic) without copying the state. kInternal with
// the step and errno text on failure; the previous file, if any, is then intact.
Status WriteSnapshotFile(const std::filesystem::path& path,
                         std::uint64_t session,
                         const SnapshotExpectation& made_by,
                         std::uint64_t log_version,
                         std::span<const Token> tokens,
                         std::span<const std::uint8_t> state);

// Parses and checks the first kSnapshotHeaderBytes of `bytes` (magic, version, header size,
// header checksum, sizes that fit `file_bytes`). kInvalidArgument with what is wrong.
Result<SnapshotHeader> ParseSnapshotHeader(std::span<const std::uint8_t> bytes,
                                           std::uint64_t file_bytes);

// The whole file: header, compatibility with `expect` (another model or other KV settings are
// kInvalidArgument naming which), payload checksums. Never trusts a field before checking it.
Result<Snapshot> DecodeSnapshot(std::span<const std::uint8_t> bytes,
                                const SnapshotExpectation& expect);

// Reads and checks a snapshot file: everything DecodeSnapshot checks. With `with_state` false
// only the header and the tokens are read and checked (`state` stays empty): a loader that reads
// the state later checks it then. kNotFound when the file cannot be opened.
Result<Snapshot> ReadSnapshotFile(const std::filesystem::path& path,
                                  const SnapshotExpectation& expect,
                                  bool with_state);

}  // namespace kvs
