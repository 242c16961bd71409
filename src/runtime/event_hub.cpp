#include "runtime/event_hub.h"

#include "common/check.h"

#include <algorithm>

namespace kvs {

const char* EngineEventName(EngineEvent::Kind kind) {
    switch (kind) {
        case EngineEvent::Kind::kIngested:
            return "data_ingested";
        case EngineEvent::Kind::kParked:
            return "parked";
        case EngineEvent::Kind::kRestored:
            return "restored";
        case EngineEvent::Kind::kRolled:
            return "rolled";
        case EngineEvent::Kind::kFlash:
            return "flash_ready";
        case EngineEvent::Kind::kMissed:
            return "missed";
        case EngineEvent::Kind::kClosed:
            return "closed";
    }
    return "unknown";
}

Subscription::Subscription(SessionId session, SubscribeOptions options)
    : session_(session), options_(options) {
    KV_CHECK(options_.capacity >= 1, "a subscription buffers at least one event");
}

std::optional<EngineEvent> Subscription::Next(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return n_missed_ > 0 || !buffer_.empty() || closed_; });
    lock.unlock();
    return TryNext();
}

std::optional<EngineEvent> Subscription::TryNext() {
    std::lock_guard lock(mu_);
    if (n_missed_ > 0) {
        EngineEvent missed{EngineEvent::Kind::kMissed, session_};
        missed.n_missed = std::exchange(n_missed_, 0);
        return missed;
    }
    if (buffer_.empty()) {
        return std::nullopt;
    }
    EngineEvent e = std::move(buffer_.front());
    buffer_.pop_front();
    return e;
}

void Subscription::SetNotifier(std::function<void()> notify) {
    std::lock_guard lock(mu_);
    notify_ = std::move(notify);
}

bool Subscription::closed() const {
    std::lock_guard lock(mu_);
    return closed_;
}

std::uint64_t Subscription::n_dropped() const {
    std::lock_guard lock(mu_);
    return n_dropped_;
}

std::size_t Subscription::n_buffered() const {
    std::lock_guard lock(mu_);
    return buffer_.size();
}

void Subscription::Push(const EngineEvent& event) {
    std::function<void()> notify;
    {
        std::lock_guard lock(mu_);
        if (closed_) {
            return;
        }
        if (event.kind == EngineEvent::Kind::kFlash && !event.flash.changed &&
            !options_.every_evaluation) {
            return;
        }
        if (buffer_.size() >= options_.capacity && event.kind != EngineEvent::Kind::kClosed) {
            buffer_.pop_front();
            ++n_missed_;
            ++n_dropped_;
        }
        buffer_.push_back(event);
        closed_ = event.kind == EngineEvent::Kind::kClosed;
        notify = notify_;
    }
    cv_.notify_all();
    if (notify) {
        notify();
    }
}

std::shared_ptr<Subscription> EventHub::Subscribe(SessionId session,
                                                  const SubscribeOptions& options) {
    auto sub = std::make_shared<Subscription>(session, options);
    std::lock_guard lock(mu_);
    auto& subs = subscribers_[session];
    std::erase_if(subs, [](const std::weak_ptr<Subscription>& w) { return w.expired(); });
    subs.push_back(sub);
    return sub;
}

EventHub::~EventHub() {
    CloseAll();
}

std::vector<std::shared_ptr<Subscription>> EventHub::Live(SessionId session, bool forget) {
    std::vector<std::shared_ptr<Subscription>> live;
    std::lock_guard lock(mu_);
    auto it = subscribers_.find(session);
    if (it == subscribers_.end()) {
        return live;
    }
    std::erase_if(it->second, [&live](const std::weak_ptr<Subscription>& w) {
        auto sub = w.lock();
        if (!sub) {
            return true;  // unsubscribed
        }
        live.push_back(std::move(sub));
        return false;
    });
    if (forget || it->second.empty()) {
        subscribers_.erase(it);
    }
    return live;
}

void EventHub::Publish(const EngineEvent& event) {
    // Pushed outside the hub's lock: a notifier may call back into the hub.
    for (const auto& sub : Live(event.session, false)) {
        sub->Push(event);
    }
}

void EventHub::CloseSession(SessionId session) {
    // Taken and forgotten under one lock: a later Subscribe starts a new list.
    for (const auto& sub : Live(session, true)) {
        sub->Push({EngineEvent::Kind::kClosed, session});
    }
}

void EventHub::CloseAll() {
    std::vector<SessionId> ids;
    {
        std::lock_guard lock(mu_);
        for (const auto& [id, subs] : subscribers_) {
            ids.push_back(id);
        }
    }
    for (SessionId id : ids) {
        CloseSession(id);
    }
}

std::size_t EventHub::n_subscribers() const {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const auto& [id, subs] : subscribers_) {
        n += static_cast<std::size_t>(
            std::count_if(subs.begin(), subs.end(), [](const auto& w) { return !w.expired(); }));
    }
    return n;
}

}  // namespace kvs
