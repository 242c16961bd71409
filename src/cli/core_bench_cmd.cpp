// `kvstream core-bench`: one question of exactly Q tokens and an answer of exactly A tokens on a
// session holding exactly D tokens, on the stateful path and on the stateless path, at several
// depths. The same token counts as `llama-bench -p Q -n A -d D`, whose figure is the floor.
// Results go to stdout as a table and, with --json, to a file for docs/benchmarks.md.

#include "cli/commands.h"
#include "cli/defaults.h"
#include "cli/market_input.h"
#include "common/json_writer.h"
#include "common/stats.h"
#include "engine/backend.h"
#include "feed/market.h"
#include "runtime/engine.h"

#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace kvs {
namespace {

struct BenchOptions {
    std::string model;
    std::string depths = "512,2048,8192";
    int n_question = 32;
    int n_answer = 16;
    int reps = 5;
    int stateless_reps = 2;
    int n_gpu_layers = 0;
    bool no_repack = false;
    int n_threads = 2;
    bool flash_attn = false;
    std::string json;
};

struct DepthResult {
    int depth = 0;
    std::vector<double> stateful_ms, stateless_ms;
};

// A question text that tokenizes to exactly n tokens (words are added one by one).
std::string QuestionOfLength(const Engine& e, int n) {
    static const char* kWords[] = {" What", " is",   " the",  " trend", " of",    " BTC",   " and",
                                   " ETH",  " over", " last", " hour",  " price", " volume"};
    std::string q = "Q:";
    for (std::size_t i = 0; i < 10'000; ++i) {
        const std::string next = q + kWords[i % 13];
        const int len = static_cast<int>(e.model().Tokenize(next, false)->size());
        if (len <= n) {
            q = next;
        }
        if (len == n) {
            return q;
        }
    }
    throw std::runtime_error("could not build a question of " + std::to_string(n) + " tokens");
}

DepthResult RunDepth(const BenchOptions& o, int depth) {
    EngineOptions eo;
    eo.model_path = o.model;
    eo.n_sessions = 1;
    eo.n_ctx_session = depth + o.n_question + o.n_answer + 8;
    eo.n_threads = o.n_threads;
    eo.n_gpu_layers = o.n_gpu_layers;
    eo.repack_weights = !o.no_repack;
    eo.flash_attn = o.flash_attn;
    auto opened = Engine::Open(eo);
    if (!opened.ok()) {
        throw std::runtime_error(opened.status().ToString());
    }
    Engine& e = **opened;
    const SessionId id = *e.CreateSession();  // holds BOS when the model wants one
    const int n_data = depth - e.Info(id)->n_tokens;
    KV_CHECK(e.AppendTokens(id, MarketTokens(e, n_data)).ok(), "bench fill failed");
    KV_CHECK(e.Info(id)->n_tokens == depth, "bench depth mismatch");

    QueryOptions q;
    q.question = QuestionOfLength(e, o.n_question);
    q.max_tokens = o.n_answer;
    q.ignore_eog = true;
    DepthResult r;
    r.depth = depth;
    (void)e.Query(id, q);  // warm-up
    for (int i = 0; i < o.reps; ++i) {
        const Answer a = *e.Query(id, q);
        KV_CHECK(a.timings.n_prompt_tokens == o.n_question, "question length");
        KV_CHECK(a.timings.n_answer_tokens == o.n_answer, "answer length");
        r.stateful_ms.push_back(a.timings.total_ms);
    }
    const Tokens context = *e.SessionTokens(id);
    for (int i = 0; i < o.stateless_reps; ++i) {
        r.stateless_ms.push_back(e.QueryStateless(context, q)->timings.total_ms);
    }
    std::fprintf(stderr, "depth %d: stateful %.1f ms, stateless %.1f ms (medians)\n", depth,
                 Median(r.stateful_ms), Median(r.stateless_ms));
    return r;
}

void WriteJson(const BenchOptions& o, const std::vector<DepthResult>& rows) {
    std::ofstream out(o.json);
    if (!out) {
        throw std::runtime_error("cannot write " + o.json);
    }
    JsonWriter j;
    j.BeginObject().Field("model", o.model).Field("threads", o.n_threads);
    j.Field("flash_attn", o.flash_attn).Field("repack", !o.no_repack);
    j.Field("cpu_backend", CpuBackend().variant);
    j.Field("question_tokens", o.n_question).Field("answer_tokens", o.n_answer);
    j.Key("depths").BeginArray();
    for (const DepthResult& row : rows) {
        j.BeginObject().Field("depth", row.depth);
        j.Key("stateful_ms").Numbers(row.stateful_ms).Key("stateless_ms").Numbers(row.stateless_ms);
        j.Field("stateful_median_ms", Median(row.stateful_ms));
        j.Field("stateless_median_ms", Median(row.stateless_ms)).EndObject();
    }
    j.EndArray().EndObject();
    out << j.str() << "\n";
}

void RunBench(BenchOptions o) {
    auto depths = ParseIntList(o.depths);
    if (!depths.ok()) {
        throw std::runtime_error("--depths: " + depths.status().message());
    }
    if (o.model.empty()) {
        o.model = *EnsureShapeTwin("qwen2.5-0.5b", WeightType::kQ8_0);
    }
    Check(InitBackend(), "loading the CPU backend");
    std::fprintf(stderr, "core-bench: %s%s\n", CpuBackendLine().c_str(),
                 o.no_repack ? ", weights not repacked" : "");
    std::vector<DepthResult> rows;
    for (int d : *depths) {
        rows.push_back(RunDepth(o, d));
    }
    std::printf("%8s  %12s  %13s  %8s\n", "depth", "stateful ms", "stateless ms", "ratio");
    for (const auto& r : rows) {
        const double a = Median(r.stateful_ms);
        const double b = Median(r.stateless_ms);
        if (r.stateless_ms.empty()) {
            std::printf("%8d  %12.1f  %13s  %8s\n", r.depth, a, "-", "-");
            continue;
        }
        std::printf("%8d  %12.1f  %13.1f  %7.1fx\n", r.depth, a, b, a > 0 ? b / a : 0.0);
    }
    if (!o.json.empty()) {
        WriteJson(o, rows);
    }
}

}  // namespace

void AddCoreBenchCommand(CLI::App& app) {
    auto o = std::make_shared<BenchOptions>();
    CLI::App* cmd = app.add_subcommand(
        "core-bench", "Measure stateful vs stateless query latency at fixed context depths");
    cmd->add_option("--model", o->model, "GGUF model (default: the Qwen2.5-0.5B shape twin)");
    cmd->add_option("--depths", o->depths, "Context depths in tokens")->capture_default_str();
    cmd->add_option("--question-tokens", o->n_question, "Question length")->capture_default_str();
    cmd->add_option("--answer-tokens", o->n_answer, "Answer length")->capture_default_str();
    cmd->add_option("--reps", o->reps, "Stateful repetitions")->capture_default_str();
    cmd->add_option("--stateless-reps", o->stateless_reps, "Stateless repetitions")
        ->capture_default_str();
    cmd->add_option("--gpu-layers", o->n_gpu_layers, "Layers offloaded to a GPU backend, if built")
        ->capture_default_str();
    cmd->add_option("--threads", o->n_threads, "Threads")->capture_default_str();
    cmd->add_flag("--flash-attn", o->flash_attn, "Use the flash-attention kernel");
    cmd->add_flag(
        "--no-repack", o->no_repack,
        "Keep weights in the file's layout (no CPU_REPACK buffers): what repacking gains");
    cmd->add_option("--json", o->json, "Write results to this JSON file");
    cmd->callback([o] { RunBench(*o); });
}

}  // namespace kvs
