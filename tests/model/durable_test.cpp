// Durable sessions on real weights: a Runtime with a data folder is stopped and started again;
// every session comes back (from its snapshot, or from its data log when the snapshot is missing,
// corrupt, truncated, another session's, or made by another model or KV settings) and answers
// exactly like a reference session fed the same data in memory. A full store fails appends with
// kStorage and changes nothing; deleting a session deletes its data. Held appends (engine level)
// are not ingested until confirmed and vanish when revoked.

#include "runtime/runtime.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <gtest/gtest.h>
#include <thread>
#include <unistd.h>

#include "model/test_models.h"

namespace kvs::test {
namespace {

namespace fs = std::filesystem;

QueryOptions Q(int i) {
    QueryOptions q;
    q.question = Question(i);
    q.max_tokens = 8;
    q.keep_logits = true;
    return q;
}

class DurableTest : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        static std::atomic<int> n{0};
        dir_ = fs::temp_directory_path() /
               ("kvs-durable-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
        fs::remove_all(dir_);
    }

    void TearDown() override { fs::remove_all(dir_); }

    RuntimeOptions Options(const std::string& model) const {
        RuntimeOptions o;
        o.engine = TestOptions(model);
        o.durable.data_dir = dir_.string();
        o.durable.snapshot_interval_s = 3600;  // snapshots at shutdown (and when parking) only
        o.durable.tenant_names = {{1, "alice"}, {2, "bob"}};
        return o;
    }

    RuntimeOptions Options() const { return Options(GetParam()); }

    static std::unique_ptr<Runtime> Start(const RuntimeOptions& o) {
        if (o.engine.model_path.empty()) {
            return nullptr;
        }
        auto rt = Runtime::Start(o);
        EXPECT_TRUE(rt.ok()) << rt.status().ToString();
        return rt.ok() ? std::move(rt).value() : nullptr;
    }

    // The answer of an in-memory session (same engine options) fed `texts` after `prefix`, one
    // append at a time. The sessions it is compared with may have ingested their data in other
    // steps (appends not waited for, a log replayed), so the comparison is the near-tie rule.
    static Answer Reference(RuntimeOptions o,
                            const std::string& prefix,
                            const std::vector<std::string>& texts,
                            int question) {
        o.durable = {};
        auto rt = Start(o);
        if (!rt) {
            ADD_FAILURE() << "no reference runtime";
            return {};
        }
        const SessionId id = *rt->CreateSession(1, {.prefix = prefix}).get();
        for (const std::string& t : texts) {
            EXPECT_TRUE(rt->AppendAndWait(1, id, t).get().ok());
        }
        auto a = rt->Query(1, id, Q(question)).get();
        EXPECT_TRUE(a.ok()) << a.status().ToString();
        return a.ok() ? std::move(a).value() : Answer{};
    }

    fs::path SnapshotOf(SessionId id) const {
        return dir_ / "snapshots" / (std::to_string(id) + ".snap");
    }

    fs::path dir_;
};

TEST_P(DurableTest, SessionsComeBackFromSnapshotsThenFromLogs) {
    const std::string prefix = "Data:\n";
    std::vector<std::string> texts;
    for (int i = 0; i < 4; ++i) {
        texts.push_back(DataText(i));
    }
    SessionId a = 0;
    SessionId b = 0;
    FlashId flash = 0;
    Answer before;
    Answer b_alone;  // b asked with nothing else running: the same batch shapes as after restart
    {
        auto rt = Start(Options());
        ASSERT_TRUE(rt);
        a = *rt->CreateSession(1, {.prefix = prefix, .settings = "settings of a"}).get();
        b = *rt->CreateSession(2, {}).get();
        FlashOptions question;
        question.question = Question(1);
        question.max_tokens = 8;
        flash = *rt->AddFlash(1, a, question).get();
        for (const std::string& t : texts) {
            ASSERT_TRUE(rt->Append(1, a, t).get().ok());
            ASSERT_TRUE(rt->AppendAndWait(2, b, t).get().ok());
        }
        before = *rt->Query(1, a, Q(0)).get();
        ASSERT_TRUE(rt->Query(1, a, FlashQuery(question)).get().ok());  // a's evaluation is done
        b_alone = *rt->Query(2, b, Q(0)).get();
    }  // shutdown: every changed session is snapshotted
    ASSERT_TRUE(fs::exists(SnapshotOf(a)));
    ASSERT_TRUE(fs::exists(SnapshotOf(b)));
    EXPECT_TRUE(Agree(before, Reference(Options(), prefix, texts, 0), GetParam() + " before"));

    texts.push_back(DataText(7));
    Answer after_five;
    {
        auto rt = Start(Options());
        ASSERT_TRUE(rt);
        EXPECT_EQ(CounterValue(rt->metrics(), "kvs_restored_from_snapshot_total"), 2);
        ASSERT_EQ(rt->restored().size(), 2U);
        EXPECT_EQ(rt->restored()[0], std::make_pair(a, std::string("settings of a")));
        auto info = rt->Info(1, a).get();
        ASSERT_TRUE(info.ok()) << info.status().ToString();
        EXPECT_EQ(info->version, 4U);
        EXPECT_FALSE(info->resident) << "a snapshot is loaded only when the session needs a slot";
        EXPECT_EQ(rt->Info(2, a).get().status().code(), StatusCode::kNotFound)
            << "the owner survives the restart";
        EXPECT_TRUE(rt->Info(2, b).get().ok());
        auto questions = rt->ListFlash(1, a);
        ASSERT_TRUE(questions.ok());
        ASSERT_EQ(questions->size(), 1U);
        EXPECT_EQ((*questions)[0].id, flash);
        // b first, while a stays parked (no flash evaluation beside it).
        EXPECT_TRUE(SameBits(*rt->Query(2, b, Q(0)).get(), b_alone))
            << "a snapshot restore equals the live session";
        EXPECT_TRUE(Agree(*rt->Query(1, a, Q(0)).get(), before, GetParam() + " restored a"));
        auto appended = rt->AppendAndWait(1, a, texts.back()).get();
        ASSERT_TRUE(appended.ok());
        EXPECT_EQ(appended->version, 5U);
        after_five = *rt->Query(1, a, Q(2)).get();
        auto log = rt->ReadLog(1, a, 0).get();
        ASSERT_TRUE(log.ok());
        ASSERT_EQ(log->entries.size(), texts.size());
        for (std::size_t i = 0; i < texts.size(); ++i) {
            EXPECT_EQ(log->entries[i].text, texts[i]);
            EXPECT_EQ(log->entries[i].version, i + 1);
        }
    }
    EXPECT_TRUE(Agree(after_five, Reference(Options(), prefix, texts, 2), GetParam() + " 5"));

    fs::remove(SnapshotOf(a));
    fs::remove(SnapshotOf(b));
    auto rt = Start(Options());
    ASSERT_TRUE(rt);
    EXPECT_EQ(CounterValue(rt->metrics(), "kvs_restored_from_log_total"), 2);
    EXPECT_TRUE(Agree(*rt->Query(1, a, Q(2)).get(), after_five, GetParam() + " from the log"));
    EXPECT_EQ(rt->Info(1, a).get()->version, 5U);
    EXPECT_EQ(rt->Info(2, b).get()->accepted_version, 4U);
}

TEST_P(DurableTest, UnusableSnapshotsFallBackToTheLog) {
    const std::vector<std::string> texts = {DataText(1), DataText(2), DataText(3)};

    struct Case {
        const char* name;
        std::function<void(const fs::path& file, const fs::path& other)> spoil;
        bool rejected_at_start;  // else: the state fails its checksum when it is loaded
    };

    auto flip = [](const fs::path& f, std::uintmax_t at) {
        std::fstream io(f, std::ios::in | std::ios::out | std::ios::binary);
        io.seekg(static_cast<std::streamoff>(at));
        const char c = static_cast<char>(io.get() ^ 0x5a);
        io.seekp(static_cast<std::streamoff>(at));
        io.put(c);
    };
    const std::vector<Case> cases = {
        {"state byte flipped",
         [&](const fs::path& f, const fs::path&) { flip(f, fs::file_size(f) - 9); }, false},
        {"token byte flipped", [&](const fs::path& f, const fs::path&) { flip(f, 100); }, true},
        {"header byte flipped", [&](const fs::path& f, const fs::path&) { flip(f, 41); }, true},
        {"truncated",
         [](const fs::path& f, const fs::path&) { fs::resize_file(f, fs::file_size(f) / 2); },
         true},
        {"empty", [](const fs::path& f, const fs::path&) { fs::resize_file(f, 0); }, true},
        {"another session's",
         [](const fs::path& f, const fs::path& other) {
             fs::copy_file(other, f, fs::copy_options::overwrite_existing);
         },
         true},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        fs::remove_all(dir_);
        SessionId id = 0;
        SessionId other = 0;
        {
            auto rt = Start(Options());
            ASSERT_TRUE(rt);
            id = *rt->CreateSession(1, {}).get();
            other = *rt->CreateSession(1, {.prefix = "Other:"}).get();
            for (const std::string& t : texts) {
                ASSERT_TRUE(rt->AppendAndWait(1, id, t).get().ok());
            }
            ASSERT_TRUE(rt->AppendAndWait(1, other, texts[0]).get().ok());
        }
        c.spoil(SnapshotOf(id), SnapshotOf(other));
        auto rt = Start(Options());
        ASSERT_TRUE(rt);
        EXPECT_EQ(CounterValue(rt->metrics(), "kvs_snapshots_rejected_total"),
                  c.rejected_at_start ? 1 : 0);
        auto a = rt->Query(1, id, Q(0)).get();
        ASSERT_TRUE(a.ok()) << a.status().ToString();
        EXPECT_EQ(CounterValue(rt->metrics(), "kvs_restore_fallbacks_total"),
                  c.rejected_at_start ? 0 : 1);
        EXPECT_EQ(a->version, 3U);
        EXPECT_TRUE(Agree(*a, Reference(Options(), "", texts, 0), GetParam() + " fallback"));
    }
}

TEST_P(DurableTest, SnapshotsOfAnotherModelOrKvSettingsAreRefused) {
    const std::vector<std::string> texts = {DataText(4), DataText(5)};
    std::vector<RuntimeOptions> others;
    RuntimeOptions bigger = Options();
    bigger.engine.n_ctx_session *= 2;  // other KV settings
    others.push_back(bigger);
    for (const std::string& name : TestModelNames()) {
        if (name != GetParam()) {
            others.push_back(Options(name));  // another model
        }
    }
    for (const RuntimeOptions& o : others) {
        SCOPED_TRACE(o.engine.model_path + " ctx " + std::to_string(o.engine.n_ctx_session));
        fs::remove_all(dir_);
        SessionId id = 0;
        {
            auto rt = Start(Options());
            ASSERT_TRUE(rt);
            id = *rt->CreateSession(1, {}).get();
            for (const std::string& t : texts) {
                ASSERT_TRUE(rt->AppendAndWait(1, id, t).get().ok());
            }
        }
        auto rt = Start(o);
        ASSERT_TRUE(rt);
        EXPECT_EQ(CounterValue(rt->metrics(), "kvs_snapshots_rejected_total"), 1);
        EXPECT_EQ(CounterValue(rt->metrics(), "kvs_restored_from_log_total"), 1);
        auto a = rt->Query(1, id, Q(1)).get();
        ASSERT_TRUE(a.ok()) << a.status().ToString();
        EXPECT_TRUE(Agree(*a, Reference(o, "", texts, 1), GetParam() + " refused snapshot"));
    }
}

TEST_P(DurableTest, AFullStoreFailsAppendsAndChangesNothing) {
    RuntimeOptions full = Options();
    full.durable.max_store_pages = 10;
    std::vector<std::string> acked;
    SessionId id = 0;
    int n_created = 0;
    {
        auto rt = Start(full);
        ASSERT_TRUE(rt);
        id = *rt->CreateSession(1, {.prefix = "", .on_full = OnFull::kRoll}).get();
        Status failed;
        for (int i = 0; i < 400 && failed.ok(); ++i) {
            const std::string text = DataText(i) + DataText(i + 1) + DataText(i + 2);
            auto r = rt->AppendAndWait(1, id, text).get();
            if (r.ok()) {
                acked.push_back(text);
            } else {
                failed = r.status();
            }
        }
        ASSERT_EQ(failed.code(), StatusCode::kStorage) << failed.ToString();
        EXPECT_NE(failed.message().find("full"), std::string::npos) << failed.message();
        EXPECT_NE(failed.message().find("nothing was acknowledged"), std::string::npos);
        ASSERT_FALSE(acked.empty());
        // Nothing changed, and reads keep working.
        auto info = rt->Info(1, id).get();
        ASSERT_TRUE(info.ok());
        EXPECT_EQ(info->version, acked.size());
        EXPECT_EQ(info->accepted_version, acked.size()) << "the refused version is given out again";
        EXPECT_EQ(info->n_pending_tokens, 0);
        auto answer = rt->Query(1, id, Q(0)).get();
        ASSERT_TRUE(answer.ok()) << answer.status().ToString();
        EXPECT_EQ(answer->version, acked.size());
        EXPECT_EQ(rt->ReadLog(1, id, 0).get()->entries.size(), acked.size());
        // Sessions that cannot be stored are not created.
        Status refused;
        for (int i = 0; i < 50 && refused.ok(); ++i) {
            auto made = rt->CreateSession(1, {.prefix = DataText(i) + DataText(i + 1)}).get();
            refused = made.status();
            n_created += made.ok() ? 1 : 0;
            if (!made.ok()) {
                EXPECT_EQ(
                    rt->Info(1, id + 1 + static_cast<SessionId>(n_created)).get().status().code(),
                    StatusCode::kNotFound);
            }
        }
        EXPECT_EQ(refused.code(), StatusCode::kStorage) << refused.ToString();
    }
    auto rt = Start(Options());
    ASSERT_TRUE(rt);
    auto page = rt->ReadLog(1, id, 0).get();
    ASSERT_TRUE(page.ok());
    const std::vector<LogEntry>* log = &page->entries;
    ASSERT_EQ(log->size(), acked.size());
    for (std::size_t i = 0; i < acked.size(); ++i) {
        EXPECT_EQ((*log)[i].text, acked[i]);
    }
    EXPECT_EQ(rt->Info(1, id).get()->version, acked.size());
    EXPECT_EQ(rt->restored().size(), 1U + static_cast<std::size_t>(n_created));
}

TEST_P(DurableTest, DeletingASessionDeletesItsDataAndSnapshot) {
    RuntimeOptions o = Options();
    o.durable.snapshot_interval_s = 0;  // snapshot as soon as data is in
    o.durable.snapshot_min_tokens = 0;
    SessionId id = 0;
    {
        auto rt = Start(o);
        ASSERT_TRUE(rt);
        id = *rt->CreateSession(1, {}).get();
        ASSERT_TRUE(rt->AppendAndWait(1, id, DataText(0)).get().ok());
        ASSERT_TRUE(WaitUntil([&] { return rt->Info(1, id).get()->snapshot_version == 1; }))
            << "a periodic snapshot was written";
        ASSERT_TRUE(fs::exists(SnapshotOf(id)));
        ASSERT_TRUE(rt->CloseSession(1, id).get().ok());
        EXPECT_EQ(rt->ReadLog(1, id, 0).get().status().code(), StatusCode::kNotFound);
    }
    EXPECT_FALSE(fs::exists(SnapshotOf(id)));
    auto rt = Start(o);
    ASSERT_TRUE(rt);
    EXPECT_TRUE(rt->restored().empty());
    EXPECT_EQ(rt->Info(1, id).get().status().code(), StatusCode::kNotFound);
    EXPECT_GT(*rt->CreateSession(1, {}).get(), id) << "a deleted session's id is never reused";
}

TEST_P(DurableTest, FailedSnapshotWritesLoseNothing) {
    RuntimeOptions o = Options();
    o.durable.snapshot_interval_s = 0;
    o.durable.snapshot_min_tokens = 0;
    const std::vector<std::string> texts = {DataText(2), DataText(3), DataText(4)};
    SessionId id = 0;
    {
        auto rt = Start(o);
        ASSERT_TRUE(rt);
        id = *rt->CreateSession(1, {}).get();
        ASSERT_TRUE(rt->AppendAndWait(1, id, texts[0]).get().ok());
        // Snapshot writes now fail (a file where the folder was: ENOTDIR).
        fs::remove_all(dir_ / "snapshots");
        std::ofstream(dir_ / "snapshots") << "not a folder";
        for (std::size_t i = 1; i < texts.size(); ++i) {
            ASSERT_TRUE(rt->AppendAndWait(1, id, texts[i]).get().ok());
        }
        EXPECT_TRUE(WaitUntil(
            [&] { return CounterValue(rt->metrics(), "kvs_snapshot_failures_total") >= 1; }));
        auto a = rt->Query(1, id, Q(3)).get();
        ASSERT_TRUE(a.ok()) << a.status().ToString();
        EXPECT_EQ(a->version, 3U);
    }
    fs::remove(dir_ / "snapshots");
    auto rt = Start(o);
    ASSERT_TRUE(rt);
    EXPECT_EQ(CounterValue(rt->metrics(), "kvs_restored_from_log_total"), 1);
    EXPECT_TRUE(Agree(*rt->Query(1, id, Q(3)).get(), Reference(o, "", texts, 3),
                      GetParam() + " after failed snapshot writes"));
}

// An acknowledgement never waits for the engine thread: here the engine thread is held inside a
// reply, and appends are acknowledged all the same (in memory at once; durable once committed).
// Once it runs again, a query reads those writes.
TEST_P(DurableTest, AppendsAreAcknowledgedWhileTheEngineThreadIsBusy) {
    for (const bool durable : {false, true}) {
        SCOPED_TRACE(durable ? "durable" : "in memory");
        fs::remove_all(dir_);
        RuntimeOptions o = Options();
        if (!durable) {
            o.durable = {};
        }
        auto rt = Start(o);
        ASSERT_TRUE(rt);
        const SessionId id = *rt->CreateSession(1, {}).get();
        std::promise<void> release;
        std::shared_future<void> released = release.get_future().share();
        std::promise<void> entered;
        rt->Info(1, id, [&entered, released](Result<SessionInfo>) {
            entered.set_value();
            released.wait();  // the engine thread waits here
        });
        entered.get_future().wait();
        std::vector<std::future<Result<AppendResult>>> acks;
        for (int i = 0; i < 3; ++i) {
            acks.push_back(rt->Append(1, id, DataText(i)));
        }
        for (std::size_t i = 0; i < acks.size(); ++i) {
            ASSERT_EQ(acks[i].wait_for(std::chrono::seconds(10)), std::future_status::ready);
            auto ack = acks[i].get();
            ASSERT_TRUE(ack.ok()) << ack.status().ToString();
            EXPECT_EQ(ack->version, i + 1);
        }
        EXPECT_EQ(rt->Append(2, id, "x").get().status().code(), StatusCode::kNotFound);
        release.set_value();
        auto a = rt->Query(1, id, Q(0)).get();
        ASSERT_TRUE(a.ok()) << a.status().ToString();
        EXPECT_EQ(a->version, 3U);
        EXPECT_TRUE(Agree(*a, Reference(o, "", {DataText(0), DataText(1), DataText(2)}, 0),
                          GetParam() + " appends acknowledged while busy"));
    }
}

INSTANTIATE_TEST_SUITE_P(Models, DurableTest, ::testing::ValuesIn(TestModelNames()));

// ---- Held appends (engine level) -----------------------------------------------------------

class HeldAppendTest : public ::testing::TestWithParam<std::string> {};

TEST_P(HeldAppendTest, HeldDataWaitsAndRevokedDataVanishes) {
    auto e = OpenEngine(TestOptions(GetParam()));
    ASSERT_TRUE(e);
    const SessionId id = *e->CreateSession();
    ASSERT_TRUE(e->Append(id, DataText(0)).ok());
    const int n_before = e->Info(id)->n_tokens;

    auto held = e->SubmitAppend(id, DataText(1), {.held = true});
    ASSERT_TRUE(held.ok());
    EXPECT_EQ(held->version, 2U);
    e->RunUntilIdle();
    EXPECT_EQ(e->Info(id)->n_tokens, n_before) << "held data is not ingested";
    EXPECT_EQ(e->Info(id)->version, 1U);

    // A later plain append waits behind the held one (data stays in order).
    ASSERT_TRUE(e->SubmitAppend(id, DataText(2)).ok());
    const QueryId q = *e->SubmitQuery(id, Q(0));
    for (int i = 0; i < 20; ++i) {
        e->Step();
    }
    EXPECT_TRUE(e->TakeFinished().empty()) << "the query waits for the held data";
    EXPECT_EQ(e->Info(id)->n_tokens, n_before);

    // Revoking the held append lets the later one through; the query answers at version 3.
    ASSERT_TRUE(e->RevokeAppend(id, 2).ok());
    std::vector<FinishedQuery> done;
    for (int i = 0; i < 200 && done.empty(); ++i) {
        e->Step();
        done = e->TakeFinished();
    }
    ASSERT_EQ(done.size(), 1U);
    EXPECT_EQ(done[0].id, q);
    ASSERT_TRUE(done[0].answer.ok());
    EXPECT_EQ(done[0].answer->version, 3U);

    // The session holds exactly the confirmed data: same as a session fed 0 and 2.
    const SessionId twin = *e->CreateSession();
    ASSERT_TRUE(e->Append(twin, DataText(0)).ok());
    ASSERT_TRUE(e->Append(twin, DataText(2)).ok());
    EXPECT_EQ(*e->SessionTokens(id), *e->SessionTokens(twin));

    // Revoking the last accepted append gives its version out again; confirming ingests.
    ASSERT_TRUE(e->SubmitAppend(id, DataText(3), {.held = true}).ok());
    ASSERT_TRUE(e->RevokeAppend(id, 4).ok());
    EXPECT_EQ(e->Info(id)->accepted_version, 3U);
    auto again = e->SubmitAppend(id, DataText(4), {.held = true});
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->version, 4U);
    EXPECT_EQ(e->ConfirmAppend(id, 4).code(), StatusCode::kOk);
    EXPECT_EQ(e->ConfirmAppend(id, 4).code(), StatusCode::kNotFound) << "no longer held";
    e->RunUntilIdle();
    EXPECT_EQ(e->Info(id)->version, 4U);
    EXPECT_EQ(e->RevokeAppend(id, 4).code(), StatusCode::kNotFound);
    EXPECT_EQ(e->RevokeAppend(999, 1).code(), StatusCode::kNotFound);
}

INSTANTIATE_TEST_SUITE_P(Models, HeldAppendTest, ::testing::ValuesIn(TestModelNames()));

}  // namespace
}  // namespace kvs::test
