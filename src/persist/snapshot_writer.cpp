#include "persist/snapshot_writer.h"

#include "common/guard.h"

#include <algorithm>
#include <chrono>
#include <system_error>

namespace kvs {

SnapshotWriter::SnapshotWriter(std::filesystem::path dir,
                               SnapshotExpectation identity,
                               std::function<void(const SnapshotWritten&)> done)
    : dir_(std::move(dir)), identity_(identity), done_(std::move(done)) {
    thread_ = std::thread(&SnapshotWriter::Loop, this);
}

SnapshotWriter::~SnapshotWriter() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

std::filesystem::path SnapshotWriter::PathOf(SessionId session) const {
    return dir_ / (std::to_string(session) + ".snap");
}

void SnapshotWriter::Write(SessionCapture capture) {
    {
        std::lock_guard lock(mu_);
        std::erase_if(queue_, [&](const Job& j) { return j.session == capture.id; });
        const SessionId id = capture.id;
        queue_.push_back({id, false, std::move(capture)});
    }
    cv_.notify_one();
}

void SnapshotWriter::Remove(SessionId session) {
    {
        std::lock_guard lock(mu_);
        std::erase_if(queue_, [&](const Job& j) { return j.session == session; });
        queue_.push_back({session, true, {}});
    }
    cv_.notify_one();
}

void SnapshotWriter::Flush() {
    std::unique_lock lock(mu_);
    idle_cv_.wait(lock, [&] { return queue_.empty() && !busy_; });
}

void SnapshotWriter::Loop() {
    while (true) {
        Job job;
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) {
                return;
            }
            job = std::move(queue_.front());
            queue_.pop_front();
            busy_ = true;
        }
        Run(job);
        {
            std::lock_guard lock(mu_);
            busy_ = false;
        }
        idle_cv_.notify_all();
    }
}

void SnapshotWriter::Run(Job& job) {
    const auto path = PathOf(job.session);
    if (job.remove) {
        std::error_code ec;
        std::filesystem::remove(path, ec);
        return;
    }
    const auto started = std::chrono::steady_clock::now();
    const SessionCapture& c = job.capture;
    SnapshotWritten w;
    w.session = c.id;
    w.version = c.version;
    w.n_tokens = c.tokens.size();
    w.status = WriteSnapshotFile(path, c.id, identity_, c.version, c.tokens, c.state);
    w.n_bytes = kSnapshotHeaderBytes + 4 * c.tokens.size() + c.state.size();
    w.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
               .count();
    if (done_) {
        Guarded("a snapshot write's callback", [&] { done_(w); });
    }
}

}  // namespace kvs
