// What the HTTP layer builds on: streamed answer text, cancellation by the client, a session's
// own context limit, special-token prompts and chat templates.

#include <algorithm>
#include <atomic>
#include <gtest/gtest.h>
#include <memory>

#include "model/test_models.h"

namespace kvs::test {
namespace {

class ServingHooks : public ::testing::TestWithParam<std::string> {};

// The streamed pieces concatenate to the answer's text, with and without stop strings, and no
// piece shows the start of a stop string that is later cut.
TEST_P(ServingHooks, StreamedTextIsTheAnswer) {
    auto engine = OpenEngine(TestOptions(GetParam()));
    ASSERT_TRUE(engine);
    auto id = *engine->CreateSession({.prefix = "Notes."});
    ASSERT_TRUE(engine->Append(id, DataText(0)).ok());
    for (int with_stop = 0; with_stop < 2; ++with_stop) {
        QueryOptions q;
        q.question = Question(0);
        q.max_tokens = 24;
        auto plain = engine->Query(id, q);
        ASSERT_TRUE(plain.ok());
        if (with_stop == 1) {  // stop in the middle of what the plain answer says
            ASSERT_GE(plain->text.size(), 4U);
            q.stop = {plain->text.substr(plain->text.size() / 2, 2)};
        }
        std::string streamed;
        int n_pieces = 0;
        q.on_text = [&](std::string_view piece) {
            streamed += piece;
            ++n_pieces;
        };
        auto answer = engine->Query(id, q);
        ASSERT_TRUE(answer.ok());
        EXPECT_EQ(streamed, answer->text);
        EXPECT_GE(n_pieces, 1);
        if (with_stop == 1) {
            EXPECT_EQ(answer->stop_reason, StopReason::kStopString);
            EXPECT_EQ(streamed.find(q.stop[0]), std::string::npos);
        }
    }
}

// A cancelled query ends with kAborted at the next step and leaves its session as before; a
// cancelled waiting query never starts.
TEST_P(ServingHooks, CancelledQueriesEndAndRollBack) {
    auto engine = OpenEngine(TestOptions(GetParam()));
    ASSERT_TRUE(engine);
    auto id = *engine->CreateSession({.prefix = "Notes."});
    ASSERT_TRUE(engine->Append(id, DataText(0)).ok());
    const int n_before = engine->Info(id)->n_cached;
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    QueryOptions q;
    q.question = Question(1);
    q.max_tokens = 64;
    q.ignore_eog = true;
    q.cancel = cancel;
    auto running = *engine->SubmitQuery(id, q);
    auto waiting = *engine->SubmitQuery(id, q);  // same session: waits for the first
    engine->Step();
    engine->Step();
    cancel->store(true);
    engine->Step();
    auto finished = engine->TakeFinished();
    ASSERT_EQ(finished.size(), 2U);
    for (const FinishedQuery& f : finished) {
        EXPECT_TRUE(f.id == running || f.id == waiting);
        EXPECT_EQ(f.answer.status().code(), StatusCode::kAborted);
    }
    EXPECT_EQ(engine->Info(id)->n_cached, n_before);
    EXPECT_FALSE(engine->HasWork());
    q.cancel.reset();
    q.max_tokens = 4;
    EXPECT_TRUE(engine->Query(id, q).ok()) << "the session still answers";
}

// max_context bounds a session below its slot; the refusal says so.
TEST_P(ServingHooks, MaxContextBoundsTheSession) {
    auto engine = OpenEngine(TestOptions(GetParam()));
    ASSERT_TRUE(engine);
    SessionOptions so{.prefix = "Notes."};
    so.max_context = 64;
    auto id = engine->CreateSession(so);
    ASSERT_TRUE(id.ok());
    EXPECT_EQ(engine->Info(*id)->n_ctx, 64);
    std::string big;
    while (static_cast<int>(engine->model().Tokenize(big, false)->size()) < 80) {
        big += DataText(static_cast<int>(big.size()));
    }
    EXPECT_EQ(engine->Append(*id, big).status().code(), StatusCode::kContextFull);
    so.max_context = 1;
    EXPECT_EQ(engine->CreateSession(so).status().code(), StatusCode::kContextFull);
    so.max_context = -1;
    EXPECT_EQ(engine->CreateSession(so).status().code(), StatusCode::kInvalidArgument);
}

// Special-token markup is data unless asked for; models without a chat template say so.
TEST_P(ServingHooks, SpecialTokensAndChatTemplates) {
    auto engine = OpenEngine(TestOptions(GetParam()));
    ASSERT_TRUE(engine);
    const Model& m = engine->model();
    if (m.ChatTemplate()) {
        auto chat = m.ApplyChatTemplate({{"user", "Hello"}});
        ASSERT_TRUE(chat.ok()) << chat.status().ToString();
        EXPECT_NE(chat->find("Hello"), std::string::npos);
    } else {
        auto chat = m.ApplyChatTemplate({{"user", "Hello"}});
        EXPECT_EQ(chat.status().code(), StatusCode::kInvalidArgument);
        EXPECT_NE(chat.status().message().find("chat template"), std::string::npos);
    }
    // Special-token markup in data stays data (tokenized as text); only a rendered chat
    // template's prompt parses it. Each model's own markup: ChatML's for the twin, the SPM
    // control tokens for stories260K.
    int n_markups = 0;
    for (const char* markup : {"<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s>", "</s>"}) {
        auto as_special = m.Tokenize(markup, false, true);
        ASSERT_TRUE(as_special.ok());
        if (as_special->size() != 1 || *m.Tokenize(markup, false, false) == *as_special) {
            continue;  // not one of this model's special tokens
        }
        n_markups += 1;
        const Token token = as_special->front();
        const std::string text = std::string("a ") + markup + "user b";
        auto plain = engine->TokenizeContext(text, false);
        auto special = engine->TokenizeContext(text, true);
        ASSERT_TRUE(plain.ok() && special.ok());
        if (m.AddsBos()) {  // the context's own BOS is not the markup's
            ASSERT_FALSE(plain->empty() || special->empty());
            plain->erase(plain->begin());
            special->erase(special->begin());
        }
        EXPECT_EQ(std::count(plain->begin(), plain->end(), token), 0)
            << markup << " in data became the special token";
        EXPECT_EQ(std::count(special->begin(), special->end(), token), 1)
            << markup << " in a chat prompt is the special token";
        EXPECT_NE(*plain, *special);
    }
    EXPECT_GE(n_markups, 1) << "none of the markups is one of this model's special tokens";
}

INSTANTIATE_TEST_SUITE_P(Models, ServingHooks, ::testing::ValuesIn(TestModelNames()));

}  // namespace
}  // namespace kvs::test
