// The synchronous face of the engine: submit, then run steps until the work is done. The
// stateless path (QueryStateless) prefills the whole context from scratch for every question on
// a scratch sequence: the baseline the demo and benchmarks compare against, and the oracle the
// tests check stateful answers with.

#include "runtime/engine.h"

#include <algorithm>

namespace kvs {

Status Engine::RunUntil(const std::function<bool()>& done) {
    while (!done()) {
        const StepReport report = Step();
        if (report.n_tokens == 0 && !done()) {
            return Internal("the engine stalled: queued work cannot make progress");
        }
    }
    return Status::Ok();
}

void Engine::RunUntilIdle() {
    while (HasWork() && Step().n_tokens > 0) {
    }
}

namespace {

// Takes the finished query `id` out of `finished`, if it is there.
std::optional<Result<Answer>> TakeAnswer(std::vector<FinishedQuery>& finished, QueryId id) {
    auto it = std::find_if(finished.begin(), finished.end(),
                           [id](const FinishedQuery& f) { return f.id == id; });
    if (it == finished.end()) {
        return std::nullopt;
    }
    Result<Answer> answer = std::move(it->answer);
    finished.erase(it);
    return answer;
}

}  // namespace

Result<AppendResult> Engine::Append(SessionId id, std::string_view text) {
    const AppendRequest request{id, std::string(text)};
    return std::move(AppendMany({&request, 1}).front());
}

Result<AppendResult> Engine::AppendTokens(SessionId id, const Tokens& tokens) {
    auto queued = SubmitAppendTokens(id, tokens);
    if (!queued.ok()) {
        return queued;
    }
    const Session& s = *FindSession(id);
    KV_RETURN_IF_ERROR(RunUntil([&s, &queued] { return s.version >= queued->version; }));
    return AppendResult{queued->n_tokens_appended, s.n_tokens(), queued->version, true};
}

std::vector<Result<AppendResult>> Engine::AppendMany(std::span<const AppendRequest> requests) {
    std::vector<Result<AppendResult>> results;
    for (const auto& r : requests) {
        results.push_back(SubmitAppend(r.session, r.text));
    }
    const Status st = RunUntil([&] {
        for (std::size_t i = 0; i < requests.size(); ++i) {
            const Session* s = FindSession(requests[i].session);
            if (results[i].ok() && s != nullptr && s->version < results[i]->version) {
                return false;
            }
        }
        return true;
    });
    for (std::size_t i = 0; i < requests.size(); ++i) {
        if (!results[i].ok()) {
            continue;
        }
        if (!st.ok()) {
            results[i] = st;
            continue;
        }
        results[i]->n_tokens = FindSession(requests[i].session)->n_tokens();
        results[i]->ingested = true;
    }
    return results;
}

Result<Answer> Engine::Query(SessionId id, const QueryOptions& options) {
    const QueryRequest request{id, options};
    return std::move(QueryMany({&request, 1}).front());
}

std::vector<Result<Answer>> Engine::QueryMany(std::span<const QueryRequest> requests) {
    std::vector<Result<QueryId>> ids;
    for (const auto& r : requests) {
        ids.push_back(SubmitQuery(r.session, r.options));
    }
    std::vector<std::optional<Result<Answer>>> answers(requests.size());
    const Status st = RunUntil([&] {
        bool all = true;
        for (std::size_t i = 0; i < ids.size(); ++i) {
            if (ids[i].ok() && !answers[i]) {
                answers[i] = TakeAnswer(finished_, *ids[i]);
                all = all && answers[i].has_value();
            }
        }
        return all;
    });
    std::vector<Result<Answer>> results;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (!ids[i].ok()) {
            results.emplace_back(ids[i].status());
        } else if (!answers[i]) {
            results.emplace_back(st.ok() ? Internal("query lost") : st);
        } else {
            results.push_back(std::move(*answers[i]));
        }
    }
    return results;
}

Result<Answer> Engine::QueryStateless(const Tokens& context, const QueryOptions& options) {
    auto id = SubmitStateless(context, options);
    if (!id.ok()) {
        return id.status();
    }
    std::optional<Result<Answer>> answer;
    KV_RETURN_IF_ERROR(RunUntil([&] {
        answer = TakeAnswer(finished_, *id);
        return answer.has_value();
    }));
    return std::move(*answer);
}

}  // namespace kvs
