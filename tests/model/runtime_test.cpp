// The Runtime: an Engine on its own thread behind a command queue. Tenant isolation, clients on
// many threads, accepted-then-ingested appends, shutdown with work in flight.

#include "runtime/runtime.h"

#include <atomic>
#include <future>
#include <gtest/gtest.h>
#include <new>
#include <thread>

#include "model/test_models.h"

namespace kvs::test {
namespace {

class RuntimeTest : public ::testing::TestWithParam<std::string> {
protected:
    std::unique_ptr<Runtime> Start(RuntimeOptions o = {}) {
        o.engine = TestOptions(GetParam());
        if (o.engine.model_path.empty()) {
            return nullptr;
        }
        auto rt = Runtime::Start(o);
        EXPECT_TRUE(rt.ok()) << rt.status().ToString();
        return rt.ok() ? std::move(rt).value() : nullptr;
    }

    static QueryOptions Q(int i) {
        QueryOptions q;
        q.question = Question(i);
        q.max_tokens = 8;
        q.keep_logits = true;
        return q;
    }
};

TEST_P(RuntimeTest, TenantsCannotSeeEachOthersSessions) {
    auto rt = Start();
    ASSERT_TRUE(rt);
    const SessionId mine = *rt->CreateSession(1, {}).get();
    ASSERT_TRUE(rt->AppendAndWait(1, mine, DataText(0)).get().ok());
    // Tenant 2 gets exactly what it would get for a session that does not exist.
    const std::string unknown = "unknown session " + std::to_string(mine);
    EXPECT_EQ(rt->Info(2, mine).get().status().message(), unknown);
    EXPECT_EQ(rt->Append(2, mine, "x").get().status().code(), StatusCode::kNotFound);
    EXPECT_EQ(rt->Query(2, mine, Q(0)).get().status().code(), StatusCode::kNotFound);
    EXPECT_EQ(rt->CloseSession(2, mine).get().code(), StatusCode::kNotFound);
    // Nothing changed for tenant 1.
    auto info = rt->Info(1, mine).get();
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->version, 1U);
    EXPECT_TRUE(rt->Query(1, mine, Q(0)).get().ok());
}

TEST_P(RuntimeTest, TenantLimits) {
    RuntimeOptions o;
    o.tenant_limits.max_sessions = 2;
    auto rt = Start(o);
    ASSERT_TRUE(rt);
    ASSERT_TRUE(rt->CreateSession(1, {}).get().ok());
    ASSERT_TRUE(rt->CreateSession(1, {}).get().ok());
    EXPECT_EQ(rt->CreateSession(1, {}).get().status().code(), StatusCode::kResourceExhausted);
    EXPECT_TRUE(rt->CreateSession(2, {}).get().ok()) << "another tenant has its own limit";
}

// Clients on four threads feed and ask their own sessions at once; every answer agrees with what a
// single-threaded engine gives for the same sequence of appends and questions (the concurrent
// ones may share batches: the near-tie rule).
TEST_P(RuntimeTest, ConcurrentClientsMatchASequentialEngine) {
    constexpr int kClients = 4;
    constexpr int kRounds = 3;
    auto rt = Start();
    ASSERT_TRUE(rt);
    std::vector<std::vector<Answer>> answers(kClients);
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
        clients.emplace_back([&, c] {
            const SessionId id = *rt->CreateSession(c % 2, {}).get();
            for (int r = 0; r < kRounds; ++r) {
                auto appended = rt->AppendAndWait(c % 2, id, DataText(c * 10 + r)).get();
                EXPECT_TRUE(appended.ok()) << appended.status().ToString();
                auto a = rt->Query(c % 2, id, Q(c + r)).get();
                EXPECT_TRUE(a.ok()) << a.status().ToString();
                answers[c].push_back(a.ok() ? std::move(a).value() : Answer{});
            }
        });
    }
    for (auto& t : clients) {
        t.join();
    }
    auto engine = OpenEngine(TestOptions(GetParam()));
    ASSERT_TRUE(engine);
    for (int c = 0; c < kClients; ++c) {
        const SessionId id = *engine->CreateSession();
        for (int r = 0; r < kRounds; ++r) {
            ASSERT_TRUE(engine->Append(id, DataText(c * 10 + r)).ok());
            EXPECT_TRUE(
                Agree(answers[c][r], *engine->Query(id, Q(c + r)),
                      GetParam() + " client " + std::to_string(c) + " round " + std::to_string(r)));
        }
    }
}

// Append answers once accepted; a query after it still sees its data (read your writes).
TEST_P(RuntimeTest, AcceptedAppendsAreReadByLaterQueries) {
    auto rt = Start();
    ASSERT_TRUE(rt);
    const SessionId id = *rt->CreateSession(0, {}).get();
    std::vector<std::future<Result<AppendResult>>> acks;
    for (int i = 0; i < 5; ++i) {
        acks.push_back(rt->Append(0, id, DataText(i)));
    }
    for (int i = 0; i < 5; ++i) {
        auto ack = acks[i].get();
        ASSERT_TRUE(ack.ok());
        EXPECT_EQ(ack->version, static_cast<std::uint64_t>(i + 1));
    }
    auto answer = rt->Query(0, id, Q(0)).get();
    ASSERT_TRUE(answer.ok());
    EXPECT_EQ(answer->version, 5U);
    EXPECT_EQ(rt->Info(0, id).get()->version, 5U);
}

// Shutdown with work in flight: nothing hangs, no promise is left broken, and what was answered
// before the shutdown is right. The first question is answered before the shutdown begins (so
// "everything aborted" fails); queries on a session run one at a time and its data is ingested
// in order, so the answered ones come first in each list and each read the data sent before it.
TEST_P(RuntimeTest, ShutdownAnswersEverythingInFlight) {
    auto rt = Start();
    ASSERT_TRUE(rt);
    const SessionId id = *rt->CreateSession(0, {}).get();
    std::vector<std::future<Result<Answer>>> answers;
    std::vector<std::future<Result<AppendResult>>> appends;
    for (int i = 0; i < 20; ++i) {
        appends.push_back(rt->AppendAndWait(0, id, DataText(i)));
        answers.push_back(rt->Query(0, id, Q(i)));
    }
    answers.front().wait();
    rt.reset();                              // must not hang, and no promise may be left broken
    std::vector<std::uint64_t> ingested;     // versions, in the order the appends were sent
    std::vector<std::uint64_t> sent_before;  // [i]: the newest version ingested of appends 0..i
    bool aborted_before = false;
    for (auto& f : appends) {  // the session fills up, or ingest falls behind: later appends
        auto a = f.get();      // may be refused at once
        const StatusCode code = a.status().code();
        EXPECT_TRUE(a.ok() || code == StatusCode::kAborted || code == StatusCode::kContextFull ||
                    code == StatusCode::kResourceExhausted)
            << a.status().ToString();
        if (a.ok()) {
            EXPECT_FALSE(aborted_before) << "ingested after an append that was not";
            EXPECT_TRUE(a->ingested);
            EXPECT_TRUE(ingested.empty() || a->version > ingested.back());
            ingested.push_back(a->version);
        }
        aborted_before = aborted_before || code == StatusCode::kAborted;
        sent_before.push_back(ingested.empty() ? 0 : ingested.back());
    }
    ASSERT_FALSE(ingested.empty()) << "the first question read the first append";
    aborted_before = false;
    int n_answered = 0;
    for (std::size_t i = 0; i < answers.size(); ++i) {
        auto a = answers[i].get();
        const StatusCode code = a.status().code();
        // A query after the session filled up is refused: no room for it.
        EXPECT_TRUE(a.ok() || code == StatusCode::kAborted || code == StatusCode::kContextFull)
            << a.status().ToString();
        if (a.ok()) {
            EXPECT_FALSE(aborted_before) << "query " << i << " answered after an aborted one";
            EXPECT_GE(a->version, sent_before[i]) << "query " << i << " read the data before it";
            n_answered += 1;
        }
        aborted_before = aborted_before || code == StatusCode::kAborted;
    }
    EXPECT_GE(n_answered, 1);
}

// Replies that throw (bad_alloc while rendering, say) are reported where they run, the engine
// thread's loop and its shutdown included, and the process goes on; before, the last replies at
// shutdown ran unguarded and the throw ended the process.
TEST_P(RuntimeTest, ThrowingRepliesDoNotEndTheProcess) {
    auto rt = Start();
    ASSERT_TRUE(rt);
    const SessionId id = *rt->CreateSession(0, {}).get();
    ASSERT_TRUE(rt->AppendAndWait(0, id, DataText(0)).get().ok());
    std::atomic<int> n_replies{0};
    for (int i = 0; i < 20; ++i) {  // one at a time on the session
        QueryOptions q = Q(i);
        q.max_tokens = 32;
        rt->Query(0, id, q, [&n_replies](Result<Answer>) {
            n_replies += 1;
            throw std::bad_alloc();
        });
    }
    while (n_replies.load() == 0) {  // the first has thrown in the loop; the rest still wait
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    rt.reset();
    EXPECT_EQ(n_replies.load(), 20) << "every query got its reply, each of which threw";
}

// Defect: the results of a step were delivered under one guard, so one reply that threw lost
// every later reply and event of that step (the tenant's query count leaked, ingest events were
// lost). Two one-token queries start together and finish in the same step; the first reply
// throws; the second is still answered, and the tenant's count of queued queries is right.
TEST_P(RuntimeTest, AThrowingReplyLosesNothingElseOfItsStep) {
    RuntimeOptions o;
    o.tenant_limits.max_queued_queries = 2;
    auto rt = Start(o);
    ASSERT_TRUE(rt);
    const SessionId a = *rt->CreateSession(0, {}).get();
    const SessionId b = *rt->CreateSession(0, {}).get();
    ASSERT_TRUE(rt->AppendAndWait(0, a, DataText(0)).get().ok());
    ASSERT_TRUE(rt->AppendAndWait(0, b, DataText(0)).get().ok());
    QueryOptions one = Q(1);
    one.max_tokens = 1;
    std::promise<void> threw;
    EngineHold hold(*rt, 0, a);
    rt->Query(0, a, one, [&threw](Result<Answer>) {
        threw.set_value();
        throw std::bad_alloc();
    });
    auto second = rt->Query(0, b, one);
    hold.Release();
    threw.get_future().get();
    ASSERT_EQ(second.wait_for(std::chrono::seconds(120)), std::future_status::ready)
        << "the second reply of the step was lost";
    auto answer = second.get();
    ASSERT_TRUE(answer.ok()) << answer.status().ToString();
    EXPECT_LE(answer->tokens.size(), 1U);
    auto third = rt->Query(0, a, Q(2));  // both counted out again: two may be queued
    auto fourth = rt->Query(0, b, Q(2));
    EXPECT_TRUE(third.get().ok());
    EXPECT_TRUE(fourth.get().ok());
}

// Defect: an exception escaping Engine::Step() (here: from the decode, FaultPlan) ended the
// process. The decode that threw counts as a failed one: its work is rolled back and retried,
// and the session answers exactly as a session that never saw the fault (near-tie rule: the
// retry may cut the data into other batches).
TEST_P(RuntimeTest, AThrowingDecodeIsAFailedDecode) {
    const std::vector<std::string> texts = {DataText(3), DataText(4)};
    auto answer_with = [&](int n_throws) -> Result<Answer> {
        RuntimeOptions o;
        o.engine = TestOptions(GetParam());
        o.engine.test_faults.throw_decodes = n_throws;
        auto rt = Runtime::Start(o);
        if (!rt.ok()) {
            return rt.status();
        }
        // A decode that throws fails the request it served with a clear error, nothing more:
        // the prefix's prefill at creation, say. Each such failure is one of the faults.
        Result<SessionId> id = Internal("not created");
        for (int attempt = 0; attempt <= n_throws && !id.ok(); ++attempt) {
            id = (*rt)->CreateSession(0, {.prefix = "Notes."}).get();
            EXPECT_TRUE(id.ok() || id.status().code() == StatusCode::kInternal)
                << id.status().ToString();
        }
        if (!id.ok()) {
            return id.status();
        }
        for (const std::string& t : texts) {
            if (auto r = (*rt)->AppendAndWait(0, *id, t).get(); !r.ok()) {
                return r.status();
            }
        }
        return (*rt)->Query(0, *id, Q(5)).get();
    };
    if (TestOptions(GetParam()).model_path.empty()) {
        return;
    }
    auto faulty = answer_with(3);
    auto clean = answer_with(0);
    ASSERT_TRUE(clean.ok()) << clean.status().ToString();
    ASSERT_TRUE(faulty.ok()) << faulty.status().ToString();
    EXPECT_TRUE(Agree(*faulty, *clean, GetParam() + " after decodes that threw"));
}

TEST_P(RuntimeTest, MetricsAreReadableFromAnyThread) {
    auto rt = Start();
    ASSERT_TRUE(rt);
    const SessionId id = *rt->CreateSession(0, {}).get();
    ASSERT_TRUE(rt->AppendAndWait(0, id, DataText(1)).get().ok());
    ASSERT_TRUE(rt->Query(0, id, Q(1)).get().ok());
    const std::string text = rt->MetricsPrometheus();
    EXPECT_NE(text.find("kvs_steps_total"), std::string::npos);
    EXPECT_NE(text.find("kvs_step_ms_bucket"), std::string::npos);
    EXPECT_NE(rt->MetricsTable().find("kvs_decode_ms"), std::string::npos);
}

TEST_P(RuntimeTest, StatelessRequestsMatchTheEngine) {
    auto rt = Start();
    ASSERT_TRUE(rt);
    const std::string prompt = DataText(3) + DataText(4);
    auto a = rt->Stateless(7, prompt, Q(2)).get();
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    auto engine = OpenEngine(TestOptions(GetParam()));
    ASSERT_TRUE(engine);
    EXPECT_TRUE(SameBits(*a, *engine->QueryStateless(*engine->TokenizeContext(prompt), Q(2))));
    EXPECT_EQ(rt->Stateless(7, "\xFF", Q(2)).get().status().code(), StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Models, RuntimeTest, ::testing::ValuesIn(TestModelNames()));

}  // namespace
}  // namespace kvs::test
