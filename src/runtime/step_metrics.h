#pragma once
// The metrics the engine records every step (runtime/engine_metrics.cpp). Engine-internal.

#include "common/metrics.h"

namespace kvs {

// The metrics the engine records every step, looked up once (a registry lookup takes a mutex).
struct StepMetrics {
    explicit StepMetrics(MetricsRegistry& m);

    Counter& steps;
    Histogram& step_ms;
    Histogram& decode_ms;
    Histogram& overhead_ms;
    Counter& query_tokens;
    Counter& ingest_tokens;
    Counter& stateless_tokens;
    Counter& latency_bound_steps;
    Gauge& sessions;
    Gauge& sessions_resident;
    Gauge& slots;
    Gauge& queries_waiting;
    Gauge& queries_running;
    Gauge& pending_ingest_tokens;
    Histogram& ingest_lag_ms;
    Gauge& ingest_behind_ms;
    Gauge& kv_cells_used;
    Gauge& kv_cells_total;
    Gauge& cost_fixed_ms;
    Gauge& cost_ms_per_token;
    Gauge& parked_host_bytes;
    Gauge& parked_disk_bytes;
    // Flash queries.
    Counter& flash_tokens;
    Counter& flash_evaluations;
    Counter& flash_changed;
    Counter& flash_dropped;
    Counter& flash_finished_overtaken;
    Counter& flash_preempted;
    Counter& flash_joins;
    Counter& flash_live_results;
    Counter& flash_hits;
    Counter& flash_misses;
    Counter& flash_budget_waits;
    Gauge& flash_engine_ms;
    Histogram& flash_eval_ms;
    Gauge& flash_questions;
    Gauge& flash_stale;
    Gauge& flash_running;
    Gauge& flash_lag_versions;
    Gauge& flash_lag_ms;
    Gauge& flash_budget_credit_ms;
    Counter& spec_drafted;
    Counter& spec_accepted;
    Counter& spec_rejected;
    Histogram& spec_acceptance;
};

}  // namespace kvs
