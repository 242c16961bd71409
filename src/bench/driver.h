#pragma once
// Replays a scenario against one system: start its server, warm the sessions up to their
// starting contexts, then the measured phase (bars arriving at the scenario's rate, questions on
// their schedule), then stop it. Every system sees the same bars, questions and arrival times.

#include "bench/scenario.h"
#include "bench/systems.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kvs::bench {

// One question as asked and answered.
struct QuerySample {
    SystemKind system = SystemKind::kKvstream;
    int round = 0;
    int session = 0;
    bool warmup = false;     // asked before the measured phase (llama-server's cold prefill)
    double at_s = 0;         // sent, seconds since the measured phase began
    double late_ms = 0;      // how much later than scheduled it was sent (the previous answer
                             // of the session was still running)
    int bars_since = 0;      // bars that arrived since the session's previous question
    int context_tokens = 0;  // the session's text in tokens when asked (prefix + bars)
    int question_tokens = 0;
    Answer answer;
    std::string error;  // empty when answered
};

// One system's run.
struct SystemRun {
    SystemKind system = SystemKind::kKvstream;
    int round = 0;
    double start_s = 0;     // server start until healthy
    double warmup_s = 0;    // sessions brought to their starting context
    double measured_s = 0;  // the measured phase, wall clock
    double cpu_s = 0;       // the server's CPU seconds during the measured phase
    double peak_rss_mib = 0;
    int bars = 0;                       // bars delivered during the measured phase
    std::vector<double> ack_ms;         // append acknowledgements (kvstream)
    std::vector<double> ingest_lag_ms;  // acknowledgement -> ingested (kvstream)
    std::optional<double> overhead_share;
    // The server's metrics (kvstream: /metrics) at the end of the measured phase minus at its
    // start, by series ("kvs_flash_evaluations_total"); empty for the other systems.
    std::map<std::string, double> metrics_delta;
    std::vector<QuerySample> samples;
    std::string error;  // the run stopped early: why
};

// The scenario's data, prepared once for every system.
struct Workload {
    std::vector<SessionStart> starts;
    std::vector<std::vector<Bar>> measured_bars;      // per session, in arrival order
    std::vector<int> start_tokens;                    // per session: prefix + history
    std::vector<std::vector<int>> bar_tokens;         // per session: each measured bar's tokens
    std::vector<std::vector<std::string>> questions;  // per session, in asking order
    std::vector<std::vector<int>> question_tokens;
    std::vector<std::vector<std::string>> flash_asks;  // kvstream-flash's, on the same schedule
    std::vector<std::vector<int>> flash_ask_tokens;
    std::vector<std::vector<double>> question_times;  // Poisson mode: seconds into the phase
};

// Runs one system; errors in single questions are recorded in the samples, a failed start or
// warm-up in SystemRun::error.
SystemRun RunSystem(const Scenario& scenario,
                    SystemKind kind,
                    int round,
                    const ServerSetup& setup,
                    const Workload& workload);

}  // namespace kvs::bench
