// What the engine records about itself each step (docs/architecture.md, "Observability").

#include "runtime/engine.h"

#include <algorithm>

namespace kvs {

StepMetrics::StepMetrics(MetricsRegistry& m)
    : steps(m.GetCounter("kvs_steps_total", "Engine steps that decoded a batch")),
      step_ms(m.GetHistogram("kvs_step_ms", "Wall time of one engine step", kMsBuckets)),
      decode_ms(m.GetHistogram("kvs_decode_ms", "Time inside llama_decode per step", kMsBuckets)),
      overhead_ms(m.GetHistogram(
          "kvs_overhead_ms", "Step time outside llama_decode (our own work)", kMsBuckets)),
      query_tokens(m.GetCounter(
          "kvs_batch_tokens_total", "Tokens put into batches, by kind", {{"kind", "query"}})),
      ingest_tokens(m.GetCounter("kvs_batch_tokens_total", "", {{"kind", "ingest"}})),
      stateless_tokens(m.GetCounter("kvs_batch_tokens_total", "", {{"kind", "stateless"}})),
      latency_bound_steps(
          m.GetCounter("kvs_latency_bound_steps_total", "Steps whose ingest the target cut")),
      sessions(m.GetGauge("kvs_sessions", "Sessions, resident and parked")),
      sessions_resident(m.GetGauge("kvs_sessions_resident", "Sessions holding a KV slot")),
      slots(m.GetGauge("kvs_slots", "KV slots for sessions")),
      queries_waiting(m.GetGauge("kvs_queries_waiting", "Queries queued, not started")),
      queries_running(m.GetGauge("kvs_queries_running", "Queries started, not finished")),
      pending_ingest_tokens(
          m.GetGauge("kvs_pending_ingest_tokens", "Accepted data tokens not yet in the KV cache")),
      ingest_lag_ms(m.GetHistogram(
          "kvs_ingest_lag_ms", "Admission of an append to all of it in the KV cache", kMsBuckets)),
      ingest_behind_ms(m.GetGauge("kvs_ingest_behind_ms",
                                  "Age of the oldest admitted append not yet in the KV cache "
                                  "(how far ingest is behind now)")),
      kv_cells_used(m.GetGauge("kvs_kv_cells_used", "KV cells holding session data")),
      kv_cells_total(m.GetGauge("kvs_kv_cells_total", "KV cells of the context")),
      cost_fixed_ms(
          m.GetGauge("kvs_cost_fixed_ms", "Step cost model: fixed milliseconds per step")),
      cost_ms_per_token(
          m.GetGauge("kvs_cost_ms_per_token", "Step cost model: milliseconds per batch token")),
      parked_host_bytes(m.GetGauge("kvs_parked_host_bytes", "Parked session state in RAM")),
      parked_disk_bytes(m.GetGauge("kvs_parked_disk_bytes", "Parked session state on disk")),
      flash_tokens(m.GetCounter("kvs_batch_tokens_total", "", {{"kind", "flash"}})),
      flash_evaluations(
          m.GetCounter("kvs_flash_evaluations_total", "Flash questions evaluated to the end")),
      flash_changed(m.GetCounter("kvs_flash_changed_total",
                                 "Flash evaluations whose answer differed from the previous one")),
      flash_dropped(m.GetCounter("kvs_flash_dropped_total",
                                 "Flash evaluations dropped because newer data arrived")),
      flash_finished_overtaken(
          m.GetCounter("kvs_flash_finished_overtaken_total",
                       "Flash evaluations finished although newer data arrived (cheaper)")),
      flash_preempted(m.GetCounter("kvs_flash_preempted_total",
                                   "Flash evaluations rolled back for a live query")),
      flash_joins(m.GetCounter("kvs_flash_joins_total",
                               "Live queries answered by the flash evaluation running when "
                               "they came, instead of computing the question again")),
      flash_live_results(m.GetCounter("kvs_flash_live_results_total",
                                      "Live answers to a registered question kept as its result "
                                      "(the version is not evaluated again)")),
      flash_hits(m.GetCounter("kvs_flash_hits_total", "Queries answered from a cached result")),
      flash_misses(m.GetCounter("kvs_flash_misses_total",
                                "Queries for a registered question whose result was not current")),
      flash_budget_waits(m.GetCounter("kvs_flash_budget_waits_total",
                                      "Steps in which the time cap held flash work back")),
      flash_engine_ms(m.GetGauge("kvs_flash_engine_ms",
                                 "Engine time spent on flash work (cumulative, share of steps)")),
      flash_eval_ms(m.GetHistogram(
          "kvs_flash_eval_ms", "Time from a flash evaluation's start to its answer", kMsBuckets)),
      flash_questions(m.GetGauge("kvs_flash_questions", "Registered flash questions")),
      flash_stale(m.GetGauge("kvs_flash_stale", "Flash questions without a current result")),
      flash_running(m.GetGauge("kvs_flash_running", "Flash evaluations in progress")),
      flash_lag_versions(m.GetGauge("kvs_flash_lag_versions",
                                    "Largest number of versions a flash result is behind")),
      flash_lag_ms(m.GetGauge("kvs_flash_lag_ms",
                              "Longest time a flash question has been without a current result")),
      flash_budget_credit_ms(m.GetGauge("kvs_flash_budget_credit_ms",
                                        "Flash time budget left (negative: debt being repaid)")),
      spec_drafted(m.GetCounter("kvs_spec_drafted_tokens_total",
                                "Speculative decoding: tokens drafted by prompt lookup")),
      spec_accepted(m.GetCounter("kvs_spec_accepted_tokens_total",
                                 "Drafted tokens the model agreed with (each saved a step)")),
      spec_rejected(m.GetCounter("kvs_spec_rejected_tokens_total",
                                 "Drafted tokens rejected (removed from the KV cache)")),
      spec_acceptance(m.GetHistogram("kvs_spec_acceptance",
                                     "Accepted / drafted tokens of each answer that drafted any",
                                     LinearBuckets(0.1, 0.1, 10))) {}

void Engine::RecordStep(const StepReport& r, const Status& decoded) {
    StepMetrics& m = step_metrics_;
    m.steps.Add();
    if (!decoded.ok()) {  // rare: looked up when it happens
        metrics_
            .GetCounter("kvs_decode_errors_total", "Steps whose llama_decode failed",
                        {{"code", StatusCodeName(decoded.code())}})
            .Add();
    }
    m.step_ms.Observe(r.total_ms);
    m.decode_ms.Observe(r.decode_ms);
    m.overhead_ms.Observe(r.total_ms - r.decode_ms);
    m.query_tokens.Add(static_cast<std::uint64_t>(r.n_query_tokens));
    m.ingest_tokens.Add(static_cast<std::uint64_t>(r.n_ingest_tokens));
    m.stateless_tokens.Add(static_cast<std::uint64_t>(r.n_stateless_tokens));
    m.flash_tokens.Add(static_cast<std::uint64_t>(r.n_flash_tokens));
    if (r.latency_bound) {
        m.latency_bound_steps.Add();
    }
    RecordGauges();
}

void Engine::RecordGauges() {
    int n_resident = 0;
    std::int64_t n_pending = 0;
    std::int64_t n_cells = 0;
    const auto now = Clock::now();
    double behind_ms = 0;  // the oldest accepted append not yet in the KV cache
    for (const auto& [id, s] : sessions_) {
        n_resident += s.resident() ? 1 : 0;
        n_pending += s.n_pending_tokens;
        if (!s.pending.empty()) {
            behind_ms = std::max(behind_ms, MsBetween(s.pending.front().accepted, now));
        }
        n_cells += s.resident() ? s.n_tokens() : 0;
    }
    StepMetrics& m = step_metrics_;
    m.sessions.Set(n_sessions());
    m.sessions_resident.Set(n_resident);
    m.slots.Set(slots_.n_slots());
    m.queries_waiting.Set(static_cast<double>(waiting_.size()));
    m.queries_running.Set(
        static_cast<double>(queries_.size() - waiting_.size() - n_flash_running()));
    m.pending_ingest_tokens.Set(static_cast<double>(n_pending));
    m.ingest_behind_ms.Set(behind_ms);
    m.kv_cells_used.Set(static_cast<double>(n_cells));
    m.kv_cells_total.Set(static_cast<double>(context_->n_seq_max()) * context_->n_ctx_seq());
    m.cost_fixed_ms.Set(cost_.fixed_ms());
    m.cost_ms_per_token.Set(cost_.ms_per_token());
    const ParkStats p = park_->stats();
    m.parked_host_bytes.Set(static_cast<double>(p.host_bytes));
    m.parked_disk_bytes.Set(static_cast<double>(p.disk_bytes));
    RecordFlashGauges();
}

void Engine::CountRefusal(const Status& status) {
    if (!status.ok()) {
        metrics_
            .GetCounter("kvs_refusals_total", "Work refused at submission, by reason",
                        {{"reason", StatusCodeName(status.code())}})
            .Add();
    }
}

}  // namespace kvs
