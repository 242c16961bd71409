#pragma once
// Session events for subscribers: data ingested, flash answers, parked / restored, closed.
//
// The engine thread publishes; each subscriber reads from its own bounded buffer. Publishing
// never blocks on a subscriber: when a buffer is full its oldest event is dropped and counted,
// and the subscriber's next read returns one kMissed event (how many were dropped) before the
// events that are still buffered, so a slow subscriber learns that it missed something and
// still sees the newest state. Events of one session reach each subscriber in the order they
// happened.
//
// Filtering: a kFlash event whose answer did not change reaches only subscribers that asked for
// every evaluation.
//
// Thread-safety: every method may be called from any thread. Events keep their order when one
// thread publishes (the engine thread does; CloseSession and CloseAll count as publishing).

#include "runtime/engine.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace kvs {

struct SubscribeOptions {
    bool every_evaluation = false;  // kFlash events also when the answer is unchanged
    std::size_t capacity = 256;     // buffered events before the oldest are dropped (>= 1)
};

class Subscription {
public:
    Subscription(SessionId session, SubscribeOptions options);

    // The next event, waiting up to `timeout`; nothing on timeout, or once closed and drained.
    std::optional<EngineEvent> Next(std::chrono::milliseconds timeout);

    // The next event if one is buffered.
    std::optional<EngineEvent> TryNext();

    // Called after events arrive or the subscription closes, on the publishing thread, outside
    // the subscription's and the hub's locks. It must be quick and must not block (an HTTP server
    // posts a wake-up to its event loop here).
    void SetNotifier(std::function<void()> notify);

    // No event will arrive any more (the last one was kClosed, or the hub is gone).
    bool closed() const;

    SessionId session() const { return session_; }

    const SubscribeOptions& options() const { return options_; }

    std::uint64_t n_dropped() const;  // events dropped for a full buffer, in all

    std::size_t n_buffered() const;

private:
    friend class EventHub;

    // Hub side: buffers the event (dropping the oldest when full) and notifies.
    void Push(const EngineEvent& event);

    SessionId session_;
    SubscribeOptions options_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<EngineEvent> buffer_;
    std::uint64_t n_missed_ = 0;  // dropped since the last kMissed was read
    std::uint64_t n_dropped_ = 0;
    bool closed_ = false;  // kClosed was pushed
    std::function<void()> notify_;
};

class EventHub {
public:
    EventHub() = default;
    ~EventHub();  // closes every subscription (closed() turns true)
    EventHub(const EventHub&) = delete;
    EventHub& operator=(const EventHub&) = delete;

    // Events of `session` from now on. The hub keeps only a weak reference: dropping the
    // returned pointer unsubscribes.
    std::shared_ptr<Subscription> Subscribe(SessionId session, const SubscribeOptions& options);

    void Publish(const EngineEvent& event);

    // Sends kClosed to the session's subscribers (or everyone's) and forgets them.
    void CloseSession(SessionId session);
    void CloseAll();

    std::size_t n_subscribers() const;

private:
    // The session's live subscriptions (expired ones pruned); `forget` drops the session's list.
    std::vector<std::shared_ptr<Subscription>> Live(SessionId session, bool forget);

    mutable std::mutex mu_;
    std::map<SessionId, std::vector<std::weak_ptr<Subscription>>> subscribers_;
};

}  // namespace kvs
