// `kvstream load`: the multi-session scheduler benchmark. Sessions on one Runtime receive market
// bars on a schedule (a feeder thread) while questions arrive at random sessions on a seeded
// Poisson schedule (a client thread). It reports:
//   1. per-query latency under load against the same questions on the idle engine afterwards;
//   2. the scheduler's overhead (step time outside llama_decode) as a share of step time;
//   3. park and restore time per session length (an Engine of its own, RAM and optionally disk);
//   4. how many sessions fit a KV budget, resident and parked.
// Each figure is reproduced by the command line printed with the report (bench/scheduler.sh).
//
// The phases are in load_run.cpp and load_park.cpp, the report in load_report.cpp (see load.h);
// this file holds the options and the order of the phases.

#include "cli/commands.h"
#include "cli/defaults.h"
#include "cli/load.h"
#include "runtime/runtime.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

namespace kvs {
namespace load {
namespace {

// Runs the phases in order (the Runtime is gone before parking starts), then prints the report.
void RunLoad(LoadOptions o) {
    auto lengths = ParseIntList(o.park_lengths);
    if (!lengths.ok()) {
        throw std::runtime_error("--park-lengths: " + lengths.status().message());
    }
    std::sort(lengths->begin(), lengths->end());
    if (o.model.empty()) {
        auto made = EnsureShapeTwin("qwen2.5-0.5b", WeightType::kQ8_0);
        Check(made.status(), "making the default model");
        o.model = *made;
    }
    Report r;
    r.model = o.model;
    r.n_slots = o.n_slots > 0 ? o.n_slots : o.n_sessions;
    r.command = ReproduceCommand(o, o.model, r.n_slots);
    r.kv = ReadKvShape(o.model);
    std::printf("kvstream load: %s, %d sessions on %d slots x %d cells, %d threads, %.0f s\n",
                o.model.c_str(), o.n_sessions, r.n_slots, o.n_ctx, o.n_threads, o.duration_s);
    std::printf(
        "feed: %.2f bars/s/session (%s); a question every %.0f ms on average (Poisson), "
        "%d-token answers\n",
        o.bars_per_s, o.csv.empty() ? "synthetic" : "csv", o.question_gap_ms, o.max_tokens);
    std::fflush(stdout);
    r.run = RunQueries(o, o.model, r.n_slots);  // the Runtime is gone before parking starts
    MeasureParking(o, o.model, *lengths, false, r.park);
    if (!o.park_dir.empty()) {
        MeasureParking(o, o.model, *lengths, true, r.park);
    }
    PrintLatency(r);
    PrintSteps(o, r);
    PrintParking(r);
    PrintBudget(r);
    std::printf("\nreproduce: %s\n", r.command.c_str());
    if (o.metrics) {
        std::printf("\nengine metrics (whole run)\n%s", r.run.metrics_table.c_str());
    }
    if (!o.json.empty()) {
        WriteJson(o, r);
    }
}

// The sessions and the load on them: model, slots, feed, questions, length of the loaded phase.
void AddRunOptions(CLI::App* cmd, LoadOptions& o) {
    cmd->add_option("--model", o.model, "GGUF model (default: the Qwen2.5-0.5B shape twin)");
    cmd->add_option("--sessions", o.n_sessions, "Sessions")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    cmd->add_option("--slots", o.n_slots, "Resident KV slots (0: one per session)")
        ->check(CLI::Range(0, 255))
        ->capture_default_str();
    cmd->add_option("--ctx", o.n_ctx, "Cells per slot (the session window; it rolls when full)")
        ->check(CLI::Range(256, 1 << 20))
        ->capture_default_str();
    cmd->add_option("--bars-per-second-per-session", o.bars_per_s, "Feed rate")
        ->check(CLI::Range(0.001, 1000.0))
        ->capture_default_str();
    cmd->add_option("--csv", o.csv,
                    "Real bars from CSV files, as [SYMBOL=]PATH; session i replays file i mod n")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    cmd->add_option("--question-gap-ms", o.question_gap_ms,
                    "Mean gap between questions over all sessions (exponential)")
        ->check(CLI::Range(1.0, 1e7))
        ->capture_default_str();
    cmd->add_option("--duration-s", o.duration_s, "Length of the loaded phase")
        ->check(CLI::Range(1.0, 86400.0))
        ->capture_default_str();
    cmd->add_option("--warmup-bars", o.warmup_bars, "Bars per session before measuring")
        ->check(CLI::Range(1, 100000))
        ->capture_default_str();
    cmd->add_option("--max-staleness", o.max_staleness,
                    "Versions an answer may lag its session's accepted data (0: read your writes)")
        ->capture_default_str();
    cmd->add_option("--max-tokens", o.max_tokens, "Answer length (exact)")
        ->check(CLI::Range(1, 256))
        ->capture_default_str();
}

// The engine's settings, the seed, and the idle, park and output phases.
void AddPhaseOptions(CLI::App* cmd, LoadOptions& o) {
    cmd->add_option("--threads", o.n_threads, "Threads (0: all cores)")->capture_default_str();
    cmd->add_option("--step-target", o.step_target,
                    "Step latency target, with and without queries in the step: auto, off, or "
                    "milliseconds "
                    "(EngineOptions::step_target)")
        ->check([](const std::string& text) {
            auto parsed = ParseStepTarget(text);
            return parsed.ok() ? std::string() : parsed.status().message();
        })
        ->capture_default_str();
    cmd->add_option("--prefill-chunk-tokens", o.prefill_chunk_tokens,
                    "Data tokens per step for one session (0: n_batch; EngineOptions)")
        ->check(CLI::Range(0, 512))
        ->capture_default_str();
    cmd->add_option("--gpu-layers", o.n_gpu_layers, "Layers offloaded to a GPU backend, if built")
        ->capture_default_str();
    cmd->add_option("--seed", o.seed, "Seed of the feed and the question schedule")
        ->capture_default_str();
    cmd->add_option("--idle-queries", o.idle_queries, "Questions of the idle baseline")
        ->check(CLI::Range(1, 10000))
        ->capture_default_str();
    cmd->add_option("--park-lengths", o.park_lengths, "Session lengths (tokens) to park")
        ->capture_default_str();
    cmd->add_option("--park-reps", o.park_reps, "Park/restore repetitions per length")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    cmd->add_option("--park-dir", o.park_dir,
                    "Also park to disk in this folder (host budget 1 byte)");
    cmd->add_option("--json", o.json, "Write every figure to this JSON file");
    cmd->add_flag("--metrics", o.metrics, "Print the engine metrics table at the end");
}

}  // namespace
}  // namespace load

void AddLoadCommand(CLI::App& app) {
    auto o = std::make_shared<load::LoadOptions>();
    CLI::App* cmd = app.add_subcommand(
        "load",
        "Multi-session scheduler benchmark: live bars and Poisson questions on many sessions");
    // A later value of an option wins, so scripts can append overrides to their defaults.
    cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    load::AddRunOptions(cmd, *o);
    load::AddPhaseOptions(cmd, *o);
    cmd->callback([o] { load::RunLoad(*o); });
}

}  // namespace kvs
