#include "runtime/event_hub.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <gtest/gtest.h>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace kvs {
namespace {

using namespace std::chrono_literals;
using Kind = EngineEvent::Kind;

constexpr SessionId kSession = 7;
constexpr SessionId kOtherSession = 8;

EngineEvent Ingested(SessionId session, std::uint64_t version) {
    EngineEvent e{};
    e.kind = Kind::kIngested;
    e.session = session;
    e.version = version;
    return e;
}

EngineEvent FlashEvent(SessionId session, std::uint64_t version, bool changed) {
    EngineEvent e{};
    e.kind = Kind::kFlash;
    e.session = session;
    e.version = version;
    e.ms = 3.5;
    e.flash.id = 42;
    e.flash.question = "Who is winning?";
    e.flash.answer = changed ? "blue" : "red";
    e.flash.confidence = 1.25;
    e.flash.changed = changed;
    return e;
}

EngineEvent Parked(SessionId session, double ms) {
    EngineEvent e{};
    e.kind = Kind::kParked;
    e.session = session;
    e.ms = ms;
    return e;
}

SubscribeOptions Options(std::size_t capacity = 256, bool every_evaluation = false) {
    SubscribeOptions o;
    o.capacity = capacity;
    o.every_evaluation = every_evaluation;
    return o;
}

// Everything buffered, in order.
std::vector<EngineEvent> Drain(Subscription& sub) {
    std::vector<EngineEvent> out;
    while (auto e = sub.TryNext()) {
        out.push_back(std::move(*e));
    }
    return out;
}

TEST(EventHub, EventsOfASessionArriveInOrder) {
    EventHub hub;
    auto sub = hub.Subscribe(kSession, Options());
    EXPECT_EQ(sub->session(), kSession);
    EXPECT_EQ(hub.n_subscribers(), 1U);
    hub.Publish(Ingested(kSession, 1));
    hub.Publish(Parked(kSession, 4.5));
    hub.Publish(Ingested(kSession, 2));
    hub.Publish(FlashEvent(kSession, 2, true));
    EXPECT_EQ(sub->n_buffered(), 4U);

    const auto events = Drain(*sub);
    ASSERT_EQ(events.size(), 4U);
    EXPECT_EQ(events[0].kind, Kind::kIngested);
    EXPECT_EQ(events[0].version, 1U);
    EXPECT_EQ(events[1].kind, Kind::kParked);
    EXPECT_DOUBLE_EQ(events[1].ms, 4.5);
    EXPECT_EQ(events[2].kind, Kind::kIngested);
    EXPECT_EQ(events[2].version, 2U);
    EXPECT_EQ(events[3].kind, Kind::kFlash);
    EXPECT_EQ(events[3].version, 2U);
    EXPECT_EQ(events[3].flash.id, 42U);
    EXPECT_EQ(events[3].flash.question, "Who is winning?");
    EXPECT_EQ(events[3].flash.answer, "blue");
    EXPECT_DOUBLE_EQ(events[3].flash.confidence, 1.25);
    EXPECT_TRUE(events[3].flash.changed);
    for (const auto& e : events) {
        EXPECT_EQ(e.session, kSession);
    }
    EXPECT_EQ(sub->n_buffered(), 0U);
    EXPECT_FALSE(sub->TryNext().has_value());
    EXPECT_EQ(sub->n_dropped(), 0U);
    EXPECT_FALSE(sub->closed());
}

TEST(EventHub, OtherSessionsEventsAreNotDelivered) {
    EventHub hub;
    auto sub = hub.Subscribe(kSession, Options());
    auto other = hub.Subscribe(kOtherSession, Options());
    EXPECT_EQ(hub.n_subscribers(), 2U);
    hub.Publish(Ingested(kOtherSession, 1));
    hub.Publish(Ingested(kSession, 9));
    hub.Publish(Ingested(99, 1));  // nobody listens

    const auto mine = Drain(*sub);
    ASSERT_EQ(mine.size(), 1U);
    EXPECT_EQ(mine[0].session, kSession);
    EXPECT_EQ(mine[0].version, 9U);
    const auto theirs = Drain(*other);
    ASSERT_EQ(theirs.size(), 1U);
    EXPECT_EQ(theirs[0].session, kOtherSession);
    EXPECT_EQ(theirs[0].version, 1U);
}

TEST(EventHub, OnlyEventsFromNowOn) {
    EventHub hub;
    hub.Publish(Ingested(kSession, 1));
    auto sub = hub.Subscribe(kSession, Options());
    EXPECT_FALSE(sub->TryNext().has_value());
    hub.Publish(Ingested(kSession, 2));
    const auto events = Drain(*sub);
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].version, 2U);
}

TEST(EventHub, EverySubscriberOfASessionGetsEachEvent) {
    EventHub hub;
    auto a = hub.Subscribe(kSession, Options());
    auto b = hub.Subscribe(kSession, Options());
    hub.Publish(Ingested(kSession, 1));
    hub.Publish(Ingested(kSession, 2));
    for (auto* sub : {a.get(), b.get()}) {
        const auto events = Drain(*sub);
        ASSERT_EQ(events.size(), 2U);
        EXPECT_EQ(events[0].version, 1U);
        EXPECT_EQ(events[1].version, 2U);
    }
}

TEST(EventHub, UnchangedFlashOnlyForEveryEvaluation) {
    EventHub hub;
    auto changes = hub.Subscribe(kSession, Options(256, false));
    auto every = hub.Subscribe(kSession, Options(256, true));
    EXPECT_FALSE(changes->options().every_evaluation);
    EXPECT_TRUE(every->options().every_evaluation);

    hub.Publish(FlashEvent(kSession, 1, false));
    hub.Publish(FlashEvent(kSession, 2, true));
    hub.Publish(FlashEvent(kSession, 3, false));
    hub.Publish(Ingested(kSession, 4));

    const auto c = Drain(*changes);
    ASSERT_EQ(c.size(), 2U);
    EXPECT_EQ(c[0].kind, Kind::kFlash);
    EXPECT_EQ(c[0].version, 2U);
    EXPECT_TRUE(c[0].flash.changed);
    EXPECT_EQ(c[1].kind, Kind::kIngested);
    EXPECT_EQ(c[1].version, 4U);

    const auto e = Drain(*every);
    ASSERT_EQ(e.size(), 4U);
    EXPECT_EQ(e[0].version, 1U);
    EXPECT_FALSE(e[0].flash.changed);
    EXPECT_EQ(e[1].version, 2U);
    EXPECT_TRUE(e[1].flash.changed);
    EXPECT_EQ(e[2].version, 3U);
    EXPECT_FALSE(e[2].flash.changed);
    EXPECT_EQ(e[3].kind, Kind::kIngested);
    // Filtered events are not counted as dropped.
    EXPECT_EQ(changes->n_dropped(), 0U);
}

TEST(EventHub, OverflowReportsMissedThenTheNewest) {
    EventHub hub;
    auto sub = hub.Subscribe(kSession, Options(3));
    for (std::uint64_t v = 1; v <= 5; ++v) {
        hub.Publish(Ingested(kSession, v));
    }
    EXPECT_EQ(sub->n_dropped(), 2U);
    EXPECT_EQ(sub->n_buffered(), 3U);

    auto missed = sub->TryNext();
    ASSERT_TRUE(missed.has_value());
    EXPECT_EQ(missed->kind, Kind::kMissed);
    EXPECT_EQ(missed->session, kSession);
    EXPECT_EQ(missed->n_missed, 2U);

    const auto events = Drain(*sub);
    ASSERT_EQ(events.size(), 3U);
    EXPECT_EQ(events[0].kind, Kind::kIngested);
    EXPECT_EQ(events[0].version, 3U);
    EXPECT_EQ(events[1].version, 4U);
    EXPECT_EQ(events[2].version, 5U);
    EXPECT_EQ(sub->n_dropped(), 2U);
}

TEST(EventHub, FurtherOverflowReportsANewMissedCount) {
    EventHub hub;
    auto sub = hub.Subscribe(kSession, Options(3));
    for (std::uint64_t v = 1; v <= 5; ++v) {
        hub.Publish(Ingested(kSession, v));
    }
    auto first = sub->TryNext();
    ASSERT_TRUE(first.has_value());
    ASSERT_EQ(first->kind, Kind::kMissed);
    EXPECT_EQ(first->n_missed, 2U);
    auto three = sub->TryNext();
    ASSERT_TRUE(three.has_value());
    EXPECT_EQ(three->version, 3U);

    // Buffered: 4, 5. Publishing 6, 7, 8 drops 4 and 5.
    for (std::uint64_t v = 6; v <= 8; ++v) {
        hub.Publish(Ingested(kSession, v));
    }
    auto second = sub->TryNext();
    ASSERT_TRUE(second.has_value());
    EXPECT_EQ(second->kind, Kind::kMissed);
    EXPECT_EQ(second->n_missed, 2U);
    const auto events = Drain(*sub);
    ASSERT_EQ(events.size(), 3U);
    EXPECT_EQ(events[0].version, 6U);
    EXPECT_EQ(events[1].version, 7U);
    EXPECT_EQ(events[2].version, 8U);
    EXPECT_EQ(sub->n_dropped(), 4U);
}

TEST(EventHub, MissedCountAccumulatesUntilRead) {
    EventHub hub;
    auto sub = hub.Subscribe(kSession, Options(1));
    for (std::uint64_t v = 1; v <= 10; ++v) {
        hub.Publish(Ingested(kSession, v));
    }
    auto missed = sub->TryNext();
    ASSERT_TRUE(missed.has_value());
    EXPECT_EQ(missed->kind, Kind::kMissed);
    EXPECT_EQ(missed->n_missed, 9U);
    const auto events = Drain(*sub);
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].version, 10U);
    EXPECT_EQ(sub->n_dropped(), 9U);
}

TEST(EventHub, CloseSessionDeliversClosedLast) {
    EventHub hub;
    auto sub = hub.Subscribe(kSession, Options());
    auto other = hub.Subscribe(kOtherSession, Options());
    hub.Publish(Ingested(kSession, 1));
    EXPECT_FALSE(sub->closed());
    hub.CloseSession(kSession);
    EXPECT_TRUE(sub->closed());
    EXPECT_FALSE(other->closed());
    EXPECT_EQ(hub.n_subscribers(), 1U);

    hub.Publish(Ingested(kSession, 2));  // ignored
    const auto events = Drain(*sub);
    ASSERT_EQ(events.size(), 2U);
    EXPECT_EQ(events[0].kind, Kind::kIngested);
    EXPECT_EQ(events[0].version, 1U);
    EXPECT_EQ(events[1].kind, Kind::kClosed);
    EXPECT_EQ(events[1].session, kSession);
    EXPECT_TRUE(sub->closed());
    EXPECT_FALSE(sub->Next(10ms).has_value());

    // The other session is unaffected.
    hub.Publish(Ingested(kOtherSession, 3));
    const auto theirs = Drain(*other);
    ASSERT_EQ(theirs.size(), 1U);
    EXPECT_EQ(theirs[0].version, 3U);
}

TEST(EventHub, ClosedArrivesLastEvenWithAFullBuffer) {
    EventHub hub;
    auto sub = hub.Subscribe(kSession, Options(1));
    hub.Publish(Ingested(kSession, 1));
    hub.CloseSession(kSession);
    const auto events = Drain(*sub);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back().kind, Kind::kClosed);
    for (std::size_t i = 0; i + 1 < events.size(); ++i) {
        EXPECT_NE(events[i].kind, Kind::kClosed);
    }
    EXPECT_TRUE(sub->closed());
}

TEST(EventHub, ResubscribingAfterCloseGetsNewEvents) {
    EventHub hub;
    auto old_sub = hub.Subscribe(kSession, Options());
    hub.CloseSession(kSession);
    // The session id is subscribed to again after the close: the new one gets new events and
    // the closed one none.
    auto new_sub = hub.Subscribe(kSession, Options());
    hub.Publish(Ingested(kSession, 5));
    const auto old_events = Drain(*old_sub);
    ASSERT_EQ(old_events.size(), 1U);
    EXPECT_EQ(old_events[0].kind, Kind::kClosed);
    const auto new_events = Drain(*new_sub);
    ASSERT_EQ(new_events.size(), 1U);
    EXPECT_EQ(new_events[0].version, 5U);
    EXPECT_FALSE(new_sub->closed());
}

TEST(EventHub, CloseAll) {
    EventHub hub;
    auto a = hub.Subscribe(kSession, Options());
    auto b = hub.Subscribe(kSession, Options(4, true));
    auto c = hub.Subscribe(kOtherSession, Options());
    EXPECT_EQ(hub.n_subscribers(), 3U);
    hub.Publish(Ingested(kOtherSession, 1));
    hub.CloseAll();
    EXPECT_EQ(hub.n_subscribers(), 0U);
    for (auto* sub : {a.get(), b.get()}) {
        EXPECT_TRUE(sub->closed());
        const auto events = Drain(*sub);
        ASSERT_EQ(events.size(), 1U);
        EXPECT_EQ(events[0].kind, Kind::kClosed);
        EXPECT_EQ(events[0].session, kSession);
    }
    EXPECT_TRUE(c->closed());
    const auto events = Drain(*c);
    ASSERT_EQ(events.size(), 2U);
    EXPECT_EQ(events[0].kind, Kind::kIngested);
    EXPECT_EQ(events[1].kind, Kind::kClosed);
    EXPECT_EQ(events[1].session, kOtherSession);
    hub.Publish(Ingested(kSession, 2));
    hub.Publish(Ingested(kOtherSession, 2));
    EXPECT_FALSE(a->TryNext().has_value());
    EXPECT_FALSE(c->TryNext().has_value());
}

TEST(EventHub, DroppingTheSubscriptionUnsubscribesAtOnce) {
    EventHub hub;
    auto keep = hub.Subscribe(kSession, Options());
    auto drop = hub.Subscribe(kSession, Options());
    auto other = hub.Subscribe(kOtherSession, Options());
    EXPECT_EQ(hub.n_subscribers(), 3U);
    drop.reset();
    EXPECT_EQ(hub.n_subscribers(), 2U);  // counted at once, before any publish
    hub.Publish(Ingested(kSession, 1));
    EXPECT_EQ(hub.n_subscribers(), 2U);
    const auto events = Drain(*keep);
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].version, 1U);
    other.reset();
    keep.reset();
    EXPECT_EQ(hub.n_subscribers(), 0U);
    hub.Publish(Ingested(kSession, 2));
    hub.Publish(Ingested(kOtherSession, 2));
    hub.CloseAll();
    EXPECT_EQ(hub.n_subscribers(), 0U);
}

TEST(Subscription, NextTimesOutWithNothingBuffered) {
    EventHub hub;
    auto sub = hub.Subscribe(kSession, Options());
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(sub->Next(20ms).has_value());
    EXPECT_GE(std::chrono::steady_clock::now() - start, 15ms);
    EXPECT_FALSE(sub->Next(0ms).has_value());
}

TEST(Subscription, NextReturnsABufferedEventAtOnce) {
    EventHub hub;
    auto sub = hub.Subscribe(kSession, Options());
    hub.Publish(Ingested(kSession, 3));
    auto e = sub->Next(0ms);  // no wait at all: it is there already
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->version, 3U);
}

TEST(Subscription, NextWakesForAnEventFromAnotherThread) {
    EventHub hub;
    auto sub = hub.Subscribe(kSession, Options());
    std::thread publisher([&hub] {
        std::this_thread::sleep_for(50ms);
        hub.Publish(Ingested(kSession, 17));
    });
    // A timeout far beyond any test's: an event here means Next was woken by the publish.
    auto e = sub->Next(std::chrono::hours(1));
    publisher.join();
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->kind, Kind::kIngested);
    EXPECT_EQ(e->version, 17U);
}

TEST(Subscription, NextWakesForMissed) {
    EventHub hub;
    auto sub = hub.Subscribe(kSession, Options(1));
    hub.Publish(Ingested(kSession, 1));
    hub.Publish(Ingested(kSession, 2));
    auto e = sub->Next(0ms);  // both buffered already: no wait
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->kind, Kind::kMissed);
    EXPECT_EQ(e->n_missed, 1U);
    e = sub->Next(0ms);
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->version, 2U);
}

TEST(Subscription, NotifierCalledOncePerDeliveredEvent) {
    EventHub hub;
    auto sub = hub.Subscribe(kSession, Options());
    std::atomic<int> calls{0};
    sub->SetNotifier([&calls] { ++calls; });

    hub.Publish(Ingested(kSession, 1));
    EXPECT_EQ(calls.load(), 1);
    hub.Publish(FlashEvent(kSession, 1, false));  // filtered out
    EXPECT_EQ(calls.load(), 1);
    hub.Publish(Ingested(kOtherSession, 1));  // not this session
    EXPECT_EQ(calls.load(), 1);
    hub.Publish(FlashEvent(kSession, 1, true));
    EXPECT_EQ(calls.load(), 2);
    hub.Publish(Parked(kSession, 1.0));
    EXPECT_EQ(calls.load(), 3);
    EXPECT_EQ(Drain(*sub).size(), 3U);
    hub.CloseSession(kSession);  // closing notifies too
    EXPECT_EQ(calls.load(), 4);
    hub.Publish(Ingested(kSession, 2));
    EXPECT_EQ(calls.load(), 4);
}

TEST(Subscription, NotifierOnlyForItsOwnSubscription) {
    EventHub hub;
    auto changes = hub.Subscribe(kSession, Options(256, false));
    auto every = hub.Subscribe(kSession, Options(256, true));
    int changes_calls = 0;
    int every_calls = 0;
    changes->SetNotifier([&changes_calls] { ++changes_calls; });
    every->SetNotifier([&every_calls] { ++every_calls; });
    hub.Publish(FlashEvent(kSession, 1, false));
    hub.Publish(FlashEvent(kSession, 2, false));
    hub.Publish(FlashEvent(kSession, 3, true));
    EXPECT_EQ(changes_calls, 1);
    EXPECT_EQ(every_calls, 3);
}

TEST(Subscription, NotifierCalledForOverflowingEvents) {
    EventHub hub;
    auto sub = hub.Subscribe(kSession, Options(2));
    int calls = 0;
    sub->SetNotifier([&calls] { ++calls; });
    for (std::uint64_t v = 1; v <= 5; ++v) {
        hub.Publish(Ingested(kSession, v));
    }
    EXPECT_EQ(calls, 5);
    EXPECT_EQ(sub->n_dropped(), 3U);
}

TEST(Subscription, StandaloneKeepsItsSettings) {
    const Subscription sub(kSession, Options(5, true));
    EXPECT_EQ(sub.session(), kSession);
    EXPECT_EQ(sub.options().capacity, 5U);
    EXPECT_TRUE(sub.options().every_evaluation);
    EXPECT_FALSE(sub.closed());
    EXPECT_EQ(sub.n_dropped(), 0U);
    EXPECT_EQ(sub.n_buffered(), 0U);
    const SubscribeOptions defaults;
    EXPECT_EQ(defaults.capacity, 256U);
    EXPECT_FALSE(defaults.every_evaluation);
}

// Once closed and drained, Next returns at once instead of waiting out its timeout.
TEST(Subscription, NextReturnsAtOnceWhenClosed) {
    EventHub hub;
    auto sub = hub.Subscribe(kSession, {});
    hub.CloseSession(kSession);
    ASSERT_EQ(sub->Next(0ms)->kind, Kind::kClosed);
    // A wait of an hour that returns (nothing) means it did not wait: a broken one runs into
    // the test's timeout.
    EXPECT_FALSE(sub->Next(std::chrono::hours(1)).has_value());
}

// A hub that goes away closes its subscriptions.
TEST(EventHub, DestroyingTheHubClosesSubscriptions) {
    std::shared_ptr<Subscription> sub;
    {
        EventHub hub;
        sub = hub.Subscribe(kSession, {});
        hub.Publish(Ingested(kSession, 1));
    }
    EXPECT_TRUE(sub->closed());
    EXPECT_EQ(sub->TryNext()->kind, Kind::kIngested);
    EXPECT_EQ(sub->TryNext()->kind, Kind::kClosed);
}

// The notifier runs outside the hub's lock: it may call back into the hub.
TEST(EventHub, NotifierMayCallBackIntoTheHub) {
    EventHub hub;
    auto sub = hub.Subscribe(kSession, {});
    std::size_t seen = 0;
    sub->SetNotifier([&] { seen = hub.n_subscribers(); });
    hub.Publish(Ingested(kSession, 1));
    EXPECT_EQ(seen, 1U);
    hub.CloseSession(kSession);
    EXPECT_EQ(seen, 0U) << "the session's list is gone before kClosed is pushed";
}

}  // namespace
}  // namespace kvs
