// Flash queries on the engine thread: registering questions, evaluating them in idle time as
// background work of the step plan, yielding to live queries and new data, and publishing
// results to the board (for cached answers) and as events (for subscribers).
//
// An evaluation is a QueryJob with `flash` set. It runs on a copy of the session's sequence
// (llama_memory_seq_cp into one of the `flash_max_running` copy sequences; in split mode a copy
// of the stream, done by the next decode before it computes anything), after the session's
// tokens, exactly like a live query at that version, so its answer is the answer a live query
// computes at the same version. The session itself stays free: its data is ingested and its live
// queries run while the evaluation runs, and nothing waits for it. It starts only on a resident,
// idle session with no queued data and no waiting query, only while the time budget allows and a
// copy sequence is free; in the plan it is kBackground work: it runs only in steps without live
// queries, in the room ingest leaves. An ask that joins it gives it query priority.
//
// The copy's K/V rows move at the next llama_decode, so the source's rows must not be rewritten
// by anything but a decode until then: parking (the only path that hands a slot to another
// session's saved state) cancels the session's evaluations first.

#include "runtime/engine.h"

#include <algorithm>
#include <tuple>

namespace kvs {

Result<Engine::FlashQuestion> Engine::MakeFlashQuestion(const Session& s,
                                                        const FlashOptions& options) const {
    KV_RETURN_IF_ERROR(ValidateFlash(options));
    FlashQuestion q;
    q.options = options;
    q.options.question = std::string(TrimQuestion(options.question));
    auto prompt = model_->Tokenize(q.options.question, false);
    if (!prompt.ok()) {
        return prompt.status();
    }
    if (prompt->empty()) {
        return InvalidArgument("the flash question has no tokens");
    }
    const int n_needed = static_cast<int>(prompt->size()) + options.max_tokens;
    const int n_most = s.n_ctx - s.n_prefix_tokens;
    if (n_needed > n_most) {
        return ContextFull("the flash question needs " + std::to_string(n_needed) +
                           " tokens (question + max_tokens); the session holds at most " +
                           std::to_string(n_most) + " after its prefix");
    }
    q.prompt = std::move(prompt).value();
    q.stale_since = Clock::now();
    return q;
}

Result<FlashId> Engine::AddFlash(SessionId id, const FlashOptions& options, FlashId forced) {
    const Session* s = FindSession(id);
    if (s == nullptr) {
        return NotFound("unknown session " + std::to_string(id));
    }
    std::vector<FlashQuestion>& list = flash_[id];
    if (static_cast<int>(list.size()) >= options_.max_flash_per_session) {
        const Status st(StatusCode::kResourceExhausted,
                        "session " + std::to_string(id) + " has its maximum of " +
                            std::to_string(options_.max_flash_per_session) + " flash questions");
        CountRefusal(st);
        return st;
    }
    auto q = MakeFlashQuestion(*s, options);
    if (!q.ok()) {
        CountRefusal(q.status());
        return q.status();
    }
    for (const FlashQuestion& x : list) {
        if (QueryMatchesFlash(FlashQuery(q->options), x.options)) {
            const Status st = InvalidArgument("the question is already registered as flash " +
                                              std::to_string(x.id));
            CountRefusal(st);
            return st;
        }
    }
    q->id = forced > 0 ? forced : next_flash_;
    next_flash_ = std::max(next_flash_, q->id + 1);
    board_.AddQuestion(id, q->id, q->options);
    list.push_back(std::move(q).value());
    RecordFlashGauges();
    return list.back().id;
}

Status Engine::RemoveFlash(SessionId id, FlashId flash) {
    FlashQuestion* q = FindFlash(id, flash);
    if (q == nullptr) {
        return NotFound("session " + std::to_string(id) + " has no flash question " +
                        std::to_string(flash));
    }
    if (q->running != 0) {
        CancelFlash(queries_.at(q->running));
    }
    std::erase_if(flash_.at(id), [flash](const FlashQuestion& x) { return x.id == flash; });
    board_.RemoveQuestion(id, flash);
    RecordFlashGauges();
    return Status::Ok();
}

Result<std::vector<FlashInfo>> Engine::ListFlash(SessionId id) const {
    const Session* s = FindSession(id);
    if (s == nullptr) {
        return NotFound("unknown session " + std::to_string(id));
    }
    return board_.List(s->tenant, id);
}

Engine::FlashQuestion* Engine::FindFlash(SessionId session, FlashId flash) {
    auto it = flash_.find(session);
    if (it == flash_.end()) {
        return nullptr;
    }
    auto q = std::find_if(it->second.begin(), it->second.end(),
                          [flash](const FlashQuestion& x) { return x.id == flash; });
    return q == it->second.end() ? nullptr : &*q;
}

bool Engine::IsStale(const Session& s, const FlashQuestion& q) const {
    return !q.has_result || q.version < s.accepted_version;
}

bool Engine::FlashAwaited(const Session& s) const {
    auto it = flash_.find(s.id);
    if (it == flash_.end()) {
        return false;
    }
    for (const FlashQuestion& q : it->second) {
        if (q.running == 0) {
            continue;
        }
        const std::vector<QueryId>& joined = queries_.at(q.running).joined;
        if (std::any_of(joined.begin(), joined.end(),
                        [this](QueryId id) { return queries_.contains(id); })) {
            return true;
        }
    }
    return false;
}

void Engine::CancelSessionFlash(SessionId id) {
    auto it = flash_.find(id);
    if (it == flash_.end()) {
        return;
    }
    for (FlashQuestion& q : it->second) {
        if (q.running != 0) {
            CancelFlash(queries_.at(q.running));
        }
    }
}

void Engine::OnAccepted(Session& s) {
    board_.SetAccepted(s.id, s.accepted_version);
    auto it = flash_.find(s.id);
    if (it == flash_.end()) {
        return;
    }
    for (FlashQuestion& q : it->second) {
        if (q.stale_since == Clock::time_point{}) {  // was current until now
            q.stale_since = Clock::now();
        }
    }
}

void Engine::PreemptFlash() {
    std::vector<QueryId> running;
    for (const auto& [id, job] : queries_) {
        if (job.flash != 0 && job.run) {
            running.push_back(id);
        }
    }
    for (QueryId id : running) {
        QueryJob& job = queries_.at(id);
        const Session& s = sessions_.at(job.session);
        // An ask this evaluation answers joins it; it then finishes at query priority. Other
        // live queries do not wait for it: it runs on a copy, and only in steps without them.
        if (JoinFlash(job)) {
            continue;
        }
        if (s.accepted_version <= job.target_version || job.finish_overtaken) {
            continue;
        }
        // Newer data was accepted: drop or finish, whichever is cheaper (query/flash.h).
        FlashQuestion& q = *FindFlash(s.id, job.flash);
        if (FinishOvertakenEvaluation(job.run->prefilling(), job.run->n_answer_tokens(),
                                      job.options.max_tokens, q.n_drops)) {
            job.finish_overtaken = true;
            step_metrics_.flash_finished_overtaken.Add();
        } else {
            q.n_drops += 1;
            step_metrics_.flash_dropped.Add();
            CancelFlash(job);
        }
    }
}

std::vector<const Engine::FlashQuestion*> Engine::ReadyFlash(const Session& s) const {
    std::vector<const FlashQuestion*> ready;
    auto it = flash_.find(s.id);
    // A live query's tokens on the sequence would be copied too: the session must be idle.
    if (it == flash_.end() || !s.resident() || s.busy() || !s.pending.empty() ||
        QueryWaitsFor(s.id)) {
        return ready;
    }
    for (const FlashQuestion& q : it->second) {
        const bool fits = static_cast<int>(q.prompt.size()) + q.options.max_tokens <= s.room();
        if (q.running == 0 && IsStale(s, q) && fits) {
            ready.push_back(&q);
        }
    }
    return ready;
}

bool Engine::FlashCanStart() const {
    if (!copies_.CanAcquire()) {  // one copy per running evaluation
        return false;
    }
    return std::any_of(flash_.begin(), flash_.end(), [this](const auto& kv) {
        return !ReadyFlash(sessions_.at(kv.first)).empty();
    });
}

void Engine::StartFlash() {
    const auto now = Clock::now();
    flash_budget_.Refill(std::chrono::duration<double, std::milli>(now - budget_refilled_).count());
    budget_refilled_ = now;
    // Every question that could start: a session's questions start together when copies are
    // free, so they evaluate in the same steps (and with other sessions' evaluations).
    std::vector<std::tuple<Clock::time_point, FlashId, SessionId>> candidates;
    for (const auto& [id, list] : flash_) {
        for (const FlashQuestion* q : ReadyFlash(sessions_.at(id))) {
            candidates.emplace_back(q->stale_since, q->id, id);
        }
    }
    if (candidates.empty() || !copies_.CanAcquire()) {
        return;
    }
    if (!flash_budget_.CanStart()) {
        step_metrics_.flash_budget_waits.Add();
        return;
    }
    // When the cap bites, the most stale questions go first.
    std::sort(candidates.begin(), candidates.end());
    for (const auto& [since, flash, session] : candidates) {
        if (!copies_.CanAcquire()) {
            break;
        }
        StartFlashJob(sessions_.at(session), *FindFlash(session, flash));
    }
}

void Engine::StartFlashJob(Session& s, FlashQuestion& q) {
    QueryJob job;
    job.id = next_query_++;
    job.session = s.id;
    job.options = FlashQuery(q.options);
    job.prompt = q.prompt;
    job.flash = q.id;
    job.arrival = ++tick_;
    job.submitted = job.started = Clock::now();
    // Its own copy of the session at this version (not last_used: background work does not
    // keep a session hot).
    const std::optional<SeqId> copy = copies_.Acquire();
    KV_CHECK(copy.has_value(), "a flash evaluation started without a free copy sequence");
    context_->CopySequence(s.seq, *copy);
    job.scratch = *copy;
    job.target_version = s.version;
    job.run.emplace(*copy, s.n_tokens(), job.prompt, job.options);
    job.run->EnableDrafting(options_.draft, s.tokens);
    q.running = job.id;
    queries_.emplace(job.id, std::move(job));
}

void Engine::CancelFlash(QueryJob& job) {
    if (FlashQuestion* q = FindFlash(job.session, job.flash); q != nullptr) {
        q->running = 0;
    }
    RequeueJoined(job);
    ReleaseQuery(job);
    queries_.erase(job.id);
}

void Engine::FinishFlash(QueryJob& job, const Answer& answer) {
    const Session& s = sessions_.at(job.session);
    FlashQuestion& q = *FindFlash(job.session, job.flash);
    q.n_drops = 0;
    RecordFlashResult(s, q, answer, job.target_version);  // the version its copy held
    AnswerJoined(job, answer);
    step_metrics_.flash_evaluations.Add();
    step_metrics_.flash_eval_ms.Observe(answer.timings.total_ms);
    CancelFlash(job);  // frees the copy and forgets the job
}

void Engine::RecordFlashResult(const Session& s,
                               FlashQuestion& q,
                               const Answer& answer,
                               std::uint64_t version) {
    if (q.has_result && q.version > version) {
        return;  // a live answer at a newer version came first (KeepLiveResult)
    }
    const bool changed = !q.has_result || answer.text != q.answer;
    q.has_result = true;
    q.version = version;
    q.answer = answer.text;
    // Still stale when data arrived meanwhile (finished anyway): stale from about now.
    q.stale_since = version >= s.accepted_version ? Clock::time_point{} : Clock::now();
    FlashResult r;
    r.answer = answer.text;
    r.tokens = answer.tokens;
    r.stop_reason = answer.stop_reason;
    r.version = version;
    r.confidence = answer.confidence;
    r.eval_ms = answer.timings.total_ms;
    r.finished_at = Clock::now();
    board_.Publish(s.id, q.id, r);

    EngineEvent e{EngineEvent::Kind::kFlash, s.id, version, r.eval_ms};
    e.flash = {q.id, q.options.question, r.answer, r.confidence, changed};
    events_.push_back(std::move(e));
    step_metrics_.flash_changed.Add(changed ? 1 : 0);
}

bool Engine::JoinFlash(QueryJob& eval) {
    const Session& s = sessions_.at(eval.session);
    const FlashQuestion& q = *FindFlash(s.id, eval.flash);
    // 0. Asks that joined earlier and were cancelled by their clients no longer hold it.
    std::erase_if(eval.joined, [this](QueryId id) { return !queries_.contains(id); });
    // 1. Asks of this session for this question that the evaluation's version satisfies
    // (it answers the version its copy was taken at).
    for (auto it = waiting_.begin(); it != waiting_.end();) {
        QueryJob& ask = queries_.at(*it);
        if (ask.session != s.id || ask.target_version > eval.target_version ||
            !QueryMatchesFlash(ask.options, q.options)) {
            ++it;
            continue;
        }
        // 2. It stops waiting and is answered by the evaluation, which now runs at query
        // priority (CollectWork) outside the flash time cap.
        ask.joined_at = Clock::now();
        eval.joined.push_back(ask.id);
        step_metrics_.flash_joins.Add();
        it = waiting_.erase(it);
    }
    return !eval.joined.empty();
}

void Engine::AnswerJoined(QueryJob& eval, const Answer& answer) {
    const auto now = Clock::now();
    const auto first_token =
        eval.started + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double, std::milli>(answer.timings.prefill_ms));
    for (QueryId id : eval.joined) {
        auto it = queries_.find(id);
        if (it == queries_.end()) {
            continue;  // cancelled by its client meanwhile
        }
        QueryJob& ask = it->second;
        Answer a = answer;
        a.joined = true;
        a.flash_id = eval.flash;
        a.version = eval.target_version;
        // Its time, from joining: the evaluation's prefill still to come, then its decoding.
        QueryTimings& t = a.timings;
        t.wait_ms = WaitMs(ask);
        t.queued_ms = MsBetween(ask.submitted, ask.joined_at);
        t.prefill_ms = MsBetween(ask.joined_at, std::max(ask.joined_at, first_token));
        t.total_ms = MsBetween(ask.joined_at, now);
        t.decode_ms = std::max(0.0, t.total_ms - t.prefill_ms);
        if (ask.options.on_text) {
            ask.options.on_text(a.text);
        }
        finished_.push_back({id, std::move(a)});
        queries_.erase(it);
    }
    eval.joined.clear();
}

void Engine::RequeueJoined(QueryJob& eval) {
    if (eval.joined.empty()) {
        return;  // the common case: nobody joined, the queue keeps its order
    }
    for (QueryId id : eval.joined) {
        if (queries_.contains(id)) {
            waiting_.push_back(id);
        }
    }
    eval.joined.clear();
    std::stable_sort(waiting_.begin(), waiting_.end(), [this](QueryId a, QueryId b) {
        return queries_.at(a).arrival < queries_.at(b).arrival;
    });
}

void Engine::KeepLiveResult(const QueryJob& job, const Answer& answer) {
    auto it = flash_.find(job.session);
    if (it == flash_.end()) {
        return;
    }
    const Session& s = sessions_.at(job.session);
    for (FlashQuestion& q : it->second) {
        // The same prompt tokens and settings: exactly what an evaluation would compute.
        if (q.prompt == job.prompt && QueryMatchesFlash(job.options, q.options) &&
            (!q.has_result || q.version < s.version)) {
            RecordFlashResult(s, q, answer, s.version);
            step_metrics_.flash_live_results.Add();
            return;
        }
    }
}

void Engine::RecordFlashGauges() {
    const auto now = Clock::now();
    int n_questions = 0;
    int n_stale = 0;
    std::uint64_t lag_versions = 0;
    double lag_ms = 0;
    for (const auto& [id, list] : flash_) {
        const Session& s = sessions_.at(id);
        for (const FlashQuestion& q : list) {
            ++n_questions;
            if (!IsStale(s, q)) {
                continue;
            }
            ++n_stale;
            lag_versions =
                std::max(lag_versions, s.accepted_version - (q.has_result ? q.version : 0));
            lag_ms = std::max(
                lag_ms, std::chrono::duration<double, std::milli>(now - q.stale_since).count());
        }
    }
    StepMetrics& m = step_metrics_;
    m.flash_questions.Set(n_questions);
    m.flash_stale.Set(n_stale);
    m.flash_running.Set(n_flash_running());
    m.flash_lag_versions.Set(static_cast<double>(lag_versions));
    m.flash_lag_ms.Set(lag_ms);
    m.flash_budget_credit_ms.Set(flash_budget_.credit_ms());
}

}  // namespace kvs
