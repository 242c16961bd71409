#include "persist/snapshot_writer.h"

#include "common/guard.h"
#include "common/thread_role.h"

#include <algorithm>
#include <chrono>
#include <system_error>

namespace kvs {

std::size_t CaptureBytes(const SessionCapture& capture) {
    return capture.state.size() + sizeof(Token) * capture.tokens.size();
}

SnapshotWriter::SnapshotWriter(std::filesystem::path dir,
                               SnapshotExpectation identity,
                               std::size_t budget_bytes,
                               std::function<void(const SnapshotWritten&)> done,
                               std::function<void(std::size_t)> before_write)
    : dir_(std::move(dir)),
      identity_(identity),
      budget_bytes_(budget_bytes),
      done_(std::move(done)),
      before_write_(std::move(before_write)) {
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
        std::erase_if(queue_, [&](const Job& j) {
            const bool same = j.session == capture.id;
            held_bytes_ -= same ? CaptureBytes(j.capture) : 0;
            return same;
        });
        held_bytes_ += CaptureBytes(capture);
        peak_held_bytes_ = std::max(peak_held_bytes_, held_bytes_);
        const SessionId id = capture.id;
        queue_.push_back({id, false, std::move(capture)});
    }
    cv_.notify_one();
}

void SnapshotWriter::Remove(SessionId session) {
    {
        std::lock_guard lock(mu_);
        std::erase_if(queue_, [&](const Job& j) {
            const bool same = j.session == session;
            held_bytes_ -= same ? CaptureBytes(j.capture) : 0;
            return same;
        });
        queue_.push_back({session, true, {}});
    }
    cv_.notify_one();
}

void SnapshotWriter::Flush() {
    std::unique_lock lock(mu_);
    idle_cv_.wait(lock, [&] { return queue_.empty() && !busy_; });
}

std::size_t SnapshotWriter::room() const {
    std::lock_guard lock(mu_);
    return held_bytes_ >= budget_bytes_ ? 0 : budget_bytes_ - held_bytes_;
}

void SnapshotWriter::WaitForRoom(std::size_t n_bytes) {
    std::unique_lock lock(mu_);
    idle_cv_.wait(lock, [&] { return held_bytes_ == 0 || held_bytes_ + n_bytes <= budget_bytes_; });
}

std::size_t SnapshotWriter::peak_held_bytes() const {
    std::lock_guard lock(mu_);
    return peak_held_bytes_;
}

void SnapshotWriter::Loop() {
    SetThreadRole(ThreadRole::kSnapshotWriter);
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
        const std::size_t n_bytes = CaptureBytes(job.capture);
        Run(job);
        job = Job{};  // the state is freed before its room is given back
        {
            std::lock_guard lock(mu_);
            held_bytes_ -= n_bytes;
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
    if (before_write_) {
        before_write_(peak_held_bytes());
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
