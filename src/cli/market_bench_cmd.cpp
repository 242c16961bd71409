// `kvstream bench SCENARIO`: the streaming market benchmark. Replays a scenario file (sessions,
// feeds, rates, question mix) against kvstream's stateful sessions, its flash questions, its
// stateless endpoint and llama.cpp's llama-server, one system after another on the same model,
// machine and threads; writes queries.csv, summary.json, report.md and SVG plots.

#include "bench/driver.h"
#include "bench/report.h"
#include "bench/scenario.h"
#include "bench/workload.h"
#include "cli/commands.h"
#include "cli/defaults.h"
#include "common/stats.h"
#include "engine/backend.h"

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>

namespace kvs {
namespace {

namespace fs = std::filesystem;
using bench::Scenario;

struct MarketBenchOptions {
    std::string scenario;
    std::string out;
    std::string model;
    std::string market_dir;
    std::string llama_server;
    std::string llama_bench;
    std::string systems;
    double duration_s = 0;
    int threads = 0;
    bool no_floor = false;
};

std::string EnvOr(const char* name, const std::string& fallback) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' ? v : fallback;
}

// "20261127-013000" (compact, for folder names) or "2026-11-27 01:30 UTC".
std::string UtcNow(bool compact) {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    if (compact) {
        std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
    } else {
        std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
    }
    return buf;
}

// Runs a command and returns its standard output (llama-bench's JSON).
std::string Capture(const std::string& command) {
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
    if (!pipe) {
        throw std::runtime_error("cannot run " + command);
    }
    std::string out;
    std::array<char, 4096> buf{};
    while (std::size_t n = std::fread(buf.data(), 1, buf.size(), pipe.get())) {
        out.append(buf.data(), n);
    }
    return out;
}

std::string Quote(const std::string& s) {
    return "'" + s + "'";
}

std::string FormatNumber(double v) {
    std::ostringstream o;
    o << v;
    return o.str();
}

// llama-bench's floor for the question's token counts at the median context kvstream answered.
std::optional<bench::Floor> RunFloor(const MarketBenchOptions& o,
                                     const Scenario& sc,
                                     const std::string& model,
                                     const std::vector<bench::SystemRun>& runs) {
    std::vector<double> depths;
    std::vector<double> questions;
    for (const auto& r : runs) {
        for (const auto& s : r.samples) {
            if (r.system == bench::SystemKind::kKvstream && !s.warmup && s.error.empty()) {
                depths.push_back(s.context_tokens);
                questions.push_back(s.question_tokens);
            }
        }
    }
    if (depths.empty()) {
        return std::nullopt;
    }
    bench::Floor f;
    f.depth = static_cast<int>(Median(depths));
    f.prompt = static_cast<int>(Median(questions));
    f.gen = sc.answer_tokens;
    std::fprintf(stderr, "[floor] llama-bench -p %d -n %d -d %d (3 repetitions)\n", f.prompt, f.gen,
                 f.depth);
    const std::string out =
        Capture(Quote(o.llama_bench) + " -m " + Quote(model) + " -t " + std::to_string(sc.threads) +
                " -p " + std::to_string(f.prompt) + " -n " + std::to_string(f.gen) + " -d " +
                std::to_string(f.depth) + " -fa 0 -r 3 -o json 2>/dev/null");
    const auto j = nlohmann::json::parse(out, nullptr, false);
    if (!j.is_array()) {
        std::fprintf(stderr, "[floor] llama-bench gave no JSON; the floor is left out\n");
        return std::nullopt;
    }
    for (const auto& test : j) {
        const double ms = test.value("avg_ns", 0.0) / 1e6;
        (test.value("n_gen", 0) > 0 ? f.tg_ms : f.pp_ms) = ms;
    }
    return f;
}

// The scenario file with the command line's overrides; throws when it cannot run here.
Scenario LoadScenario(const MarketBenchOptions& o) {
    auto loaded = bench::LoadScenario(o.scenario);
    if (!loaded.ok()) {
        throw std::runtime_error(loaded.status().message());
    }
    Scenario sc = std::move(loaded).value();
    if (!o.model.empty()) {
        sc.model = o.model;
    }
    if (o.duration_s > 0) {
        sc.duration_s = o.duration_s;
    }
    if (o.threads > 0) {
        sc.threads = o.threads;
    }
    if (!o.systems.empty()) {
        sc.systems.clear();
        std::stringstream list(o.systems);
        for (std::string name; std::getline(list, name, ',');) {
            auto kind = bench::ParseSystem(name);
            if (!kind.ok()) {
                throw std::runtime_error("--systems: " + kind.status().message());
            }
            sc.systems.push_back(*kind);
        }
    }
    const bool wants_llama = std::any_of(sc.systems.begin(), sc.systems.end(), [](auto k) {
        return k == bench::SystemKind::kLlamaServer || k == bench::SystemKind::kLlamaServerShared;
    });
    if (wants_llama && (o.llama_server.empty() || !fs::exists(o.llama_server))) {
        throw std::runtime_error(
            "the scenario runs llama-server, but there is none at '" + o.llama_server +
            "': build it with `scripts/build_llama.sh --with-tools` (bench/market.sh does) and "
            "pass --llama-server BUILD/bin/llama-server, or leave it out with --systems");
    }
    return sc;
}

// Where the servers run and what they load.
bench::ServerSetup MakeSetup(const MarketBenchOptions& o,
                             const Scenario& sc,
                             const std::string& model,
                             int ctx_per_session) {
    bench::ServerSetup setup;
    setup.kvstream_bin = fs::read_symlink("/proc/self/exe").string();
    setup.llama_server_bin = o.llama_server;
    setup.model = model;
    setup.threads = sc.threads;
    setup.n_sessions = static_cast<int>(sc.sessions.size());
    setup.ctx_per_session = ctx_per_session;
    setup.shared_slots = sc.shared_slots;
    setup.answer_tokens = sc.answer_tokens;
    setup.flash_questions = sc.flash_questions;
    setup.work_dir = fs::absolute(o.out).string();

    return setup;
}

// The report's header: how to reproduce, the model, the machine.
bench::RunInfo MakeRunInfo(const MarketBenchOptions& o,
                           const Scenario& sc,
                           const std::string& model,
                           int ctx_per_session) {
    bench::RunInfo info;
    info.scenario_path = o.scenario;
    info.command = "build/kvstream bench " + o.scenario +
                   (o.duration_s > 0 ? " --duration-s " + FormatNumber(o.duration_s) : "") +
                   (o.systems.empty() ? "" : " --systems " + o.systems) +
                   (o.model.empty() ? "" : " --model " + o.model) +
                   " (bench/market.sh passes the llama.cpp tools)";
    info.model = model + " (" + std::to_string(fs::file_size(model) >> 20) + " MiB)";
    info.machine = bench::MachineDescription();
    info.started_utc = UtcNow(false);
    info.threads = sc.threads;
    info.ctx_per_session = ctx_per_session;

    return info;
}

void RunMarketBench(MarketBenchOptions o) {
    const Scenario sc = LoadScenario(o);
    const bool model_is_path =
        sc.model.ends_with(".gguf") || sc.model.find('/') != std::string::npos;
    const std::string model =
        model_is_path ? sc.model : *EnsureShapeTwin(sc.model, WeightType::kQ8_0);
    if (!fs::exists(model)) {
        throw std::runtime_error("no model at " + model);
    }
    if (o.out.empty()) {
        o.out = "bench/results/market-" + sc.name + "-" + UtcNow(true);
    }
    fs::create_directories(o.out);

    Check(InitBackend(LibraryLogLevel::kQuiet), "loading the CPU backend");
    std::fprintf(stderr, "kvstream bench %s: preparing the workload (%zu sessions, model %s)\n",
                 sc.name.c_str(), sc.sessions.size(), model.c_str());
    auto prepared = bench::PrepareWorkload(sc, o.market_dir, model);
    if (!prepared.ok()) {
        throw std::runtime_error(prepared.status().ToString());
    }
    const bench::ServerSetup setup = MakeSetup(o, sc, model, prepared->ctx_per_session);
    bench::RunInfo info = MakeRunInfo(o, sc, model, prepared->ctx_per_session);

    const auto started = std::chrono::steady_clock::now();
    std::vector<bench::SystemRun> runs;
    std::optional<bench::Floor> floor;
    auto write = [&] {
        info.wall_s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        if (Status st = bench::WriteResults(o.out, sc, info, runs, floor); !st.ok()) {
            throw std::runtime_error(st.ToString());
        }
    };
    for (int round = 0; round < sc.rounds; ++round) {
        for (bench::SystemKind kind : sc.systems) {
            runs.push_back(bench::RunSystem(sc, kind, round, setup, prepared->workload));
            if (!runs.back().error.empty()) {
                std::fprintf(stderr, "[%s] failed: %s\n", bench::SystemName(kind),
                             runs.back().error.c_str());
            }
            write();  // results so far survive an interrupted run
        }
    }
    if (sc.floor && !o.no_floor) {
        if (o.llama_bench.empty() || !fs::exists(o.llama_bench)) {
            std::fprintf(stderr, "[floor] no llama-bench (--llama-bench PATH): left out\n");
        } else {
            floor = RunFloor(o, sc, model, runs);
        }
    }
    write();
    std::fprintf(stderr, "kvstream bench %s: done in %.0f s; report: %s/report.md\n",
                 sc.name.c_str(), info.wall_s, o.out.c_str());
    for (const auto& r : runs) {
        if (!r.error.empty()) {
            throw std::runtime_error(std::string(bench::SystemName(r.system)) +
                                     " failed: " + r.error);
        }
    }
}

}  // namespace

void AddMarketBenchCommand(CLI::App& app) {
    auto o = std::make_shared<MarketBenchOptions>();
    o->market_dir = EnvOr("KVSTREAM_MARKET_DIR", "../shared/data/market");
    o->llama_server = EnvOr("KVSTREAM_LLAMA_SERVER", "");
    o->llama_bench = EnvOr("KVSTREAM_LLAMA_BENCH", "");
    CLI::App* cmd = app.add_subcommand(
        "bench",
        "The streaming market benchmark: a scenario file replayed against kvstream (stateful, "
        "flash), a stateless engine and llama-server; writes results, a report and plots");
    cmd->add_option("scenario", o->scenario, "Scenario file (bench/scenarios/*.json)")->required();
    cmd->add_option("--out", o->out,
                    "Results folder (default: bench/results/market-<name>-<UTC time>)");
    cmd->add_option("--model", o->model, "Override the scenario's model (a shape or a .gguf)");
    cmd->add_option("--market-dir", o->market_dir,
                    "The shared market data (env KVSTREAM_MARKET_DIR)")
        ->capture_default_str();
    cmd->add_option("--llama-server", o->llama_server,
                    "llama.cpp's llama-server (env KVSTREAM_LLAMA_SERVER)");
    cmd->add_option("--llama-bench", o->llama_bench,
                    "llama.cpp's llama-bench, for the floor (env KVSTREAM_LLAMA_BENCH)");
    cmd->add_option("--systems", o->systems, "Override the systems: a comma-separated list");
    cmd->add_option("--duration-s", o->duration_s, "Override the measured phase's length");
    cmd->add_option("--threads", o->threads, "Override the scenario's thread count");
    cmd->add_flag("--no-floor", o->no_floor, "Skip llama-bench's floor");
    cmd->callback([o] { RunMarketBench(*o); });
}

}  // namespace kvs
