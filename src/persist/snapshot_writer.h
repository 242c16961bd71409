#pragma once
// SnapshotWriter: writes sessions' snapshot files on its own thread, so the engine thread only
// copies the state out of the KV cache. Files are `<dir>/<session id>.snap` (persist/snapshot.h
// format), written atomically: a crash leaves the previous snapshot or the new one, never a mix.
//
// Queue: one job per session at most; a newer capture of a session replaces a queued older one.
// Remove drops a queued write and deletes the file. `done` runs on the writer thread after each
// write with its outcome (a failed write leaves the previous file intact).
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

class SnapshotWriter {
public:
    // `dir` must exist.
    SnapshotWriter(std::filesystem::path dir,
                   SnapshotExpectation identity,
                   std::function<void(const SnapshotWritten&)> done);
    ~SnapshotWriter();  // writes what is queued, then stops
    SnapshotWriter(const SnapshotWriter&) = delete;
    SnapshotWriter& operator=(const SnapshotWriter&) = delete;

    void Write(SessionCapture capture);
    void Remove(SessionId session);

    // Blocks until everything queued so far is written or removed.
    void Flush();

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
    std::function<void(const SnapshotWritten&)> done_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::condition_variable idle_cv_;
    std::deque<Job> queue_;  // guarded by mu_
    bool busy_ = false;      // guarded by mu_: a job is running
    bool stopping_ = false;  // guarded by mu_
    std::thread thread_;
};

}  // namespace kvs
