#pragma once
// SnapshotWriter: writes sessions' snapshot files on its own thread, so the engine thread only
// copies the state out of the KV cache. Files are `<dir>/<session id>.snap` (persist/snapshot.h
// format), written atomically: a crash leaves the previous snapshot or the new one, never a mix.
//
// Queue: one job per session at most; a newer capture of a session replaces a queued older one.
// Remove drops a queued write and deletes the file. `done` runs on the writer thread after each
// write with its outcome (a failed write leaves the previous file intact).
//
// Memory: the captures it holds (queued, and the one being written) count against
// `budget_bytes` (a capture's state plus 4 bytes a token). The writer itself never refuses one:
// callers ask room() before they copy a state out (or WaitForRoom), so that everything copied
// for snapshots stays within the one budget. A capture larger than the whole budget is held
// alone (WaitForRoom returns once nothing else is held).
//
// Thread-safety: every method may be called from any thread.

#include "persist/snapshot.h"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

namespace kvs {

struct SnapshotWritten {
    SessionId session = 0;
    std::uint64_t version = 0;
    Status status;
    std::uint64_t n_bytes = 0;  // the file's size
    std::uint64_t n_tokens = 0;
    double ms = 0;  // encode + write + fsync + rename
};

// The bytes a capture holds in memory: its state and its tokens.
std::size_t CaptureBytes(const SessionCapture& capture);

class SnapshotWriter {
public:
    // `dir` must exist. `before_write` (tests only: a slow or blocked disk) runs on the writer
    // thread before each write, with peak_held_bytes().
    SnapshotWriter(std::filesystem::path dir,
                   SnapshotExpectation identity,
                   std::size_t budget_bytes,
                   std::function<void(const SnapshotWritten&)> done,
                   std::function<void(std::size_t)> before_write = {});
    ~SnapshotWriter();  // writes what is queued, then stops
    SnapshotWriter(const SnapshotWriter&) = delete;
    SnapshotWriter& operator=(const SnapshotWriter&) = delete;

    void Write(SessionCapture capture);
    void Remove(SessionId session);

    // Blocks until everything queued so far is written or removed.
    void Flush();

    // The bytes left in the budget (0 when it is used up).
    std::size_t room() const;
    // Blocks until `n_bytes` fit in the budget, or nothing is held.
    void WaitForRoom(std::size_t n_bytes);

    std::size_t budget_bytes() const { return budget_bytes_; }

    // The most bytes held at once so far.
    std::size_t peak_held_bytes() const;

    std::filesystem::path PathOf(SessionId session) const;

private:
    struct Job {
        SessionId session = 0;
        bool remove = false;
        SessionCapture capture;
    };

    void Loop();
    void Run(Job& job);

    std::filesystem::path dir_;
    SnapshotExpectation identity_;
    std::size_t budget_bytes_;
    std::function<void(const SnapshotWritten&)> done_;
    std::function<void(std::size_t)> before_write_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::condition_variable idle_cv_;  // a job finished: room, or idle
    std::deque<Job> queue_;            // guarded by mu_
    std::size_t held_bytes_ = 0;       // guarded by mu_: the queue's and the running job's
    std::size_t peak_held_bytes_ = 0;  // guarded by mu_
    bool busy_ = false;                // guarded by mu_: a job is running
    bool stopping_ = false;            // guarded by mu_
    std::thread thread_;
};

}  // namespace kvs
