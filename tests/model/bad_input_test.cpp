// Every bad input returns its error and leaves the session exactly as it was.

#include "engine/batch.h"
#include "engine/context.h"

#include <gtest/gtest.h>

#include "model/test_models.h"

namespace kvs::test {
namespace {

class BadInput : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        EngineOptions o = TestOptions(GetParam());
        o.n_sessions = 2;
        o.max_sessions = 2;
        o.n_ctx_session = 512;
        o.max_text_bytes = 4096;
        engine_ = OpenEngine(o);
        ASSERT_TRUE(engine_);
        id_ = *engine_->CreateSession({.prefix = "Prices:"});
        ASSERT_TRUE(engine_->Append(id_, DataText(1)).ok());
        probe_.question = Question(0);
        probe_.max_tokens = 12;
        before_ = *engine_->Info(id_);
        baseline_ = engine_->Query(id_, probe_)->tokens;
    }

    // The session still holds the same tokens and answers the same way.
    void ExpectUnchanged() {
        const auto now = *engine_->Info(id_);
        EXPECT_EQ(now.n_tokens, before_.n_tokens);
        EXPECT_EQ(now.n_cached, before_.n_tokens);
        EXPECT_EQ(now.version, before_.version);
        EXPECT_EQ(engine_->Query(id_, probe_)->tokens, baseline_);
    }

    QueryOptions Q(const std::string& question) const {
        QueryOptions q = probe_;
        q.question = question;
        return q;
    }

    std::unique_ptr<Engine> engine_;
    SessionId id_ = 0;
    QueryOptions probe_;
    SessionInfo before_;
    Tokens baseline_;
};

TEST_P(BadInput, UnknownSession) {
    EXPECT_EQ(engine_->Append(999, "x").status().code(), StatusCode::kNotFound);
    EXPECT_EQ(engine_->Query(999, probe_).status().code(), StatusCode::kNotFound);
    EXPECT_EQ(engine_->Info(999).status().code(), StatusCode::kNotFound);
    EXPECT_EQ(engine_->CloseSession(999).code(), StatusCode::kNotFound);
    ExpectUnchanged();
}

// A query waiting on a session that is closed ends as not found (HTTP 404), not as aborted
// (503 with Retry-After): retrying cannot bring the session back.
TEST_P(BadInput, QueriesOfAClosedSessionEndAsNotFound) {
    const SessionId other = *engine_->CreateSession({.prefix = "Other:"});
    auto queued = engine_->SubmitQuery(other, probe_);
    ASSERT_TRUE(queued.ok());
    ASSERT_TRUE(engine_->CloseSession(other).ok());
    auto finished = engine_->TakeFinished();
    ASSERT_EQ(finished.size(), 1U);
    EXPECT_EQ(finished[0].answer.status().code(), StatusCode::kNotFound)
        << finished[0].answer.status().ToString();
    EXPECT_NE(finished[0].answer.status().message().find("was closed"), std::string::npos);
    ExpectUnchanged();
}

TEST_P(BadInput, BadAppends) {
    EXPECT_EQ(engine_->Append(id_, "").status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(engine_->Append(id_, "ok \xC3\x28 bad").status().code(),
              StatusCode::kInvalidArgument);
    EXPECT_EQ(engine_->Append(id_, std::string(5000, 'a')).status().code(), StatusCode::kTooLarge);
    ExpectUnchanged();
}

TEST_P(BadInput, BadTokenAppends) {
    EXPECT_EQ(engine_->AppendTokens(id_, {}).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(engine_->AppendTokens(id_, {1, -5}).status().code(), StatusCode::kInvalidArgument);
    const Token past_vocab = engine_->model().n_vocab();
    EXPECT_EQ(engine_->AppendTokens(id_, {past_vocab}).status().code(),
              StatusCode::kInvalidArgument);
    EXPECT_EQ(engine_->AppendTokens(999, {1}).status().code(), StatusCode::kNotFound);
    ExpectUnchanged();
}

TEST_P(BadInput, SameSessionTwiceInOneQueryBatchRunsBothInTurn) {
    std::vector<QueryRequest> queries = {{id_, probe_}, {id_, probe_}};
    auto results = engine_->QueryMany(queries);
    ASSERT_TRUE(results[0].ok() && results[1].ok());
    EXPECT_EQ(results[0]->tokens, baseline_);
    EXPECT_EQ(results[1]->tokens, baseline_);
    ExpectUnchanged();
}

TEST_P(BadInput, AppendOverflowSaysHowMuchRoomIsLeft) {
    // Fill most of the 512-cell session, then ask for more than is left.
    std::string big;
    while (big.size() < 3800) {
        big += DataText(static_cast<int>(big.size()));
    }
    big.resize(3800);
    auto r = engine_->Append(id_, big);
    if (r.ok()) {  // it fit: the next one must not
        before_ = *engine_->Info(id_);
        baseline_ = engine_->Query(id_, probe_)->tokens;
        r = engine_->Append(id_, big);
    }
    ASSERT_EQ(r.status().code(), StatusCode::kContextFull);
    EXPECT_NE(r.status().message().find("has room for"), std::string::npos) << r.status().message();
    ExpectUnchanged();
}

TEST_P(BadInput, BadQueries) {
    EXPECT_EQ(engine_->Query(id_, Q("")).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(engine_->Query(id_, Q("\xFF?")).status().code(), StatusCode::kInvalidArgument);
    QueryOptions q = probe_;
    q.max_tokens = 0;
    EXPECT_EQ(engine_->Query(id_, q).status().code(), StatusCode::kInvalidArgument);
    q = probe_;
    q.sampling.temperature = -1;
    EXPECT_EQ(engine_->Query(id_, q).status().code(), StatusCode::kInvalidArgument);
    q = probe_;
    q.sampling.top_p = 0;
    EXPECT_EQ(engine_->Query(id_, q).status().code(), StatusCode::kInvalidArgument);
    q = probe_;
    q.stop = {""};
    EXPECT_EQ(engine_->Query(id_, q).status().code(), StatusCode::kInvalidArgument);
    q = probe_;
    q.max_tokens = 600;  // more than the session's 512 cells
    auto r = engine_->Query(id_, q);
    EXPECT_EQ(r.status().code(), StatusCode::kContextFull);
    EXPECT_NE(r.status().message().find("has room for"), std::string::npos);
    ExpectUnchanged();
}

TEST_P(BadInput, BadRequestInABatchLeavesOthersAlone) {
    auto other = engine_->CreateSession();
    ASSERT_TRUE(other.ok());
    std::vector<AppendRequest> appends = {{*other, DataText(2)}, {id_, ""}, {12345, "x"}};
    auto results = engine_->AppendMany(appends);
    EXPECT_TRUE(results[0].ok());
    EXPECT_EQ(results[1].status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(results[2].status().code(), StatusCode::kNotFound);
    ExpectUnchanged();
}

TEST_P(BadInput, SlotsAndPrefixLimits) {
    std::string long_prefix;
    for (int i = 0; i < 1000; ++i) {
        long_prefix += " a";  // about 1,000 tokens for a 512-cell session
    }
    EXPECT_EQ(engine_->CreateSession({.prefix = long_prefix}).status().code(),
              StatusCode::kContextFull);
    EXPECT_EQ(engine_->CreateSession({.prefix = "\xC3"}).status().code(),
              StatusCode::kInvalidArgument);
    ASSERT_TRUE(engine_->CreateSession().ok());  // the second of two slots
    EXPECT_EQ(engine_->CreateSession().status().code(), StatusCode::kResourceExhausted);
    ExpectUnchanged();
}

TEST_P(BadInput, BatchLargerThanNBatchIsRefused) {
    auto model = Model::Load({.path = ModelPath(GetParam())});
    ASSERT_TRUE(model.ok());
    ContextOptions o;
    o.n_seq_max = 1;
    o.n_ctx_seq = 256;
    o.n_batch = 8;
    o.n_ubatch = 8;
    o.n_threads = 1;
    auto ctx = Context::Create(**model, o);
    ASSERT_TRUE(ctx.ok());
    Batch batch(9);
    for (int i = 0; i < 9; ++i) {
        batch.Add((*model)->Bos(), i, 0, i == 8);
    }
    EXPECT_EQ((*ctx)->Decode(batch).code(), StatusCode::kTooLarge);
    EXPECT_EQ((*ctx)->SeqPosMax(0), -1);
    Batch empty(1);
    EXPECT_EQ((*ctx)->Decode(empty).code(), StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Models, BadInput, ::testing::ValuesIn(TestModelNames()));

}  // namespace
}  // namespace kvs::test
