// Flash queries through the Runtime: cached answers on the caller's thread, subscriptions
// (events in order, only on change, bounded, tenant-checked, closed with the session), and a
// session with 20 questions under a fast data stream.

#include "runtime/runtime.h"

#include <chrono>
#include <future>
#include <gtest/gtest.h>

#include "model/test_models.h"

namespace kvs::test {
namespace {

using std::chrono::milliseconds;

class FlashRuntime : public ::testing::TestWithParam<std::string> {
protected:
    std::unique_ptr<Runtime> Start(RuntimeOptions o = {}) {
        const FaultPlan faults = o.engine.test_faults;
        o.engine = TestOptions(GetParam());
        o.engine.test_faults = faults;
        o.engine.flash_max_share = 1.0;
        if (o.engine.model_path.empty()) {
            return nullptr;
        }
        auto rt = Runtime::Start(o);
        EXPECT_TRUE(rt.ok()) << rt.status().ToString();
        return rt.ok() ? std::move(rt).value() : nullptr;
    }

    static FlashOptions F(int i, int max_tokens = 6) {
        FlashOptions f;
        f.question = Question(i) + (i < 4 ? "" : " (" + std::to_string(i) + ")");
        f.max_tokens = max_tokens;
        return f;
    }

    // Waits until every question of the session answers its accepted version.
    static bool WaitAllCurrent(Runtime& rt, TenantId tenant, SessionId id) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
        while (std::chrono::steady_clock::now() < deadline) {
            auto list = rt.ListFlash(tenant, id);
            if (list.ok() && std::all_of(list->begin(), list->end(),
                                         [](const FlashInfo& f) { return f.current(); })) {
                return true;
            }
            std::this_thread::sleep_for(milliseconds(5));
        }
        return false;
    }
};

// A cached hit is answered on the caller's thread: its future is ready when Query returns, even
// while the engine thread is busy with a long step.
TEST_P(FlashRuntime, CachedHitNeedsNoEngineStep) {
    auto rt = Start();
    ASSERT_TRUE(rt);
    const SessionId id = *rt->CreateSession(1, {.prefix = "Notes."}).get();
    ASSERT_TRUE(rt->AddFlash(1, id, F(0)).get().ok());
    ASSERT_TRUE(rt->AppendAndWait(1, id, DataText(0)).get().ok());
    ASSERT_TRUE(WaitAllCurrent(*rt, 1, id));
    // The engine thread is held inside a command: a hit that needed it could not be answered.
    EngineHold hold(*rt, 1, id);
    auto hit = rt->Query(1, id, FlashQuery(F(0)));
    ASSERT_EQ(hit.wait_for(milliseconds(0)), std::future_status::ready)
        << "the cached hit waited for the engine";
    auto answer = hit.get();
    ASSERT_TRUE(answer.ok()) << answer.status().ToString();
    EXPECT_TRUE(answer->cached);
    EXPECT_EQ(answer->version, 1U);
    // Another tenant never gets it, cached or not.
    auto other = rt->Query(2, id, FlashQuery(F(0)));
    hold.Release();
    EXPECT_EQ(other.get().status().code(), StatusCode::kNotFound);
}

// Defect: a command that threw was never answered (its future broke; an HTTP request waited
// for its connection to close), and an append whose command threw left its BeginAppend
// unmatched, which turned the session's cached answers off for good. FaultPlan makes the
// engine's second Submit* call throw: first a query's, then (another server) an append's.
TEST_P(FlashRuntime, AThrowingCommandIsAnsweredAndEndsItsAppend) {
    RuntimeOptions o;
    o.engine.test_faults.throw_at_submit = 2;
    {
        auto rt = Start(o);
        ASSERT_TRUE(rt);
        const SessionId id = *rt->CreateSession(1, {.prefix = "Notes."}).get();
        ASSERT_TRUE(rt->AppendAndWait(1, id, DataText(0)).get().ok());  // submit 1
        auto threw = rt->Query(1, id, FlashQuery(F(0)));                // submit 2
        ASSERT_EQ(threw.wait_for(std::chrono::seconds(120)), std::future_status::ready);
        const Status st = threw.get().status();
        EXPECT_EQ(st.code(), StatusCode::kInternal) << st.ToString();
        EXPECT_TRUE(rt->Query(1, id, FlashQuery(F(0))).get().ok()) << "the next one is served";
    }
    auto rt = Start(o);
    ASSERT_TRUE(rt);
    const SessionId id = *rt->CreateSession(1, {.prefix = "Notes."}).get();
    ASSERT_TRUE(rt->AddFlash(1, id, F(0)).get().ok());
    ASSERT_TRUE(rt->AppendAndWait(1, id, DataText(0)).get().ok());  // submit 1
    ASSERT_TRUE(rt->Append(1, id, DataText(1)).get().ok());         // submit 2: admitted, throws
    auto after = rt->AppendAndWait(1, id, DataText(2)).get();       // submit 3
    ASSERT_TRUE(after.ok()) << after.status().ToString();
    ASSERT_TRUE(WaitAllCurrent(*rt, 1, id));
    auto hit = rt->Query(1, id, FlashQuery(F(0)));
    auto answer = hit.get();
    ASSERT_TRUE(answer.ok()) << answer.status().ToString();
    EXPECT_TRUE(answer->cached) << "cached answers are served again once the data is in";
    EXPECT_EQ(answer->version, after->version);
}

// Subscribers: events in order, flash events only when the answer changes (unless asked for
// every evaluation), tenant checks, and kClosed last when the session closes.
TEST_P(FlashRuntime, SubscribersSeeChangesInOrder) {
    auto rt = Start();
    ASSERT_TRUE(rt);
    const SessionId id = *rt->CreateSession(1, {.prefix = "Notes."}).get();
    EXPECT_EQ(rt->Subscribe(2, id).status().code(), StatusCode::kNotFound);
    auto changes = *rt->Subscribe(1, id);
    auto every = *rt->Subscribe(1, id, {.every_evaluation = true});
    const FlashId f = *rt->AddFlash(1, id, F(0, 1)).get();
    for (int i = 0; i < 6; ++i) {
        ASSERT_TRUE(rt->AppendAndWait(1, id, i % 2 ? "The cat sat." : "The dog ran.").get().ok());
        ASSERT_TRUE(WaitAllCurrent(*rt, 1, id));
    }
    ASSERT_TRUE(rt->CloseSession(1, id).get().ok());

    auto drain = [](Subscription& s) {
        std::vector<EngineEvent> out;
        while (auto e = s.Next(milliseconds(2000))) {
            out.push_back(*e);
            if (e->kind == EngineEvent::Kind::kClosed) {
                break;
            }
        }
        return out;
    };
    const auto all = drain(*every);
    const auto changed = drain(*changes);
    ASSERT_FALSE(all.empty());
    EXPECT_EQ(all.back().kind, EngineEvent::Kind::kClosed);
    EXPECT_EQ(changed.back().kind, EngineEvent::Kind::kClosed);
    EXPECT_TRUE(every->closed());
    // Ingested versions in order, each evaluation after the data it answers.
    std::uint64_t last_ingested = 0;
    std::vector<EngineEvent> flash_all;
    for (const EngineEvent& e : all) {
        if (e.kind == EngineEvent::Kind::kIngested) {
            EXPECT_EQ(e.version, last_ingested + 1);
            last_ingested = e.version;
        } else if (e.kind == EngineEvent::Kind::kFlash) {
            EXPECT_EQ(e.version, last_ingested);
            EXPECT_EQ(e.flash.id, f);
            EXPECT_EQ(e.flash.question, F(0).question);
            flash_all.push_back(e);
        }
    }
    EXPECT_EQ(last_ingested, 6U);
    std::vector<EngineEvent> flash_changed;
    for (const EngineEvent& e : changed) {
        if (e.kind == EngineEvent::Kind::kFlash) {
            flash_changed.push_back(e);
        }
    }
    // The changes-only subscriber sees exactly the evaluations whose answer changed.
    std::vector<std::uint64_t> want;
    for (const EngineEvent& e : flash_all) {
        if (e.flash.changed) {
            want.push_back(e.version);
        }
    }
    std::vector<std::uint64_t> got;
    for (const EngineEvent& e : flash_changed) {
        got.push_back(e.version);
    }
    EXPECT_EQ(got, want);
    EXPECT_LT(flash_changed.size(), flash_all.size()) << "some answer must repeat";
}

// 20 questions on one session and a fast data stream: memory stays bounded (a slow subscriber's
// buffer holds at most its capacity and is told what it missed), and when the stream stops every
// question's cached answer equals the live answer at the final version.
TEST_P(FlashRuntime, TwentyQuestionsUnderAFastStream) {
    RuntimeOptions o;
    auto rt = Start(o);
    ASSERT_TRUE(rt);
    SessionOptions so{.prefix = "Notes.", .on_full = OnFull::kRoll};
    for (int i = 0; i < 20; ++i) {
        so.flash.push_back(F(i, 4));
    }
    const SessionId id = *rt->CreateSession(1, so).get();
    auto slow = *rt->Subscribe(1, id, {.every_evaluation = true, .capacity = 8});
    std::vector<std::future<Result<AppendResult>>> appends;
    for (int i = 0; i < 60; ++i) {
        appends.push_back(rt->Append(1, id, i % 3 ? "Up." : "Down."));
        if (i % 10 == 0) {
            std::this_thread::sleep_for(milliseconds(5));
        }
    }
    for (auto& a : appends) {
        ASSERT_TRUE(a.get().ok());
    }
    ASSERT_TRUE(WaitAllCurrent(*rt, 1, id));
    EXPECT_LE(slow->n_buffered(), 8U);
    const auto info = rt->Info(1, id).get();
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->version, 60U);
    EXPECT_EQ(info->n_flash, 20);
    EXPECT_EQ(info->n_flash_stale, 0);
    // Read the slow subscriber: it was told it missed events, and what it kept is in order.
    std::uint64_t missed = 0;
    std::uint64_t last_version = 0;
    while (auto e = slow->TryNext()) {
        if (e->kind == EngineEvent::Kind::kMissed) {
            missed += e->n_missed;
        } else {
            EXPECT_GE(e->version, last_version);
            last_version = e->version;
        }
    }
    EXPECT_GT(missed, 0U);
    EXPECT_EQ(missed, slow->n_dropped());
    for (int i = 0; i < 20; ++i) {
        auto cached = rt->Query(1, id, FlashQuery(F(i, 4))).get();
        QueryOptions live = FlashQuery(F(i, 4));
        live.allow_cached = false;
        live.keep_logits = true;
        auto fresh = rt->Query(1, id, live).get();
        ASSERT_TRUE(cached.ok() && fresh.ok());
        EXPECT_TRUE(cached->cached);
        EXPECT_EQ(cached->version, 60U);
        EXPECT_TRUE(AgreeTokens(cached->tokens, *fresh,
                                GetParam() + " question " + std::to_string(i) + " cached vs live"));
    }
}

INSTANTIATE_TEST_SUITE_P(Models, FlashRuntime, ::testing::ValuesIn(TestModelNames()));

}  // namespace
}  // namespace kvs::test
