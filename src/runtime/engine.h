#pragma once
// The engine: one model and one llama_context serving many sessions, each a KV sequence that is
// advanced as data arrives and answers questions by computing only the question's and the
// answer's tokens.
//
// This is the synchronous core. Every method runs on the calling thread, which must be the same
// thread for the Engine's whole life (libllama contexts are not thread-safe).
//
// Tokenization rule: every text segment (the prefix, each append, each question) is tokenized on
// its own and the tokens are concatenated; BOS leads a session when the model's tokenizer wants
// one. The stateless oracle for a session is exactly SessionTokens(id) + question tokens.

#include "common/status.h"
#include "common/tokens.h"
#include "engine/context.h"
#include "engine/model.h"
#include "query/query.h"
#include "session/session.h"
#include "session/slot_pool.h"

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kvs {

struct EngineOptions {
    std::string model_path;
    int n_sessions = 8;                    // resident sessions (one KV sequence each)
    int n_ctx_session = 4096;              // cells per session (rounded up to 256)
    int n_batch = 512;                     // most tokens per decode step
    int prefill_chunk_tokens = 0;          // data tokens per step for a session; 0: n_batch
    int n_threads = 0;                     // 0: all hardware threads
    bool flash_attn = false;               // measured slower on CPU at depth (docs/benchmarks.md)
    int n_gpu_layers = 0;                  // layers offloaded when libllama has a GPU backend
    std::size_t max_text_bytes = 1 << 20;  // one append or prefix
};

struct SessionOptions {
    std::string prefix;  // pinned text at the start (a system prompt); may be empty
};

struct SessionInfo {
    SessionId id = 0;
    int n_tokens = 0;  // tokens in the KV cache, prefix included
    int n_prefix_tokens = 0;
    std::uint64_t version = 0;
    int n_ctx = 0;     // capacity in tokens
    int room = 0;      // n_ctx - n_tokens
    int n_cached = 0;  // tokens the KV cache holds for the session (== n_tokens)
};

struct AppendResult {
    int n_tokens_appended = 0;
    int n_tokens = 0;  // the session's total afterwards
    std::uint64_t version = 0;
};

struct AppendRequest {
    SessionId session = 0;
    std::string text;
};

struct QueryRequest {
    SessionId session = 0;
    QueryOptions options;
};

class Engine {
public:
    // Loads the model and creates the context. Errors: kNotFound, kInvalidArgument, kUnavailable.
    static Result<std::unique_ptr<Engine>> Open(const EngineOptions& options);

    // Errors: kResourceExhausted (every slot taken), kInvalidArgument/kTooLarge (prefix),
    // kContextFull (the prefix does not fit a slot).
    Result<SessionId> CreateSession(const SessionOptions& options = {});

    // Tokenizes and prefills `text` (no logits requested). On any error the session is unchanged.
    // Errors: kNotFound, kInvalidArgument (empty, invalid UTF-8), kTooLarge, kContextFull.
    Result<AppendResult> Append(SessionId id, std::string_view text);

    // Appends already tokenized data (no BOS). Same errors as Append, minus UTF-8 checks;
    // kInvalidArgument for an empty list or a token outside the vocabulary.
    Result<AppendResult> AppendTokens(SessionId id, const Tokens& tokens);

    // Several appends prefilled together in shared batches; one result per request, in order.
    // Requests that fail validation do not stop the others.
    std::vector<Result<AppendResult>> AppendMany(std::span<const AppendRequest> requests);

    // Answers against the session's current contents, then rolls the question and answer back.
    // Errors: kNotFound, kInvalidArgument, kContextFull (question + max_tokens exceed the room).
    Result<Answer> Query(SessionId id, const QueryOptions& options);

    // Several queries decoded together in shared batches (each session at most once).
    std::vector<Result<Answer>> QueryMany(std::span<const QueryRequest> requests);

    // The conventional path: prefills `context` + question from scratch in a scratch sequence.
    // `context` is used as given (include BOS yourself, e.g. from SessionTokens or Tokenize).
    Result<Answer> QueryStateless(const Tokens& context, const QueryOptions& options);

    // Tokenizes `text` with a leading BOS when the model wants one (the stateless context of a
    // conventional engine, which tokenizes the whole accumulated text per request).
    Result<Tokens> TokenizeContext(std::string_view text) const;

    Result<SessionInfo> Info(SessionId id) const;

    // A copy of everything in the session's sequence.
    Result<Tokens> SessionTokens(SessionId id) const;

    // Errors: kNotFound.
    Status CloseSession(SessionId id);

    const Model& model() const { return *model_; }

    const Context& context() const { return *context_; }

    const EngineOptions& options() const { return options_; }

    int n_sessions() const { return static_cast<int>(sessions_.size()); }

private:
    Engine(EngineOptions options, std::unique_ptr<Model> model, std::unique_ptr<Context> context);

    struct PendingAppend {
        SessionId session;
        Result<Tokens> tokens;  // or why the append was refused before planning
    };

    struct PrefillJob {
        SeqId seq;
        Pos start_pos;
        std::span<const Token> tokens;
    };

    Session* FindSession(SessionId id);
    const Session* FindSession(SessionId id) const;
    Status ValidateText(std::string_view text, const char* what) const;
    Result<Tokens> TokenizeAppend(const AppendRequest& request) const;
    std::vector<Result<AppendResult>> CommitAppends(std::span<PendingAppend> appends);
    Status Prefill(std::span<const PrefillJob> jobs);
    Status RunQueries(std::span<QueryRun> runs);
    Result<QueryRun> PrepareQuery(const Session& session, const QueryOptions& options) const;

    EngineOptions options_;
    std::unique_ptr<Model> model_;
    std::unique_ptr<Context> context_;
    SlotPool slots_;
    SeqId scratch_seq_;
    std::map<SessionId, Session> sessions_;
    SessionId next_id_ = 1;
};

}  // namespace kvs
