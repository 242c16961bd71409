// Speculative decoding by prompt lookup (query/draft.h, QueryRun): greedy answers agree with and
// without it (verify batches and one-token steps are other batch shapes: the near-tie rule of
// query/agreement.h), rejected drafts leave the KV cache as one-token-at-a-time
// decoding would, and the concurrency cap turns it off and on.

#include "engine/batch.h"
#include "engine/context.h"
#include "engine/model.h"

#include <algorithm>
#include <cstdio>
#include <gtest/gtest.h>

#include "model/test_models.h"

namespace kvs::test {
namespace {

class Speculation : public ::testing::TestWithParam<std::string> {};

// Text that repeats (answers about it quote it) and text that does not.
std::string RepetitiveText() {
    std::string t;
    for (int i = 0; i < 6; ++i) {
        t += "Lily saw a big red ball in the park. She ran to the ball and kicked it. ";
        t += "SPX 2019-11-05T14:3" + std::to_string(i) + "Z o=3080.5 h=3081 l=3080.2 c=3080.9\n";
    }
    return t;
}

std::string PlainText() {
    std::string t;
    for (int i = 0; i < 6; ++i) {
        t += DataText(i);
    }
    return t;
}

// Drafts as often as possible (a single repeated token is enough), so there is much to verify.
EngineOptions WithDrafts(EngineOptions o, int max_decoders = 16) {
    o.draft.max_draft = 4;
    o.draft.ngram_min = 1;
    o.draft_max_decoders = max_decoders;
    return o;
}

std::uint64_t Drafted(Engine& e) {
    return e.metrics().GetCounter("kvs_spec_drafted_tokens_total", "").value();
}

TEST_P(Speculation, GreedyAnswersAgreeWithPlainDecoding) {
    auto plain = OpenEngine(TestOptions(GetParam()));
    auto spec = OpenEngine(WithDrafts(TestOptions(GetParam())));
    ASSERT_TRUE(plain && spec);
    int drafted = 0;
    int accepted = 0;
    for (const std::string& text : {RepetitiveText(), PlainText()}) {
        auto a = plain->CreateSession({.prefix = "Notes."});
        auto b = spec->CreateSession({.prefix = "Notes."});
        ASSERT_TRUE(a.ok() && b.ok());
        ASSERT_TRUE(plain->Append(*a, text).ok());
        ASSERT_TRUE(spec->Append(*b, text).ok());
        for (int i = 0; i < 3; ++i) {
            QueryOptions q;
            q.question = i == 0 ? " Lily saw a" : Question(i);
            q.max_tokens = 24;
            q.keep_logits = true;
            auto x = plain->Query(*a, q);
            auto y = spec->Query(*b, q);
            ASSERT_TRUE(x.ok() && y.ok());
            const std::string what = GetParam() + " question " + std::to_string(i);
            EXPECT_TRUE(Agree(*x, *y, what + " speculative vs plain"));
            EXPECT_EQ(x->timings.n_drafted_tokens, 0);
            // The stateless path drafts from its prompt (the context) and agrees too.
            auto z = spec->QueryStateless(*spec->SessionTokens(*b), q);
            ASSERT_TRUE(z.ok());
            EXPECT_TRUE(Agree(*z, *x, what + " speculative stateless vs plain"));
            for (const Answer* s : {&*y, &*z}) {
                drafted += s->timings.n_drafted_tokens;
                accepted += s->timings.n_accepted_tokens;
            }
        }
    }
    std::printf("[%s] speculation: %d drafted, %d accepted\n", GetParam().c_str(), drafted,
                accepted);
    EXPECT_GT(drafted, 0);
    EXPECT_LE(accepted, drafted);
    EXPECT_EQ(Drafted(*spec), static_cast<std::uint64_t>(drafted));
    EXPECT_EQ(Drafted(*plain), 0u);
}

TEST_P(Speculation, RejectedDraftsLeaveTheCacheAsPlainDecoding) {
    auto model = Model::Load({ModelPath(GetParam())});
    ASSERT_TRUE(model.ok());
    const Model& m = **model;
    ContextOptions co;
    co.n_seq_max = 2;
    co.n_ctx_seq = 1024;
    co.n_batch = co.n_ubatch = 128;
    co.n_threads = 1;
    auto ctx = Context::Create(m, co);
    ASSERT_TRUE(ctx.ok());
    Context& c = **ctx;
    const Tokens context = *m.Tokenize(PlainText(), true);
    Batch batch(128);
    for (SeqId seq : {0, 1}) {
        for (std::size_t done = 0; done < context.size();) {
            batch.Clear();
            for (; done < context.size() && batch.room() > 0; ++done) {
                batch.Add(context[done], static_cast<Pos>(done), seq, false);
            }
            ASSERT_TRUE(c.Decode(batch).ok());
        }
    }
    QueryOptions q;
    q.question = Question(1);
    q.max_tokens = 32;
    q.keep_logits = true;
    const Tokens prompt = *m.Tokenize(q.question, false);
    const Pos n = static_cast<Pos>(context.size());
    QueryRun plain(0, n, prompt, q);
    // The sequence holds the context, the prompt and the answer but its last token (sampled,
    // decoded in the next step): nothing of a rejected draft.
    auto expected_end = [&](const QueryRun& r) {
        return n + static_cast<Pos>(prompt.size()) + r.n_answer_tokens() - 2;
    };
    while (!plain.done()) {
        batch.Clear();
        plain.Schedule(batch, 128);
        ASSERT_TRUE(c.Decode(batch).ok());
        plain.Consume(c, m);
        if (!plain.done()) {
            ASSERT_EQ(c.SeqPosMax(0), expected_end(plain));
        }
    }
    const Answer a = plain.TakeAnswer();
    // A decoy in the lookup context: the prompt and the true answer with every other token
    // changed, so that drafts are partly wrong whatever the model answers.
    Tokens lookup = context;
    lookup.insert(lookup.end(), prompt.begin(), prompt.end());
    for (std::size_t k = 0; k < a.tokens.size(); ++k) {
        lookup.push_back(k % 2 == 1 ? (a.tokens[k] + 1) % m.n_vocab() : a.tokens[k]);
    }
    QueryRun spec(1, n, prompt, q);
    DraftOptions d;
    d.max_draft = 4;
    d.ngram_min = 1;
    d.min_acceptance = 0;  // never pause: every step drafts when it can
    spec.EnableDrafting(d, lookup);
    int rejected = 0;
    int steps = 0;
    while (!spec.done()) {
        const int want = spec.WantedTokens(true);
        batch.Clear();
        ASSERT_EQ(spec.Schedule(batch, 128), want);
        ASSERT_TRUE(c.Decode(batch).ok());
        spec.Consume(c, m);
        rejected += spec.last_drafted() - spec.last_accepted();
        ++steps;
        if (!spec.done()) {
            ASSERT_EQ(c.SeqPosMax(1), expected_end(spec)) << "after step " << steps;
        }
    }
    const Answer b = spec.TakeAnswer();
    EXPECT_TRUE(Agree(a, b, GetParam() + " speculative steps with rejections vs plain"));
    EXPECT_GT(rejected, 0) << "no draft was rejected: the test checked nothing";
    EXPECT_EQ(b.timings.n_drafted_tokens - b.timings.n_accepted_tokens, rejected);
    std::printf("[%s] %zu answer tokens in %d speculative steps, %d drafts rejected\n",
                GetParam().c_str(), b.tokens.size(), steps, rejected);
}

TEST_P(Speculation, TheCapTurnsItOffAndOn) {
    for (int cap : {1, 2}) {
        auto e = OpenEngine(WithDrafts(TestOptions(GetParam()), cap));
        ASSERT_TRUE(e);
        std::vector<SessionId> ids;
        for (int i = 0; i < 2; ++i) {
            auto id = e->CreateSession();
            ASSERT_TRUE(id.ok());
            ASSERT_TRUE(e->Append(*id, RepetitiveText()).ok());
            ids.push_back(*id);
        }
        QueryOptions q;
        q.question = " Lily saw a";
        q.max_tokens = 16;
        q.ignore_eog = true;  // both decode for all 16 tokens, side by side
        q.keep_logits = true;
        // Alone, a query speculates under either cap.
        auto alone = e->Query(ids[0], q);
        ASSERT_TRUE(alone.ok());
        EXPECT_GT(alone->timings.n_drafted_tokens, 0) << "cap " << cap;
        // Two at once: two decoders. Over a cap of 1 neither drafts; a cap of 2 lets both.
        ASSERT_TRUE(e->SubmitQuery(ids[0], q).ok());
        ASSERT_TRUE(e->SubmitQuery(ids[1], q).ok());
        e->RunUntilIdle();
        int drafted = 0;
        const std::vector<FinishedQuery> finished = e->TakeFinished();
        ASSERT_EQ(finished.size(), 2U) << "both answers finished (cap " << cap << ")";
        for (const auto& f : finished) {
            ASSERT_TRUE(f.answer.ok()) << f.answer.status().ToString();
            EXPECT_EQ(f.answer->tokens.size(), 16U) << "every token of the answer";
            EXPECT_TRUE(Agree(*f.answer, *alone, GetParam() + " cap " + std::to_string(cap)));
            drafted += f.answer->timings.n_drafted_tokens;
        }
        if (cap == 1) {
            EXPECT_EQ(drafted, 0);
        } else {
            EXPECT_GT(drafted, 0);
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Models, Speculation, ::testing::ValuesIn(TestModelNames()));

}  // namespace
}  // namespace kvs::test
