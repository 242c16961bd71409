#pragma once
// What `kvstream bench SCENARIO` writes: queries.csv (one row per question), summary.json (every
// system's figures), report.md (tables, targets, how to reproduce) and SVG plots of latency
// against context size and against the bars between questions.

#include "bench/driver.h"
#include "bench/scenario.h"
#include "common/status.h"

#include <optional>
#include <string>
#include <vector>

namespace kvs::bench {

// llama-bench's floor for a question's token counts at a depth: a prefill of `prompt` tokens and
// `gen` single-token decodes on `depth` tokens of context.
struct Floor {
    int depth = 0;
    int prompt = 0;
    int gen = 0;
    double pp_ms = 0;
    double tg_ms = 0;

    double total_ms() const { return pp_ms + tg_ms; }
};

struct RunInfo {
    std::string scenario_path;
    std::string command;  // how to reproduce
    std::string model;
    std::string machine;  // cores, CPU, memory
    std::string started_utc;
    int threads = 0;
    int ctx_per_session = 0;
    double wall_s = 0;
};

Status WriteResults(const std::string& out_dir,
                    const Scenario& scenario,
                    const RunInfo& info,
                    const std::vector<SystemRun>& runs,
                    const std::optional<Floor>& floor);

// The machine in one line: cores, CPU model, memory (from /proc).
std::string MachineDescription();

}  // namespace kvs::bench
