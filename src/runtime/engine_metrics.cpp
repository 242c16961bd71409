// What the engine records about itself each step (docs/architecture.md, "Observability").

#include "runtime/engine.h"

namespace kvs {

void Engine::RecordStep(const StepReport& r, const Status& decoded) {
    auto& m = metrics_;
    m.GetCounter("kvs_steps_total", "Engine steps that decoded a batch").Add();
    if (!decoded.ok()) {
        m.GetCounter("kvs_decode_errors_total", "Steps whose llama_decode failed",
                     {{"code", StatusCodeName(decoded.code())}})
            .Add();
    }
    m.GetHistogram("kvs_step_ms", "Wall time of one engine step", kMsBuckets).Observe(r.total_ms);
    m.GetHistogram("kvs_decode_ms", "Time inside llama_decode per step", kMsBuckets)
        .Observe(r.decode_ms);
    m.GetHistogram("kvs_overhead_ms", "Step time outside llama_decode (our own work)", kMsBuckets)
        .Observe(r.total_ms - r.decode_ms);
    const char* kHelp = "Tokens put into batches, by kind";
    m.GetCounter("kvs_batch_tokens_total", kHelp, {{"kind", "query"}}).Add(r.n_query_tokens);
    m.GetCounter("kvs_batch_tokens_total", kHelp, {{"kind", "ingest"}}).Add(r.n_ingest_tokens);
    m.GetCounter("kvs_batch_tokens_total", kHelp, {{"kind", "stateless"}})
        .Add(r.n_stateless_tokens);
    if (r.latency_bound) {
        m.GetCounter("kvs_latency_bound_steps_total", "Steps whose ingest the target cut").Add();
    }
    RecordGauges();
}

void Engine::RecordGauges() {
    int n_resident = 0;
    std::int64_t n_pending = 0;
    std::int64_t n_cells = 0;
    for (const auto& [id, s] : sessions_) {
        n_resident += s.resident() ? 1 : 0;
        n_pending += s.n_pending_tokens;
        n_cells += s.resident() ? s.n_tokens() : 0;
    }
    auto& m = metrics_;
    const auto total_cells = static_cast<double>(context_->n_seq_max()) * context_->n_ctx_seq();
    m.GetGauge("kvs_sessions", "Sessions, resident and parked").Set(n_sessions());
    m.GetGauge("kvs_sessions_resident", "Sessions holding a KV slot").Set(n_resident);
    m.GetGauge("kvs_slots", "KV slots for sessions").Set(slots_.n_slots());
    m.GetGauge("kvs_queries_waiting", "Queries queued, not started")
        .Set(static_cast<double>(waiting_.size()));
    m.GetGauge("kvs_queries_running", "Queries started, not finished")
        .Set(static_cast<double>(queries_.size() - waiting_.size()));
    m.GetGauge("kvs_pending_ingest_tokens", "Accepted data tokens not yet in the KV cache")
        .Set(static_cast<double>(n_pending));
    m.GetGauge("kvs_kv_cells_used", "KV cells holding session data")
        .Set(static_cast<double>(n_cells));
    m.GetGauge("kvs_kv_cells_total", "KV cells of the context").Set(total_cells);
    m.GetGauge("kvs_cost_fixed_ms", "Step cost model: fixed milliseconds per step")
        .Set(cost_.fixed_ms());
    m.GetGauge("kvs_cost_ms_per_token", "Step cost model: milliseconds per batch token")
        .Set(cost_.ms_per_token());
    const ParkStats p = park_->stats();
    m.GetGauge("kvs_parked_host_bytes", "Parked session state in RAM")
        .Set(static_cast<double>(p.host_bytes));
    m.GetGauge("kvs_parked_disk_bytes", "Parked session state on disk")
        .Set(static_cast<double>(p.disk_bytes));
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
