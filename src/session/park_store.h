#pragma once
// ParkStore: the saved sequence state of parked sessions (the opaque blobs of
// llama_state_seq_get_data), kept in host memory up to a byte budget and spilled to files past it.
//
// Thread: single-threaded. The engine thread owns the store; no method may be called from
// another thread and none takes a lock.
//
// Placement: Put makes a blob the most recently parked. While host bytes would exceed the budget,
// the least recently parked host blobs are written to `<spill_dir>/<id>.park` (oldest first). A
// blob larger than the whole budget goes straight to disk. Take removes a blob from wherever it is.
//
// Spill file (little-endian, 40-byte header, then the payload):
//   "KVSPARK1" | u32 version (1) | u32 header bytes (40) | u64 session id | u64 payload bytes |
//   u64 checksum (XXH64, seed 0, of the payload)
// written to `<id>.park.tmp`, fsynced (so that a write-back error such as ENOSPC surfaces in Put,
// not as a corrupt read later), then renamed to `<id>.park`. Files do not outlive the store: the
// destructor removes them, and Create removes `*.park`/`*.park.tmp` left by a store that died.
//
// One store per folder: Create holds an flock on `<spill_dir>/.park.lock` and fails when another
// live store (in any process) holds it. Names are only unique within a folder.

#include "common/fd.h"
#include "common/status.h"
#include "session/session.h"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace kvs {

struct ParkStoreOptions {
    std::size_t host_budget_bytes = 1ULL << 30;  // RAM for parked blobs
    std::string spill_dir;  // folder for blobs past the budget; empty: no disk (Put past the budget
                            // fails with kResourceExhausted)
};

struct ParkStats {
    std::size_t n_host = 0;          // blobs in RAM
    std::size_t n_disk = 0;          // blobs in spill files
    std::size_t host_bytes = 0;      // payload bytes in RAM (always <= host_budget_bytes)
    std::size_t disk_bytes = 0;      // payload bytes on disk (headers not counted)
    std::uint64_t n_spills = 0;      // blobs written to disk, spilled or oversized (cumulative)
    std::uint64_t n_disk_reads = 0;  // Takes served from disk, good or bad (cumulative)
};

// XXH64 (seed 0) of `bytes`: the checksum in a spill file's header.
std::uint64_t ParkChecksum(std::span<const std::uint8_t> bytes);

class ParkStore {
public:
    // Errors: kStorage (the path and the errno text) when spill_dir or its lock file cannot be
    // created; kUnavailable when another live ParkStore uses the folder; kInvalidArgument when
    // spill_dir exists and is not a folder. With an empty spill_dir nothing touches the disk.
    static Result<std::unique_ptr<ParkStore>> Create(ParkStoreOptions options);

    // Removes every spill file of the folder, the lock file, and spill_dir when Create made it
    // and it is now empty.
    ~ParkStore();

    ParkStore(const ParkStore&) = delete;
    ParkStore& operator=(const ParkStore&) = delete;

    // Stores `blob` for `id` as the most recently parked, replacing any older blob of `id`.
    // On success `blob` is left empty (taken or freed). On error it is left untouched and the
    // older blob of `id` (if any) is still parked. Other blobs are never lost; some may have moved
    // to disk before an error.
    // Errors: kResourceExhausted when the blob does not fit the budget (after counting out the
    //         older blob of `id`) and there is no spill_dir; the store is unchanged.
    //         kStorage when a spill file cannot be written (message names the session, the file
    //         and errno); the victim that failed stays in RAM, host bytes stay within the budget.
    Status Put(SessionId id, std::vector<std::uint8_t>&& blob);

    // Removes and returns the blob of `id`; a spilled blob is read, verified and its file removed.
    // Errors: kNotFound when `id` is not parked. kStorage when the spill file cannot be opened
    //         or read (the path and errno), kInternal when it is truncated, malformed or fails
    //         its checksum: either way the entry is dropped (the blob is lost, and the message
    //         says so) and the file removed.
    Result<std::vector<std::uint8_t>> Take(SessionId id);

    // Drops the blob of `id` and its spill file; no-op when absent.
    void Erase(SessionId id);

    bool Contains(SessionId id) const { return entries_.contains(id); }

    // False when absent.
    bool IsOnDisk(SessionId id) const;

    ParkStats stats() const { return stats_; }

    // Where `id`'s blob lives while it is on disk (empty path without spill_dir).
    std::filesystem::path SpillPath(SessionId id) const;

private:
    struct Entry {
        std::vector<std::uint8_t> blob;  // empty while on disk
        std::size_t n_bytes = 0;         // payload bytes, in RAM or on disk
        bool on_disk = false;
        std::list<SessionId>::iterator lru;  // position in host_lru_; only while in RAM
    };

    using EntryMap = std::unordered_map<SessionId, Entry>;

    ParkStore(ParkStoreOptions options, UniqueFd lock_fd, bool created_dir);

    Status PutOnDisk(SessionId id, const std::vector<std::uint8_t>& blob);
    Status PutInHost(SessionId id, std::vector<std::uint8_t>& blob);
    // Spills the oldest host blobs other than `keep` until their bytes are <= `limit_bytes`.
    // Writes the spill file of `id` and records `id` as on disk, replacing its entry if any.
    Status WriteToDisk(SessionId id, std::span<const std::uint8_t> bytes);
    Status NoRoom(SessionId id, std::size_t n_bytes, const char* why) const;
    Status SpillOthersUntil(std::size_t limit_bytes, SessionId keep);
    void Account(SessionId id, Entry& entry);  // adds the entry to the stats (and the LRU list)
    void Unaccount(Entry& entry);              // the reverse
    void Drop(EntryMap::iterator it);          // unaccounts and erases it, removing its file

    ParkStoreOptions options_;
    UniqueFd lock_fd_;  // holds the flock on the spill folder; invalid without one
    bool created_dir_ = false;
    EntryMap entries_;
    std::list<SessionId> host_lru_;  // host blobs, least recently parked first
    ParkStats stats_;
};

}  // namespace kvs
