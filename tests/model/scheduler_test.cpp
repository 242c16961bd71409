// The stepped engine on real weights: parking, many sessions over few slots, ingest never
// holding a query back, consistency of queries during ingest, rolling windows, admission.

#include <filesystem>
#include <gtest/gtest.h>

#include "model/test_models.h"

namespace kvs::test {
namespace {

class Scheduler : public ::testing::TestWithParam<std::string> {
protected:
    static QueryOptions Greedy(int i, int max_tokens = 12) {
        QueryOptions q;
        q.question = Question(i);
        q.max_tokens = max_tokens;
        q.keep_logits = true;
        return q;
    }

    static std::string TempDir(const std::string& name) {
        const auto dir = std::filesystem::temp_directory_path() /
                         ("kvs-" + name + "-" + std::to_string(::getpid()));
        std::filesystem::remove_all(dir);
        return dir.string();
    }
};

// A session parked to RAM or to disk and restored answers like one never parked, bit for bit.
TEST_P(Scheduler, ParkedThenRestoredEqualsNeverParked) {
    EngineOptions o = TestOptions(GetParam());
    o.n_sessions = 2;
    o.park_dir = TempDir("park");
    for (bool disk : {false, true}) {
        // The disk round's budget is one byte, so every parked session spills.
        o.park_host_bytes = disk ? 1 : std::size_t{1} << 30;
        auto engine = OpenEngine(o);
        ASSERT_TRUE(engine);
        auto parked = *engine->CreateSession({.prefix = "Notes."});
        auto kept = *engine->CreateSession({.prefix = "Notes."});
        for (int i = 0; i < 3; ++i) {
            ASSERT_TRUE(engine->Append(parked, DataText(i)).ok());
            ASSERT_TRUE(engine->Append(kept, DataText(i)).ok());
        }
        ASSERT_TRUE(engine->Park(parked).ok());
        EXPECT_FALSE(engine->Info(parked)->resident);
        EXPECT_EQ(engine->park_store().IsOnDisk(parked), disk);
        auto a = engine->Query(parked, Greedy(0));  // restores it
        auto b = engine->Query(kept, Greedy(0));
        ASSERT_TRUE(a.ok() && b.ok()) << a.status().ToString();
        EXPECT_TRUE(engine->Info(parked)->resident);
        EXPECT_TRUE(SameBits(*a, *b)) << (disk ? "disk" : "RAM") << ": restored K/V";
        // And it keeps ingesting after the restore.
        ASSERT_TRUE(engine->Append(parked, DataText(7)).ok());
        ASSERT_TRUE(engine->Append(kept, DataText(7)).ok());
        EXPECT_TRUE(SameBits(*engine->Query(parked, Greedy(1)), *engine->Query(kept, Greedy(1))));
    }
}

// 64 sessions over 8 slots: data arrives for all of them; every answer agrees with the stateless
// one (other batch shapes: the near-tie rule).
TEST_P(Scheduler, SixtyFourSessionsOverEightSlots) {
    EngineOptions o = TestOptions(GetParam());
    o.n_sessions = 8;
    o.max_sessions = 64;
    o.n_ctx_session = 512;
    auto engine = OpenEngine(o);
    ASSERT_TRUE(engine);
    std::vector<SessionId> ids;
    for (int i = 0; i < 64; ++i) {
        auto id = engine->CreateSession({.prefix = i % 2 ? "Prices:" : ""});
        ASSERT_TRUE(id.ok()) << id.status().ToString();
        ids.push_back(*id);
    }
    for (int round = 0; round < 2; ++round) {
        for (int i = 0; i < 64; ++i) {  // queued for all, ingested as slots rotate
            ASSERT_TRUE(engine->SubmitAppend(ids[i], DataText(i + 64 * round)).ok());
        }
    }
    std::vector<QueryRequest> queries;
    for (int i = 0; i < 64; ++i) {
        queries.push_back({ids[i], Greedy(i, 6)});
    }
    auto answers = engine->QueryMany(queries);
    for (int i = 0; i < 64; ++i) {
        ASSERT_TRUE(answers[i].ok()) << answers[i].status().ToString();
        const auto info = *engine->Info(ids[i]);
        EXPECT_EQ(answers[i]->version, 2U) << "the query came after both appends were accepted";
        auto oracle = engine->QueryStateless(*engine->SessionTokens(ids[i]), queries[i].options);
        ASSERT_TRUE(oracle.ok());
        EXPECT_TRUE(Agree(*answers[i], *oracle,
                          GetParam() + " session " + std::to_string(i) + " vs stateless"));
        EXPECT_EQ(info.version, 2U);
    }
    const auto parks = engine->metrics().GetCounter("kvs_parks_total", "").value();
    EXPECT_GE(parks, 56U) << "64 sessions over 8 slots must park";
}

// An 8,000-token ingest in one session delays another session's query by at most one step:
// the query takes as many steps as on an idle engine.
TEST_P(Scheduler, LongIngestDoesNotHoldQueriesBack) {
    EngineOptions o = TestOptions(GetParam());
    o.n_sessions = 2;
    o.n_ctx_session = 8448;
    o.n_batch = 256;
    auto engine = OpenEngine(o);
    ASSERT_TRUE(engine);
    auto busy = *engine->CreateSession();
    auto asker = *engine->CreateSession();
    ASSERT_TRUE(engine->Append(asker, DataText(1)).ok());

    auto steps_to_answer = [&](Engine& e) {
        auto q = e.SubmitQuery(asker, Greedy(2, 10));
        EXPECT_TRUE(q.ok());
        for (int steps = 1; steps < 10'000; ++steps) {
            e.Step();
            for (auto& f : e.TakeFinished()) {
                if (f.id == *q) {
                    return steps;
                }
            }
        }
        ADD_FAILURE() << "the query did not finish in 10,000 steps";
        return 1 << 20;  // fails every comparison with a finished query's count
    };
    const int idle_steps = steps_to_answer(*engine);

    Tokens big;
    while (big.size() < 8000) {
        const Tokens t = *engine->model().Tokenize(DataText(static_cast<int>(big.size())), false);
        big.insert(big.end(), t.begin(), t.end());
    }
    big.resize(8000);
    ASSERT_TRUE(engine->SubmitAppendTokens(busy, big).ok());
    engine->Step();  // the ingest is under way
    const int busy_steps = steps_to_answer(*engine);
    EXPECT_EQ(busy_steps, idle_steps);
    EXPECT_GT(engine->Info(busy)->n_pending_tokens, 0) << "the ingest must still be running";
    while (engine->HasWork()) {
        engine->Step();
    }
    EXPECT_EQ(engine->Info(busy)->n_tokens, 8000 + engine->Info(busy)->n_prefix_tokens);
}

// Questions first: a step without queries obeys the step target too (here a fixed target below
// any step's cost, so the policy's minimum of 16 tokens a step), so a question that arrives
// during a long ingest waits for one short step and is in the very next one.
TEST_P(Scheduler, DataOnlyStepsStayWithinTheTarget) {
    EngineOptions o = TestOptions(GetParam());
    o.n_sessions = 2;
    o.n_ctx_session = 4096;
    o.step_target = StepTarget::kFixed;
    o.target_step_ms = 1e-6;
    auto engine = OpenEngine(o);
    ASSERT_TRUE(engine);
    auto busy = *engine->CreateSession();
    auto asker = *engine->CreateSession();
    ASSERT_TRUE(engine->Append(asker, DataText(1)).ok());
    ASSERT_TRUE(engine->SubmitAppendTokens(busy, Tokens(2000, 100)).ok());
    for (int i = 0; i < 3; ++i) {
        const StepReport r = engine->Step();
        EXPECT_EQ(r.n_ingest_tokens, 16) << "step " << i;
        EXPECT_EQ(r.n_tokens, 16) << "step " << i;
    }
    auto q = engine->SubmitQuery(asker, Greedy(2, 4));
    ASSERT_TRUE(q.ok());
    const StepReport first = engine->Step();
    EXPECT_EQ(first.n_query_tokens,
              static_cast<int>(engine->model().Tokenize(Question(2), false)->size()))
        << "the whole question is in the first step after it came";
    EXPECT_EQ(first.n_ingest_tokens, 0) << "the fixed target leaves no room beside the question";
    bool answered = false;
    for (int i = 0; i < 100 && !answered; ++i) {
        engine->Step();
        for (const auto& f : engine->TakeFinished()) {
            answered = answered || (f.id == *q && f.answer.ok());
        }
    }
    EXPECT_TRUE(answered);
    EXPECT_GT(engine->metrics().GetCounter("kvs_latency_bound_steps_total", "").value(), 0U);
}

// Overload shows: the ingest lag runs from each append's admission to all of it in the KV cache
// (a histogram), and the gauge says how old the oldest data not yet ingested is.
TEST_P(Scheduler, IngestLagIsMeasuredFromTheAdmission) {
    EngineOptions o = TestOptions(GetParam());
    o.n_ctx_session = 4096;
    o.step_target = StepTarget::kFixed;
    o.target_step_ms = 1e-6;  // 16 tokens a step: the append takes many steps
    auto engine = OpenEngine(o);
    ASSERT_TRUE(engine);
    auto id = *engine->CreateSession();
    constexpr double kHourMs = 3.6e6;  // admitted an hour ago: far from any test's duration
    const auto admitted = std::chrono::steady_clock::now() - std::chrono::hours(1);
    ASSERT_TRUE(engine->SubmitAppendTokens(id, Tokens(200, 100), {.accepted = admitted}).ok());
    engine->Step();
    ASSERT_GT(engine->Info(id)->n_pending_tokens, 0);
    EXPECT_GE(engine->metrics().GetGauge("kvs_ingest_behind_ms", "").value(), kHourMs);
    ASSERT_TRUE(engine->SubmitAppendTokens(id, Tokens(20, 100)).ok());  // admitted now
    engine->RunUntilIdle();
    const HistogramSnapshot lag =
        engine->metrics().GetHistogram("kvs_ingest_lag_ms", "", kMsBuckets).Snapshot();
    EXPECT_EQ(lag.count, 2U);
    EXPECT_GE(lag.max, kHourMs);
    EXPECT_LT(lag.min, kHourMs);
    EXPECT_EQ(engine->metrics().GetGauge("kvs_ingest_behind_ms", "").value(), 0.0);
}

// A query that arrives while its own session ingests answers the version it was admitted at
// (every append accepted before it); later appends wait for it and are not lost.
TEST_P(Scheduler, QueryDuringIngestAnswersAConsistentVersion) {
    EngineOptions o = TestOptions(GetParam());
    o.n_batch = 32;  // the first append takes several steps
    auto engine = OpenEngine(o);
    ASSERT_TRUE(engine);
    auto id = *engine->CreateSession();
    const std::string first = DataText(1) + DataText(2) + DataText(3);
    ASSERT_TRUE(engine->SubmitAppend(id, first).ok());
    engine->Step();  // part of `first` is in the cache
    ASSERT_GT(engine->Info(id)->n_pending_tokens, 0);
    auto q = engine->SubmitQuery(id, Greedy(0));
    ASSERT_TRUE(engine->SubmitAppend(id, DataText(4)).ok());  // arrives after the query
    std::optional<Answer> answer;
    Tokens at_answer;
    while (!answer) {
        engine->Step();
        for (auto& f : engine->TakeFinished()) {
            ASSERT_TRUE(f.answer.ok());
            answer = std::move(f.answer).value();
            at_answer = *engine->SessionTokens(id);
        }
    }
    EXPECT_EQ(answer->version, 1U);
    EXPECT_EQ(engine->Info(id)->version, 1U) << "the second append waited for the query";
    auto oracle = engine->QueryStateless(at_answer, Greedy(0));
    EXPECT_TRUE(Agree(*answer, *oracle, GetParam() + " query during ingest vs stateless"));
    while (engine->HasWork()) {
        engine->Step();
    }
    EXPECT_EQ(engine->Info(id)->version, 2U);
    EXPECT_EQ(engine->Info(id)->n_pending_tokens, 0);
}

// When no slot can be freed because parking itself fails (host budget full, no spill folder),
// a query for a parked session fails with unavailable instead of waiting forever.
TEST_P(Scheduler, QueryFailsWhenNoSessionCanBeParked) {
    EngineOptions o = TestOptions(GetParam());
    o.n_sessions = 1;
    std::size_t blob_bytes = 0;
    {  // measure one parked session's size
        auto probe = OpenEngine(o);
        ASSERT_TRUE(probe);
        auto a = *probe->CreateSession();
        ASSERT_TRUE(probe->Append(a, DataText(1)).ok());
        ASSERT_TRUE(probe->Park(a).ok());
        blob_bytes = probe->park_store().stats().host_bytes;
    }
    o.park_host_bytes = blob_bytes + blob_bytes / 2;  // room for one parked session, not two
    auto engine = OpenEngine(o);
    ASSERT_TRUE(engine);
    auto a = *engine->CreateSession();
    ASSERT_TRUE(engine->Append(a, DataText(1)).ok());
    auto b = engine->CreateSession();  // parks a
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    ASSERT_TRUE(engine->Append(*b, DataText(1)).ok());
    auto answer = engine->Query(a, Greedy(0));  // needs b parked too: no room
    EXPECT_EQ(answer.status().code(), StatusCode::kUnavailable) << answer.status().ToString();
    EXPECT_FALSE(engine->HasWork());
    EXPECT_TRUE(engine->Query(*b, Greedy(0)).ok()) << "the resident session still answers";
}

// max_staleness lets a query answer at the version already in the cache instead of waiting for
// the data accepted before it.
TEST_P(Scheduler, MaxStalenessSkipsTheCatchUp) {
    auto engine = OpenEngine(TestOptions(GetParam()));
    ASSERT_TRUE(engine);
    auto id = *engine->CreateSession();
    ASSERT_TRUE(engine->Append(id, DataText(1)).ok());
    const Tokens at_v1 = *engine->SessionTokens(id);
    ASSERT_TRUE(engine->SubmitAppend(id, DataText(2)).ok());  // version 2, not ingested yet
    QueryOptions q = Greedy(0);
    q.max_staleness = 1;
    auto a = engine->Query(id, q);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->version, 1U);
    EXPECT_TRUE(Agree(*a, *engine->QueryStateless(at_v1, Greedy(0)), GetParam() + " stale read"));
    q.max_staleness = 0;
    EXPECT_EQ(engine->Query(id, q)->version, 2U);
}

// on_full = roll keeps the prefix, drops the oldest data and keeps answering.
TEST_P(Scheduler, RollingWindowKeepsAnswering) {
    EngineOptions o = TestOptions(GetParam());
    o.n_ctx_session = 256;
    auto engine = OpenEngine(o);
    ASSERT_TRUE(engine);
    auto id = *engine->CreateSession({.prefix = "Market log.", .on_full = OnFull::kRoll});
    const Tokens prefix = *engine->SessionTokens(id);
    for (int i = 0; i < 20; ++i) {
        auto r = engine->Append(id, DataText(i));
        ASSERT_TRUE(r.ok()) << r.status().ToString();
    }
    const auto info = *engine->Info(id);
    EXPECT_GT(info.n_dropped_tokens, 0U);
    EXPECT_LE(info.n_tokens, 256);
    EXPECT_EQ(info.n_cached, info.n_tokens);
    auto a = engine->Query(id, Greedy(0));  // may roll again to make room for itself
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    EXPECT_FALSE(a->tokens.empty());
    const Tokens now = *engine->SessionTokens(id);
    EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), now.begin())) << "prefix kept";
    // The answer after a roll agrees with a fresh prefill of the same window by the near-tie
    // rule (query/agreement.h); the margins are printed.
    auto oracle = engine->QueryStateless(now, Greedy(0));
    ASSERT_TRUE(oracle.ok()) << oracle.status().ToString();
    EXPECT_TRUE(Agree(*a, *oracle, GetParam() + " rolled window vs fresh prefill"));
}

// Admission: what can never fit is refused at once, with its reason.
TEST_P(Scheduler, AdmissionRefusals) {
    EngineOptions o = TestOptions(GetParam());
    o.n_ctx_session = 256;
    o.max_sessions = 3;
    auto engine = OpenEngine(o);
    ASSERT_TRUE(engine);
    auto id = *engine->CreateSession();
    QueryOptions too_long = Greedy(0, 300);
    EXPECT_EQ(engine->SubmitQuery(id, too_long).status().code(), StatusCode::kContextFull);
    EXPECT_EQ(engine->SubmitStateless(Tokens(250, 1), Greedy(0, 20)).status().code(),
              StatusCode::kContextFull);
    // Queued appends count against the room at once (on_full = reject).
    const Tokens chunk(200, 100);
    ASSERT_TRUE(engine->SubmitAppendTokens(id, chunk).ok());
    auto second = engine->SubmitAppendTokens(id, chunk);
    EXPECT_EQ(second.status().code(), StatusCode::kContextFull);
    EXPECT_NE(second.status().message().find("has room for"), std::string::npos);
    ASSERT_TRUE(engine->CreateSession().ok());
    ASSERT_TRUE(engine->CreateSession().ok());
    EXPECT_EQ(engine->CreateSession().status().code(), StatusCode::kResourceExhausted);
    const std::string metrics = engine->metrics().RenderPrometheus();
    EXPECT_NE(metrics.find("kvs_refusals_total{reason=\"context_full\"} 3"), std::string::npos)
        << metrics;
}

}  // namespace
}  // namespace kvs::test

namespace kvs::test {
namespace {

std::string SystemPrompt() {
    return "You are a careful market analyst. You read one bar per line and answer short "
           "questions about trend, price and volume. Once upon a time there was a market.";
}

// A tenant at its resident limit parks its own sessions, never another tenant's.
TEST_P(Scheduler, TenantResidentLimit) {
    EngineOptions o = TestOptions(GetParam());
    o.n_sessions = 4;
    o.max_resident_per_tenant = 2;
    auto engine = OpenEngine(o);
    ASSERT_TRUE(engine);
    const SessionId other = *engine->CreateSession({.prefix = "", .tenant = 2});
    std::vector<SessionId> mine;
    for (int i = 0; i < 4; ++i) {
        mine.push_back(*engine->CreateSession({.prefix = "", .tenant = 1}));
        ASSERT_TRUE(engine->Append(mine.back(), DataText(i)).ok());
    }
    int resident = 0;
    for (SessionId id : mine) {
        resident += engine->Info(id)->resident ? 1 : 0;
    }
    EXPECT_EQ(resident, 2);
    EXPECT_TRUE(engine->Info(other)->resident);
    for (SessionId id : mine) {  // all still answer correctly, taking turns in two slots
        auto a = engine->Query(id, Greedy(0, 4));
        ASSERT_TRUE(a.ok()) << a.status().ToString();
        EXPECT_TRUE(Agree(*a, *engine->QueryStateless(*engine->SessionTokens(id), Greedy(0, 4)),
                          GetParam() + " tenant session vs stateless"));
    }
}

// Stateless prefill and session ingest share the room a step leaves: neither starves.
TEST_P(Scheduler, StatelessAndIngestShareSteps) {
    EngineOptions o = TestOptions(GetParam());
    o.n_batch = 64;
    auto engine = OpenEngine(o);
    ASSERT_TRUE(engine);
    auto id = *engine->CreateSession();
    ASSERT_TRUE(engine->SubmitAppendTokens(id, Tokens(600, 100)).ok());
    ASSERT_TRUE(engine->SubmitStateless(Tokens(600, 101), Greedy(0, 4)).ok());
    for (int step = 0; step < 5; ++step) {
        const StepReport r = engine->Step();
        EXPECT_GT(r.n_ingest_tokens, 0) << "step " << step;
        EXPECT_GT(r.n_stateless_tokens, 0) << "step " << step;
        EXPECT_LE(r.n_tokens, 64);
    }
}

// Sessions sharing a long prefix start from one prefill (a template) and answer exactly like
// sessions that prefilled it themselves.
TEST_P(Scheduler, GroupedPrefixMatchesSeparatePrefill) {
    EngineOptions shared_opts = TestOptions(GetParam());
    EngineOptions separate_opts = shared_opts;
    separate_opts.n_template_slots = 0;
    auto shared = OpenEngine(shared_opts);
    auto separate = OpenEngine(separate_opts);
    ASSERT_TRUE(shared && separate);
    std::vector<SessionId> a;
    std::vector<SessionId> b;
    for (int i = 0; i < 5; ++i) {
        a.push_back(*shared->CreateSession({.prefix = SystemPrompt()}));
        b.push_back(*separate->CreateSession({.prefix = SystemPrompt()}));
        ASSERT_TRUE(shared->Append(a.back(), DataText(i)).ok());
        ASSERT_TRUE(separate->Append(b.back(), DataText(i)).ok());
    }
    auto& hits = shared->metrics().GetCounter("kvs_template_hits_total", "");
    auto& misses = shared->metrics().GetCounter("kvs_template_misses_total", "");
    EXPECT_EQ(misses.value(), 1U) << "the prefix is computed once";
    EXPECT_EQ(hits.value(), 4U);
    for (int i = 0; i < 5; ++i) {
        auto x = shared->Query(a[i], Greedy(i));
        auto y = separate->Query(b[i], Greedy(i));
        ASSERT_TRUE(x.ok() && y.ok());
        EXPECT_TRUE(SameBits(*x, *y)) << "session " << i;
    }
    // The template is freed with its last session, and made again for the next one.
    for (SessionId id : a) {
        ASSERT_TRUE(shared->CloseSession(id).ok());
    }
    ASSERT_TRUE(shared->CreateSession({.prefix = SystemPrompt()}).ok());
    EXPECT_EQ(misses.value(), 2U);
}

INSTANTIATE_TEST_SUITE_P(Models, Scheduler, ::testing::ValuesIn(TestModelNames()));

}  // namespace
}  // namespace kvs::test
