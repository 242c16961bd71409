#pragma once
// The scenario's data, prepared once and replayed to every system: each session's feed, history
// and measured bars, questions and their arrival times (all from the scenario's seed), with token
// counts from the model's own tokenizer.

#include "bench/driver.h"
#include "bench/scenario.h"

#include <string>

namespace kvs::bench {

struct PreparedWorkload {
    Workload workload;
    int ctx_per_session = 0;  // tokens the largest session needs by the end, with room to spare
};

// Reads the feeds (under market_dir), renders and tokenizes the bars with the model at
// model_path, and draws the question schedule.
Result<PreparedWorkload> PrepareWorkload(const Scenario& scenario,
                                         const std::string& market_dir,
                                         const std::string& model_path);

}  // namespace kvs::bench
