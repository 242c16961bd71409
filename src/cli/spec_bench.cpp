// `kvstream spec-bench`: speculative decoding by prompt lookup on and off, for 1, 4 and 16
// sequences decoding at once, on answers that quote their session's context. For each count N:
// N sessions hold a context; N questions are submitted together, each asking the model to
// continue a passage of its own context; the engine runs until all are answered. Reported per
// N and mode: tokens per second over the batch (answer tokens / wall time), the answers' median
// latency, and drafted and accepted tokens. Medians over --reps repetitions. In process (no HTTP).

#include "cli/commands.h"
#include "cli/defaults.h"
#include "common/json_writer.h"
#include "common/stats.h"
#include "engine/backend.h"
#include "runtime/engine.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace kvs {
namespace {

using Clock = std::chrono::steady_clock;

struct SpecBenchOptions {
    std::string model;  // empty: the Qwen2.5-0.5B shape twin (random weights)
    std::string decoders = "1,4,16";
    int draft = 4;
    int max_decoders = 1024;  // the cap is what this measures: off here
    int answer_tokens = 48;
    int context_sentences = 24;
    int reps = 3;
    int n_threads = 2;
    std::string json;
};

// A short story per session (tiny real-weight models know stories), with names and numbers
// that differ between sessions; the question is the start of one of its sentences.
const char* kNames[] = {"Lily", "Tom", "Sue", "Ben", "Mia", "Max", "Amy", "Sam"};
const char* kThings[] = {"red ball", "big box", "blue car", "little dog", "green hat", "toy boat"};

std::string Story(int session, int sentences) {
    std::string s;
    for (int i = 0; i < sentences; ++i) {
        const std::string name = kNames[(session + i) % 8];
        const std::string thing = kThings[(session * 3 + i) % 6];
        s += name + " had a " + thing + ". " + name + " liked to play with the " + thing +
             " in the park every day. ";
    }
    return s;
}

std::string Question(int session) {
    return std::string(" ") + kNames[session % 8] + " had a";
}

struct Row {
    int decoders = 0;
    bool speculate = false;
    std::vector<double> tokens_per_s;
    std::vector<double> latency_ms;  // every answer of every repetition
    long drafted = 0;
    long accepted = 0;
};

Row Measure(const SpecBenchOptions& o, int n, bool speculate) {
    EngineOptions eo;
    eo.model_path = o.model;
    eo.n_sessions = n;
    eo.n_ctx_session = 2048;
    eo.n_threads = o.n_threads;
    eo.draft.max_draft = speculate ? o.draft : 0;
    eo.draft_max_decoders = o.max_decoders;
    auto opened = Engine::Open(eo);
    Check(opened.status(), "opening the engine");
    Engine& e = **opened;
    std::vector<SessionId> ids;
    for (int i = 0; i < n; ++i) {
        auto id = e.CreateSession();
        Check(id.status(), "creating a session");
        Check(e.Append(*id, Story(i, o.context_sentences)).status(), "appending");
        ids.push_back(*id);
    }
    Row row;
    row.decoders = n;
    row.speculate = speculate;
    for (int rep = 0; rep < o.reps; ++rep) {
        const auto start = Clock::now();
        for (int i = 0; i < n; ++i) {
            QueryOptions q;
            q.question = Question(i);
            q.max_tokens = o.answer_tokens;
            q.ignore_eog = true;  // every answer has answer_tokens tokens
            Check(e.SubmitQuery(ids[i], q).status(), "submitting");
        }
        e.RunUntilIdle();
        const double wall_s = std::chrono::duration<double>(Clock::now() - start).count();
        long tokens = 0;
        for (auto& f : e.TakeFinished()) {
            Check(f.answer.status(), "answering");
            tokens += f.answer->timings.n_answer_tokens;
            row.latency_ms.push_back(f.answer->timings.total_ms + f.answer->timings.queued_ms);
            row.drafted += f.answer->timings.n_drafted_tokens;
            row.accepted += f.answer->timings.n_accepted_tokens;
        }
        row.tokens_per_s.push_back(static_cast<double>(tokens) / wall_s);
    }
    return row;
}

void RunSpecBench(SpecBenchOptions o) {
    Check(InitBackend(LibraryLogLevel::kQuiet), "loading the CPU backend");
    auto counts = ParseIntList(o.decoders);
    if (!counts.ok()) {
        throw std::runtime_error("--decoders: " + counts.status().message());
    }
    if (o.model.empty()) {
        o.model = *EnsureShapeTwin("qwen2.5-0.5b", WeightType::kQ8_0);
    }
    std::vector<Row> rows;
    std::printf("%8s  %5s  %10s  %10s  %9s  %9s  %10s\n", "decoders", "spec", "tokens/s", "p50 ms",
                "drafted", "accepted", "acceptance");
    for (int n : *counts) {
        for (bool speculate : {false, true}) {
            rows.push_back(Measure(o, n, speculate));
            const Row& r = rows.back();
            std::printf(
                "%8d  %5s  %10.1f  %10.1f  %9ld  %9ld  %9.0f%%\n", n, speculate ? "on" : "off",
                Median(r.tokens_per_s), Median(r.latency_ms), r.drafted, r.accepted,
                r.drafted > 0
                    ? 100.0 * static_cast<double>(r.accepted) / static_cast<double>(r.drafted)
                    : 0.0);
            std::fflush(stdout);
        }
    }
    if (o.json.empty()) {
        return;
    }
    std::ofstream out(o.json);
    JsonWriter j;
    j.BeginObject().Field("model", o.model).Field("draft", o.draft);
    j.Field("answer_tokens", o.answer_tokens).Field("threads", o.n_threads);
    j.Key("rows").BeginArray();
    for (const Row& r : rows) {
        j.BeginObject().Field("decoders", r.decoders).Field("speculate", r.speculate);
        j.Key("tokens_per_s").Numbers(r.tokens_per_s).Key("latency_ms").Numbers(r.latency_ms);
        j.Field("drafted", static_cast<std::int64_t>(r.drafted));
        j.Field("accepted", static_cast<std::int64_t>(r.accepted)).EndObject();
    }
    j.EndArray().EndObject();
    out << j.str() << "\n";
}

}  // namespace

void AddSpecBenchCommand(CLI::App& app) {
    auto o = std::make_shared<SpecBenchOptions>();
    CLI::App* cmd = app.add_subcommand(
        "spec-bench", "Speculative decoding by prompt lookup on and off, by concurrent decoders");
    cmd->add_option("--model", o->model, "GGUF model (default: the Qwen2.5-0.5B shape twin)");
    cmd->add_option("--decoders", o->decoders, "Sequences decoding at once")->capture_default_str();
    cmd->add_option("--draft", o->draft, "Most tokens drafted per step")->capture_default_str();
    cmd->add_option("--max-decoders", o->max_decoders, "The speculation cap (default: no cap)")
        ->capture_default_str();
    cmd->add_option("--answer-tokens", o->answer_tokens, "Answer length")->capture_default_str();
    cmd->add_option("--context-sentences", o->context_sentences, "Context per session")
        ->capture_default_str();
    cmd->add_option("--reps", o->reps, "Repetitions")->capture_default_str();
    cmd->add_option("--threads", o->n_threads, "Threads")->capture_default_str();
    cmd->add_option("--json", o->json, "Write results to this JSON file");
    cmd->callback([o] { RunSpecBench(*o); });
}

}  // namespace kvs
