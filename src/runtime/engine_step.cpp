// One engine step: restore parked sessions that have work, start waiting queries, let the
// scheduler policy plan one batch, run one llama_decode, post what finished.

#include "runtime/engine.h"

#include <algorithm>

namespace kvs {
namespace {

double MsSince(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

StepReport Engine::Step() {
    const auto started = Clock::now();
    StepReport report;
    ++tick_;
    // 1. Residency and admission: live queries first (asks join the evaluations that answer
    // them), then flash evaluations on copies of sessions with nothing else to do.
    DropCancelled();
    RestoreWaiting();
    PreemptFlash();
    AdmitQueries();
    StartFlash();
    // 2. Plan: the policy decides what this batch holds (decode > query prefill > the rest).
    const std::vector<WorkItem> work = CollectWork();
    if (work.empty()) {
        RecordGauges();  // admission may have changed them (cancelled or failed queries)
        return report;
    }
    PlanOptions po;
    po.n_batch = context_->n_batch();
    po.target_step_ms = StepTargetMs(work);
    po.idle_target_step_ms = IdleTargetMs();
    po.min_idle_tokens = std::max(po.min_idle_tokens, options_.min_ingest_tokens);
    po.min_ingest_tokens = n_starved_steps_ >= kStarvedSteps ? options_.min_ingest_tokens : 0;
    const StepPlan plan = PlanStep(work, po, cost_);
    n_starved_steps_ = IngestStarved(work, plan) ? n_starved_steps_ + 1 : 0;
    BuildBatch(plan, report);
    if (batch_.empty()) {
        RecordGauges();  // nothing could be added (a window that failed to roll): lag still grows
        return report;
    }
    // 3. Decode once.
    const auto decode_started = Clock::now();
    const Status decoded = context_->Decode(batch_);
    report.decode_ms = MsSince(decode_started);
    if (decoded.ok()) {
        cost_.Observe(batch_.size(), report.decode_ms);
        if (report.n_flash_tokens > 0) {  // charged by its share of the batch
            const double ms = report.decode_ms * report.n_flash_tokens / report.n_tokens;
            flash_budget_.Spend(ms);
            step_metrics_.flash_engine_ms.Add(ms);
        }
        if (report.n_query_tokens == report.n_tokens && report.n_query_tokens <= 8) {
            constexpr double kAlpha = 0.1;  // EWMA of decode-only steps
            decode_step_ms_ = decode_step_ms_ == 0
                                  ? report.decode_ms
                                  : (1 - kAlpha) * decode_step_ms_ + kAlpha * report.decode_ms;
        }
    }
    // 4. Post: sample and finish queries, commit ingested appends.
    FinishQueries(decoded);
    CommitIngest(decoded);
    report.total_ms = MsSince(started);
    report.latency_bound = plan.latency_bound;
    RecordStep(report, decoded);
    return report;
}

double Engine::StepTargetMs(std::span<const WorkItem> work) const {
    if (options_.step_target != StepTarget::kAuto) {  // the policy's 0: no target
        return options_.step_target == StepTarget::kFixed ? options_.target_step_ms : 0.0;
    }
    int n_decode = 0;
    int n_prefill = 0;  // the policy never cuts query tokens
    for (const WorkItem& w : work) {
        n_decode += w.kind == WorkKind::kDecode ? 1 : 0;
        n_prefill += w.kind == WorkKind::kQueryPrefill ? w.n_tokens_left : 0;
    }
    if (n_decode + n_prefill == 0) {
        return 0.0;  // no query waits: ingest may fill the batch
    }
    // A decode-only step is measured directly (the linear cost model is least accurate at a
    // handful of tokens); a step with query prefill is predicted.
    const double query_only_ms =
        n_prefill == 0 && decode_step_ms_ > 0
            ? decode_step_ms_
            : cost_.PredictMs(std::min(n_decode + n_prefill, context_->n_batch()));
    return kAutoTargetFactor * query_only_ms;
}

double Engine::IdleTargetMs() const {
    if (options_.step_target != StepTarget::kAuto) {
        return options_.step_target == StepTarget::kFixed ? options_.target_step_ms : 0.0;
    }
    const double decode_ms = decode_step_ms_ > 0 ? decode_step_ms_ : cost_.PredictMs(1);
    return kIdleTargetFactor * std::max(decode_ms, cost_.fixed_ms());
}

bool Engine::IngestStarved(std::span<const WorkItem> work, const StepPlan& plan) const {
    int wanted = 0;
    int planned = 0;
    for (const WorkItem& w : work) {
        wanted += w.kind == WorkKind::kIngest ? w.n_tokens_left : 0;
    }
    for (const PlannedChunk& c : plan.chunks) {
        planned += c.kind == WorkKind::kIngest ? c.n_tokens : 0;
    }
    return wanted > planned && planned < options_.min_ingest_tokens;
}

void Engine::DropCancelled() {
    std::vector<QueryId> cancelled;
    for (const auto& [id, job] : queries_) {
        if (job.options.cancel && job.options.cancel->load(std::memory_order_relaxed)) {
            cancelled.push_back(id);
        }
    }
    for (QueryId id : cancelled) {
        std::erase(waiting_, id);
        FailQuery(queries_.at(id), Status(StatusCode::kAborted, "cancelled by the client"));
    }
}

void Engine::AdmitQueries() {
    for (auto it = waiting_.begin(); it != waiting_.end();) {
        QueryJob& job = queries_.at(*it);
        const Status st = job.session == 0 ? StartStateless(job) : StartStateful(job);
        if (st.code() == StatusCode::kResourceExhausted) {  // not now: keep waiting
            ++it;
            continue;
        }
        it = waiting_.erase(it);
        if (!st.ok()) {
            FailQuery(job, st);
        }
    }
}

Status Engine::StartStateless(QueryJob& job) {
    const auto seq = scratch_.Acquire();
    if (!seq) {
        return Status(StatusCode::kResourceExhausted, "no free scratch sequence");
    }
    job.scratch = *seq;
    job.started = Clock::now();
    job.run.emplace(*seq, 0, job.prompt, job.options);
    job.run->EnableDrafting(options_.draft, {});  // the prompt holds the context
    return Status::Ok();
}

Status Engine::StartStateful(QueryJob& job) {
    Session& s = sessions_.at(job.session);
    if (!s.resident() || s.busy() || s.version < job.target_version || !s.at_boundary()) {
        return Status(StatusCode::kResourceExhausted, "session not ready");
    }
    const int n_needed = static_cast<int>(job.prompt.size()) + job.options.max_tokens;
    if (n_needed > s.room()) {
        if (s.on_full == OnFull::kReject) {
            return ContextFull("session " + std::to_string(s.id) + " has room for " +
                               std::to_string(s.room()) + " more tokens; the query needs " +
                               std::to_string(n_needed));
        }
        KV_RETURN_IF_ERROR(RollWindow(s, n_needed));
    }
    s.running_query = job.id;
    s.last_used = tick_;
    job.started = Clock::now();
    job.run.emplace(s.seq, s.n_tokens(), job.prompt, job.options);
    job.run->EnableDrafting(options_.draft, s.tokens);
    return Status::Ok();
}

std::vector<WorkItem> Engine::CollectWork() {
    std::vector<WorkItem> work;
    // Speculative decoding only while few sequences decode: a drafted token costs compute, and
    // with many decoders the step is no longer bound by reading the weights (query/draft.h).
    // Evaluations nobody waits for do not count: they never share a step with live queries.
    int n_decoding = 0;
    for (const auto& [id, job] : queries_) {
        n_decoding +=
            job.run && !job.unawaited_flash() && !job.run->prefilling() && !job.run->done() ? 1 : 0;
    }
    const bool speculate = n_decoding <= options_.draft_max_decoders;
    for (auto& [id, job] : queries_) {
        if (!job.run) {
            continue;
        }
        WorkKind kind = WorkKind::kDecode;
        if (job.unawaited_flash()) {
            // Nobody waits for it (it runs on a copy: not even its session's data): idle steps
            // only. Asks that joined it give it query priority.
            kind = WorkKind::kBackground;
        } else if (job.run->prefilling()) {
            kind = job.session == 0 ? WorkKind::kStatelessPrefill : WorkKind::kQueryPrefill;
        }
        work.push_back({id, kind, job.run->WantedTokens(speculate), job.arrival, 0});
    }
    for (const auto& [id, s] : sessions_) {
        if (!s.resident() || s.busy() || s.n_ready_tokens() == 0) {
            continue;
        }
        if (QueryWaitsFor(id)) {
            // Only the data its query waits for, at query priority (read your writes).
            const int n = std::min(CatchUpTokens(s), options_.prefill_chunk_tokens);
            if (n > 0) {
                work.push_back(
                    {id, WorkKind::kQueryPrefill, n, s.last_used, s.tenant, WorkOwner::kSession});
            }
            continue;
        }
        const int n = std::min(s.n_ready_tokens(), options_.prefill_chunk_tokens);
        work.push_back({id, WorkKind::kIngest, n, s.last_used, s.tenant, WorkOwner::kSession});
    }
    return work;
}

int Engine::CatchUpTokens(const Session& s) const {
    for (QueryId q : waiting_) {
        const QueryJob& job = queries_.at(q);
        if (job.session != s.id) {
            continue;
        }
        int n = 0;  // up to the target version, and at least to the end of a half-ingested append
        for (const PendingAppend& a : s.pending) {
            if (a.held || (a.version > job.target_version && (n > 0 || a.n_done == 0))) {
                break;
            }
            n += static_cast<int>(a.tokens.size()) - a.n_done;
        }
        return n;
    }
    return 0;
}

bool Engine::QueryWaitsFor(SessionId id) const {
    return std::any_of(waiting_.begin(), waiting_.end(),
                       [&](QueryId q) { return queries_.at(q).session == id; });
}

void Engine::BuildBatch(const StepPlan& plan, StepReport& report) {
    batch_.Clear();
    batch_queries_.clear();
    batch_ingest_.clear();
    for (const PlannedChunk& c : plan.chunks) {
        if (c.owner == WorkOwner::kSession) {  // ingest, or catch-up at query priority
            report.n_ingest_tokens += AddIngest(sessions_.at(c.id), c.n_tokens);
            continue;
        }
        QueryJob& job = queries_.at(c.id);
        const int n = job.run->Schedule(batch_, c.n_tokens);
        batch_queries_.push_back(c.id);
        if (job.unawaited_flash()) {  // the time cap's, at any priority
            report.n_flash_tokens += n;
        } else if (c.kind == WorkKind::kStatelessPrefill) {
            report.n_stateless_tokens += n;
        } else {
            report.n_query_tokens += n;
        }
    }
    report.n_tokens = batch_.size();
}

int Engine::AddIngest(Session& s, int n_tokens) {
    // Roll the window first when the session cannot hold the next tokens.
    const int n_front_left =
        static_cast<int>(s.pending.front().tokens.size()) - s.pending.front().n_done;
    if (std::min(n_tokens, n_front_left) > s.room()) {
        if (!RollWindow(s, std::min(n_tokens, n_front_left)).ok()) {
            return 0;
        }
    }
    n_tokens = std::min(n_tokens, s.room());
    IngestMark mark{s.id, s.n_tokens(), {}};
    int added = 0;
    for (PendingAppend& a : s.pending) {
        if (added == n_tokens || a.held) {
            break;
        }
        mark.n_done_before.push_back(a.n_done);
        const int n = std::min(n_tokens - added, static_cast<int>(a.tokens.size()) - a.n_done);
        for (int i = 0; i < n; ++i) {
            const Token t = a.tokens[static_cast<std::size_t>(a.n_done++)];
            batch_.Add(t, s.n_tokens(), s.seq, false);
            s.tokens.push_back(t);
        }
        added += n;
    }
    s.last_used = tick_;
    batch_ingest_.push_back(std::move(mark));
    return added;
}

void Engine::CommitIngest(const Status& decoded) {
    for (const IngestMark& mark : batch_ingest_) {
        Session& s = sessions_.at(mark.session);
        const int n = s.n_tokens() - mark.n_tokens_before;
        if (!decoded.ok()) {  // undo: the tokens leave the cache and wait for another step
            context_->RemoveTokens(s.seq, mark.n_tokens_before, -1);
            s.tokens.resize(static_cast<std::size_t>(mark.n_tokens_before));
            for (std::size_t i = 0; i < mark.n_done_before.size(); ++i) {
                s.pending[i].n_done = mark.n_done_before[i];
            }
            continue;
        }
        s.n_pending_tokens -= n;
        while (!s.pending.empty() &&
               s.pending.front().n_done == static_cast<int>(s.pending.front().tokens.size())) {
            s.version = s.pending.front().version;
            const Clock::time_point admitted = s.pending.front().accepted;
            step_metrics_.ingest_lag_ms.Observe(MsBetween(admitted, Clock::now()));
            s.pending.pop_front();
            if (s.version > 0) {
                events_.push_back({EngineEvent::Kind::kIngested, s.id, s.version, 0});
            }
        }
    }
}

void Engine::FinishQueries(const Status& decoded) {
    for (QueryId id : batch_queries_) {
        QueryJob& job = queries_.at(id);
        if (!decoded.ok()) {
            if (job.flash != 0) {
                CancelFlash(job);  // evaluated again later
            } else {
                FailQuery(job, decoded);
            }
            continue;
        }
        job.run->Consume(*context_, *model_);
        if (const int drafted = job.run->last_drafted(); drafted > 0) {
            step_metrics_.spec_drafted.Add(drafted);
            step_metrics_.spec_accepted.Add(job.run->last_accepted());
            step_metrics_.spec_rejected.Add(drafted - job.run->last_accepted());
        }
        if (!job.run->done()) {
            continue;
        }
        Answer answer = job.run->TakeAnswer();
        if (answer.timings.n_drafted_tokens > 0) {
            step_metrics_.spec_acceptance.Observe(
                static_cast<double>(answer.timings.n_accepted_tokens) /
                answer.timings.n_drafted_tokens);
        }
        if (job.flash != 0) {
            FinishFlash(job, answer);
            continue;
        }
        answer.timings.wait_ms = WaitMs(job);
        answer.timings.queued_ms = MsBetween(job.submitted, job.started);
        if (job.session != 0) {
            answer.version = sessions_.at(job.session).version;
            KeepLiveResult(job, answer);
        } else {
            answer.timings.n_context_tokens = 0;  // the whole prompt was computed
        }
        ReleaseQuery(job);
        finished_.push_back({id, std::move(answer)});
        queries_.erase(id);
    }
}

double Engine::MsBetween(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double, std::milli>(to - from).count();
}

double Engine::WaitMs(const QueryJob& job) {
    if (job.options.received == Clock::time_point{}) {
        return 0;  // submitted straight to the engine (synchronous use)
    }
    return std::max(0.0, MsBetween(job.options.received, job.submitted));
}

void Engine::ReleaseQuery(QueryJob& job) {
    if (!job.run) {
        return;
    }
    if (job.scratch >= 0) {  // stateless, or a flash evaluation's copy
        context_->ClearSequence(job.scratch);
        (job.session == 0 ? scratch_ : copies_).Release(job.scratch);
    } else {
        Session& s = sessions_.at(job.session);
        const bool ok = context_->RemoveTokens(s.seq, job.run->start_pos(), -1);
        KV_CHECK(ok, "rolling a query back failed (attention-only models always can)");
        s.running_query = 0;
    }
    job.run.reset();
}

void Engine::FailQuery(QueryJob& job, Status status) {
    ReleaseQuery(job);
    const QueryId id = job.id;
    finished_.push_back({id, std::move(status)});
    queries_.erase(id);
}

}  // namespace kvs
