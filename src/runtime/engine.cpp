#include "runtime/engine.h"

#include "engine/backend.h"
#include "engine/batch.h"

#include <algorithm>

namespace kvs {
namespace {

std::string RoomMessage(const Session& s, int n_needed, const char* what) {
    return "session " + std::to_string(s.id) + " has room for " + std::to_string(s.room()) +
           " more tokens (" + std::to_string(s.n_tokens()) + " of " + std::to_string(s.n_ctx) +
           " used); the " + what + " needs " + std::to_string(n_needed);
}

}  // namespace

Result<std::unique_ptr<Engine>> Engine::Open(const EngineOptions& options) {
    if (options.n_sessions < 1 || options.n_sessions > 255) {
        return InvalidArgument("n_sessions must be 1..255");
    }
    if (options.prefill_chunk_tokens < 0 || options.prefill_chunk_tokens > options.n_batch) {
        return InvalidArgument("prefill_chunk_tokens must be 0..n_batch");
    }
    InitBackend();
    auto model = Model::Load({.path = options.model_path, .n_gpu_layers = options.n_gpu_layers});
    if (!model.ok()) {
        return model.status();
    }
    ContextOptions copts;
    copts.n_seq_max = options.n_sessions + 1;  // + the scratch sequence of the stateless path
    copts.n_ctx_seq = options.n_ctx_session;
    copts.n_batch = options.n_batch;
    copts.n_ubatch = options.n_batch;
    copts.n_threads = options.n_threads;
    copts.flash_attn = options.flash_attn;
    auto context = Context::Create(**model, copts);
    if (!context.ok()) {
        return context.status();
    }
    return std::unique_ptr<Engine>(
        new Engine(options, std::move(model).value(), std::move(context).value()));
}

Engine::Engine(EngineOptions options,
               std::unique_ptr<Model> model,
               std::unique_ptr<Context> context)
    : options_(std::move(options)),
      model_(std::move(model)),
      context_(std::move(context)),
      slots_(0, options_.n_sessions),
      scratch_seq_(options_.n_sessions) {
    if (options_.prefill_chunk_tokens == 0) {
        options_.prefill_chunk_tokens = context_->n_batch();
    }
}

Session* Engine::FindSession(SessionId id) {
    auto it = sessions_.find(id);
    return it == sessions_.end() ? nullptr : &it->second;
}

const Session* Engine::FindSession(SessionId id) const {
    auto it = sessions_.find(id);
    return it == sessions_.end() ? nullptr : &it->second;
}

Status Engine::ValidateText(std::string_view text, const char* what) const {
    if (text.size() > options_.max_text_bytes) {
        return TooLarge(std::string(what) + " of " + std::to_string(text.size()) +
                        " bytes exceeds the limit of " + std::to_string(options_.max_text_bytes));
    }
    return Status::Ok();
}

Result<SessionId> Engine::CreateSession(const SessionOptions& options) {
    KV_RETURN_IF_ERROR(ValidateText(options.prefix, "prefix"));
    Session s;
    auto prefix = model_->Tokenize(options.prefix, model_->AddsBos());
    if (!prefix.ok()) {
        return prefix.status();
    }
    s.n_ctx = context_->n_ctx_seq();
    if (static_cast<int>(prefix->size()) > s.n_ctx) {
        return ContextFull("the prefix has " + std::to_string(prefix->size()) +
                           " tokens; a session holds at most " + std::to_string(s.n_ctx));
    }
    const auto seq = slots_.Acquire();
    if (!seq) {
        return Status(StatusCode::kResourceExhausted,
                      "all " + std::to_string(slots_.n_slots()) + " session slots are in use");
    }
    s.id = next_id_++;
    s.seq = *seq;
    if (!prefix->empty()) {
        const PrefillJob job{s.seq, 0, *prefix};
        if (Status st = Prefill({&job, 1}); !st.ok()) {
            slots_.Release(s.seq);
            return st;
        }
    }
    s.tokens = std::move(prefix).value();
    s.n_prefix_tokens = s.n_tokens();
    const SessionId id = s.id;
    sessions_.emplace(id, std::move(s));
    return id;
}

Result<AppendResult> Engine::Append(SessionId id, std::string_view text) {
    const AppendRequest request{id, std::string(text)};
    return std::move(AppendMany({&request, 1}).front());
}

Result<AppendResult> Engine::AppendTokens(SessionId id, const Tokens& tokens) {
    for (Token t : tokens) {
        if (t < 0 || t >= model_->n_vocab()) {
            return InvalidArgument("token " + std::to_string(t) + " is outside the vocabulary");
        }
    }
    PendingAppend append{id, tokens};
    return std::move(CommitAppends({&append, 1}).front());
}

std::vector<Result<AppendResult>> Engine::AppendMany(std::span<const AppendRequest> requests) {
    std::vector<PendingAppend> appends;
    appends.reserve(requests.size());
    for (const auto& r : requests) {
        appends.push_back({r.session, TokenizeAppend(r)});
    }
    return CommitAppends(appends);
}

Result<Tokens> Engine::TokenizeAppend(const AppendRequest& request) const {
    if (FindSession(request.session) == nullptr) {
        return NotFound("unknown session " + std::to_string(request.session));
    }
    KV_RETURN_IF_ERROR(ValidateText(request.text, "append"));
    if (request.text.empty()) {
        return InvalidArgument("the appended text is empty");
    }
    return model_->Tokenize(request.text, false);
}

std::vector<Result<AppendResult>> Engine::CommitAppends(std::span<PendingAppend> appends) {
    // 1. Plan: a session's appends are concatenated into one prefill job, so its positions stay
    //    contiguous; an append that does not fit is refused and the rest go on.
    std::vector<Result<AppendResult>> results;
    std::map<SessionId, Tokens> planned;  // per session: tokens to prefill, in request order
    for (auto& a : appends) {
        const Session* s = FindSession(a.session);
        if (!a.tokens.ok()) {
            results.emplace_back(a.tokens.status());
        } else if (s == nullptr) {
            results.emplace_back(NotFound("unknown session " + std::to_string(a.session)));
        } else if (a.tokens->empty()) {
            results.emplace_back(InvalidArgument("nothing to append"));
        } else if (Tokens& pending = planned[a.session];
                   a.tokens->size() + pending.size() > static_cast<std::size_t>(s->room())) {
            const auto n_needed = static_cast<int>(a.tokens->size() + pending.size());
            results.emplace_back(ContextFull(RoomMessage(*s, n_needed, "append")));
        } else {
            pending.insert(pending.end(), a.tokens->begin(), a.tokens->end());
            results.emplace_back(AppendResult{});
        }
    }
    // 2. Prefill everything in shared batches; on failure no session changes.
    std::vector<PrefillJob> jobs;
    for (const auto& [id, pending] : planned) {
        if (!pending.empty()) {
            const Session* s = FindSession(id);
            jobs.push_back({s->seq, s->n_tokens(), pending});
        }
    }
    const Status prefilled = Prefill(jobs);
    // 3. Commit in request order: the tokens join the session and its version advances.
    for (std::size_t i = 0; i < appends.size(); ++i) {
        if (!results[i].ok()) {
            continue;
        }
        if (!prefilled.ok()) {
            results[i] = prefilled;
            continue;
        }
        Session& s = *FindSession(appends[i].session);
        const Tokens& t = *appends[i].tokens;
        s.tokens.insert(s.tokens.end(), t.begin(), t.end());
        s.version += 1;
        results[i] = AppendResult{static_cast<int>(t.size()), s.n_tokens(), s.version};
    }
    return results;
}

Status Engine::Prefill(std::span<const PrefillJob> jobs) {
    // Pack the jobs into batches of at most n_batch tokens: each job (one per sequence) adds at
    // most prefill_chunk_tokens per batch, in position order. No logits are requested. On a
    // failed decode every job's sequence is rolled back to its start.
    std::vector<int> done(jobs.size(), 0);
    std::size_t n_left = 0;
    for (const auto& j : jobs) {
        n_left += j.tokens.size();
    }
    Batch batch(context_->n_batch());
    while (n_left > 0) {
        batch.Clear();
        for (std::size_t k = 0; k < jobs.size() && batch.room() > 0; ++k) {
            const auto& j = jobs[k];
            const int n_job_left = static_cast<int>(j.tokens.size()) - done[k];
            const int n = std::min({n_job_left, options_.prefill_chunk_tokens, batch.room()});
            for (int i = 0; i < n; ++i, ++done[k]) {
                batch.Add(j.tokens[done[k]], j.start_pos + done[k], j.seq, false);
            }
            n_left -= static_cast<std::size_t>(n);
        }
        if (Status st = context_->Decode(batch); !st.ok()) {
            for (const auto& j : jobs) {
                context_->RemoveTokens(j.seq, j.start_pos, -1);
            }
            return st;
        }
    }
    return Status::Ok();
}

Result<QueryRun> Engine::PrepareQuery(const Session& s, const QueryOptions& options) const {
    KV_RETURN_IF_ERROR(ValidateQuery(options));
    auto question = model_->Tokenize(options.question, false);
    if (!question.ok()) {
        return question.status();
    }
    const int n_needed = static_cast<int>(question->size()) + options.max_tokens;
    if (n_needed > s.room()) {
        return ContextFull(RoomMessage(s, n_needed, "query (question + max_tokens)"));
    }
    return QueryRun(s.seq, s.n_tokens(), std::move(question).value(), options);
}

Result<Answer> Engine::Query(SessionId id, const QueryOptions& options) {
    const QueryRequest request{id, options};
    return std::move(QueryMany({&request, 1}).front());
}

std::vector<Result<Answer>> Engine::QueryMany(std::span<const QueryRequest> requests) {
    std::vector<Result<Answer>> results;
    std::vector<QueryRun> runs;
    std::vector<std::size_t> run_request;
    std::vector<SessionId> seen;
    for (std::size_t i = 0; i < requests.size(); ++i) {
        const Session* s = FindSession(requests[i].session);
        if (s == nullptr) {
            results.emplace_back(
                NotFound("unknown session " + std::to_string(requests[i].session)));
            continue;
        }
        if (std::find(seen.begin(), seen.end(), s->id) != seen.end()) {
            results.emplace_back(InvalidArgument("one batch of queries may ask each session once"));
            continue;
        }
        auto run = PrepareQuery(*s, requests[i].options);
        if (!run.ok()) {
            results.emplace_back(run.status());
            continue;
        }
        seen.push_back(s->id);
        runs.push_back(std::move(run).value());
        run_request.push_back(i);
        results.emplace_back(Answer{});
    }
    const Status st = RunQueries(runs);
    for (std::size_t k = 0; k < runs.size(); ++k) {
        const std::size_t i = run_request[k];
        if (!st.ok()) {
            results[i] = st;
            continue;
        }
        Answer answer = runs[k].TakeAnswer();
        answer.version = FindSession(requests[i].session)->version;
        results[i] = std::move(answer);
    }
    return results;
}

Status Engine::RunQueries(std::span<QueryRun> runs) {
    // Continuous batching: every step gives each unfinished run its next tokens (a prompt chunk
    // or its last sampled token), decodes once, and lets each run sample. Afterwards every
    // sequence is rolled back to where its query started.
    Batch batch(context_->n_batch());
    Status status = Status::Ok();
    while (status.ok()) {
        batch.Clear();
        for (auto& run : runs) {
            run.Schedule(batch, batch.room());
        }
        if (batch.empty()) {
            break;
        }
        status = context_->Decode(batch);
        if (status.ok()) {
            for (auto& run : runs) {
                run.Consume(*context_, *model_);
            }
        }
    }
    for (const auto& run : runs) {
        const bool ok = context_->RemoveTokens(run.seq(), run.start_pos(), -1);
        KV_CHECK(ok, "rolling a query back failed (attention-only models always can)");
    }
    return status;
}

Result<Tokens> Engine::TokenizeContext(std::string_view text) const {
    KV_RETURN_IF_ERROR(ValidateText(text, "context"));
    return model_->Tokenize(text, model_->AddsBos());
}

Result<SessionInfo> Engine::Info(SessionId id) const {
    const Session* s = FindSession(id);
    if (s == nullptr) {
        return NotFound("unknown session " + std::to_string(id));
    }
    return SessionInfo{s->id,
                       s->n_tokens(),
                       s->n_prefix_tokens,
                       s->version,
                       s->n_ctx,
                       s->room(),
                       context_->SeqPosMax(s->seq) + 1};
}

Result<Tokens> Engine::SessionTokens(SessionId id) const {
    const Session* s = FindSession(id);
    if (s == nullptr) {
        return NotFound("unknown session " + std::to_string(id));
    }
    return s->tokens;
}

Status Engine::CloseSession(SessionId id) {
    Session* s = FindSession(id);
    if (s == nullptr) {
        return NotFound("unknown session " + std::to_string(id));
    }
    context_->ClearSequence(s->seq);
    slots_.Release(s->seq);
    sessions_.erase(id);
    return Status::Ok();
}

}  // namespace kvs
