// `kvstream demo`: several market sessions fed live bars; at growing context sizes each session
// is asked a question on the stateful path (only the question and answer are computed) and on
// the stateless path (the whole context is prefilled again, as a conventional engine does), and
// the same question registered as a Flash Query is answered from its cache.

#include "cli/commands.h"
#include "cli/defaults.h"
#include "cli/market_input.h"
#include "common/progress.h"
#include "common/stats.h"
#include "engine/backend.h"
#include "feed/market.h"
#include "query/agreement.h"
#include "runtime/engine.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace kvs {
namespace {

struct DemoOptions {
    std::string model;  // empty: the embedded default twin
    int n_sessions = 4;
    std::string checkpoints = "256,512,1024,2048";
    int max_tokens = 16;
    int n_gpu_layers = 0;
    int n_threads = 0;
    std::uint64_t seed = 42;
    std::vector<std::string> csv;  // real bars instead of the synthetic feed
};

struct Checkpoint {
    int n_context = 0;  // mean tokens per session when asked
    std::vector<double> stateful_ms;
    std::vector<double> stateless_ms;
    std::vector<double> flash_hit_us;   // a registered question's cached answer
    int n_equal = 0;                    // sessions whose two answers had the same tokens
    int n_near_tie = 0;                 // ... that differed from a near tie on (query/agreement.h)
    double widest_tie = 0;              // the largest margin among those near ties
    std::vector<std::string> diverged;  // real divergences (a defect): what the rule found
};

std::string Prefix(const std::string& symbol) {
    return "Live 1-minute bars for " + symbol +
           " follow, one per line: time, o=open h=high l=low c=close v=volume.\n";
}

std::string QuestionFor(const std::string& symbol) {
    return "\nQ: Is " + symbol + " trending up or down, and what was the last close?\nA:";
}

// Streams one bar to every session that is below `target` tokens; returns false when all are.
bool StreamRound(Engine& engine, BarSource& source, const std::vector<SessionId>& ids, int target) {
    std::vector<AppendRequest> appends;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (engine.Info(ids[i])->n_tokens < target) {
            appends.push_back({ids[i], RenderBar(source.Next(i))});
        }
    }
    for (const auto& r : engine.AppendMany(appends)) {
        KV_CHECK(r.ok(), "demo append failed: " + r.status().ToString());
    }
    return !appends.empty();
}

Checkpoint AskEverySession(Engine& engine,
                           const std::vector<SessionId>& ids,
                           const std::vector<std::string>& symbols,
                           int max_tokens) {
    Checkpoint c;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        QueryOptions q;
        q.question = QuestionFor(symbols[i]);
        q.max_tokens = max_tokens;
        q.stop = {"\n"};
        q.keep_logits = true;  // to tell a near tie from a divergence
        const Answer stateful = *engine.Query(ids[i], q);
        const Answer stateless = *engine.QueryStateless(*engine.SessionTokens(ids[i]), q);
        c.n_context += stateful.timings.n_context_tokens / static_cast<int>(ids.size());
        c.stateful_ms.push_back(stateful.timings.total_ms);
        c.stateless_ms.push_back(stateless.timings.total_ms);
        const Comparison cmp = CompareGreedy(stateful, stateless);
        if (cmp.verdict == Agreement::kNearTie) {
            ++c.n_near_tie;
            c.widest_tie = std::max({c.widest_tie, cmp.margin_a, cmp.margin_b});
        } else if (cmp.ok()) {
            ++c.n_equal;
        } else {
            c.diverged.push_back(symbols[i] + ": " + cmp.Describe());
        }
        // The question as a Flash Query: evaluated once in idle time, then answered from the
        // cache. Removed again so later bars do not trigger evaluations the demo never reads.
        const FlashOptions flash{q.question, max_tokens, {}};
        const auto id = engine.AddFlash(ids[i], flash);
        KV_CHECK(id.ok(), id.status().ToString());
        engine.RunUntilIdle();
        const auto started = std::chrono::steady_clock::now();
        const auto hit = engine.Query(ids[i], FlashQuery(flash));
        const auto us =
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - started)
                .count();
        KV_CHECK(hit.ok() && hit->cached, "the registered question was not answered from cache");
        c.flash_hit_us.push_back(us);
        KV_CHECK(engine.RemoveFlash(ids[i], *id).ok(), "removing the demo's flash question");
    }
    return c;
}

void PrintTable(const std::vector<Checkpoint>& rows, int n_sessions) {
    std::printf("\n%9s  %13s  %14s  %8s  %13s  %22s  %13s\n", "context", "stateful ms",
                "stateless ms", "speedup", "same answer", "near ties (margin)", "flash hit us");
    int n_ties = 0;
    std::vector<std::string> diverged;
    for (const auto& r : rows) {
        const double a = Median(r.stateful_ms);
        const double b = Median(r.stateless_ms);
        char ties[64] = "-";
        if (r.n_near_tie > 0) {
            std::snprintf(ties, sizeof ties, "%d (%.3g)", r.n_near_tie, r.widest_tie);
        }
        std::printf("%9d  %13.1f  %14.1f  %7.1fx  %9d of %d  %22s  %13.1f\n", r.n_context, a, b,
                    a > 0 ? b / a : 0.0, r.n_equal, n_sessions, ties, Median(r.flash_hit_us));
        n_ties += r.n_near_tie;
        diverged.insert(diverged.end(), r.diverged.begin(), r.diverged.end());
    }
    std::printf(
        "(medians over sessions; context = tokens per session when the question came; flash hit "
        "= the question registered as a Flash Query, answered from its cache)\n");
    if (n_ties > 0) {
        std::printf(
            "near tie: the two paths chose different tokens where their top two logits were within "
            "the margin shown; the stateful and stateless paths run other batch shapes, whose "
            "kernels round differently, so a near tie can tip either way (docs/architecture.md, "
            "\"Exactness\"). Every answer agreed up to there.\n");
    }
    for (const std::string& d : diverged) {
        std::printf("DIVERGED (a defect, please report it): %s\n", d.c_str());
    }
}

void RunDemo(const DemoOptions& o) {
    auto checkpoints = ParseIntList(o.checkpoints);
    if (!checkpoints.ok()) {
        throw std::runtime_error("--checkpoints: " + checkpoints.status().message());
    }
    BarSource source(o.csv, o.seed);  // fails early on a bad --csv
    std::string model = o.model;
    if (model.empty()) {
        auto made = EnsureShapeTwin(kDefaultShape, WeightType::kQ8_0);
        if (!made.ok()) {
            throw std::runtime_error(made.status().ToString());
        }
        model = *made;
    }
    EngineOptions eo;
    eo.model_path = model;
    eo.n_sessions = o.n_sessions;
    eo.n_ctx_session = checkpoints->back() + 256;
    eo.n_threads = o.n_threads;
    eo.n_gpu_layers = o.n_gpu_layers;
    auto engine = Engine::Open(eo);
    if (!engine.ok()) {
        throw std::runtime_error(engine.status().ToString());
    }
    Engine& e = **engine;
    std::printf("kvstream demo: %s (%s), %d sessions, %d threads\nkvstream demo: %s\n",
                model.c_str(), e.model().Description().c_str(), o.n_sessions,
                e.context().n_threads(), CpuBackendLine().c_str());
    std::fflush(stdout);  // before the progress bar on stderr

    std::vector<std::string> symbols;
    std::vector<SessionId> ids;
    for (int i = 0; i < o.n_sessions; ++i) {
        symbols.push_back(source.Symbol(static_cast<std::size_t>(i)));
        auto id = e.CreateSession({.prefix = Prefix(symbols.back())});
        KV_CHECK(id.ok(), id.status().ToString());
        ids.push_back(*id);
    }

    // Progress units: tokens streamed per session, plus each checkpoint's size for its questions
    // (the stateless answers cost in proportion to the context).
    std::size_t total = static_cast<std::size_t>(checkpoints->back());
    for (int c : *checkpoints) {
        total += static_cast<std::size_t>(c);
    }
    std::vector<Checkpoint> rows;
    std::size_t asked = 0;
    ProgressBar bar("demo", total);
    for (int target : *checkpoints) {
        while (StreamRound(e, source, ids, target)) {
            const auto streamed = static_cast<std::size_t>(e.Info(ids[0])->n_tokens);
            bar.Update(std::min(streamed, static_cast<std::size_t>(target)) + asked,
                       "streaming bars");
        }
        bar.Update(static_cast<std::size_t>(target) + asked, "asking at " + std::to_string(target));
        rows.push_back(AskEverySession(e, ids, symbols, o.max_tokens));
        asked += static_cast<std::size_t>(target);
    }
    bar.Finish();
    PrintTable(rows, o.n_sessions);
}

}  // namespace

void AddDemoCommand(CLI::App& app) {
    auto o = std::make_shared<DemoOptions>();
    CLI::App* cmd = app.add_subcommand(
        "demo",
        "Stream market bars into sessions and compare stateful and stateless query latency");
    cmd->add_option("--model", o->model,
                    "GGUF model (default: a SmolLM2-135M shape twin, made once)");
    cmd->add_option("--sessions", o->n_sessions, "Sessions streamed side by side")
        ->check(CLI::Range(1, 64))
        ->capture_default_str();
    cmd->add_option("--checkpoints", o->checkpoints, "Context sizes (tokens) at which to ask")
        ->capture_default_str();
    cmd->add_option("--max-tokens", o->max_tokens, "Answer length limit")
        ->check(CLI::Range(1, 256))
        ->capture_default_str();
    cmd->add_option("--gpu-layers", o->n_gpu_layers, "Layers offloaded to a GPU backend, if built")
        ->capture_default_str();
    cmd->add_option("--threads", o->n_threads, "Threads (0: all cores)")->capture_default_str();
    cmd->add_option("--seed", o->seed, "Seed of the synthetic feed")->capture_default_str();
    cmd->add_option("--csv", o->csv,
                    "Stream real bars from CSV files instead, as [SYMBOL=]PATH (e.g. "
                    "ETH=../shared/data/market/03_crypto_bars_ta4j/binanceus_ethusd_5m_20230313_"
                    "20230315.csv); session i replays file i mod n");
    cmd->callback([o] { RunDemo(*o); });
}

}  // namespace kvs
