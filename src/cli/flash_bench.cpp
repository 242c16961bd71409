// `kvstream flash-bench`: Flash Queries on one session streaming market bars (bench/flash.sh).
//
// For each context size: a session is filled with bars to that many tokens, five market
// questions are registered, then one new bar arrives every --gap-ms for --updates updates. The
// command measures
//   1. a cached hit: Runtime::Query for a registered question whose answer is current, timed on
//      the caller's thread from the call to the answer (inside the server: no HTTP);
//   2. a live query of the same question at the same context (cached answers refused);
//   3. readiness: for each update and question, whether the evaluation of that version was
//      published before the next update arrived, and how long after its update;
//   4. the engine time flash work used (kvs_flash_engine_ms) against wall-clock time and against
//      the engine's step time, and how many evaluations were dropped or finished when overtaken.
// Everything is printed as a table and, with --json, written to a file.

#include "cli/commands.h"
#include "cli/defaults.h"
#include "cli/market_input.h"
#include "common/json_writer.h"
#include "common/progress.h"
#include "common/stats.h"
#include "feed/market.h"
#include "runtime/runtime.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace kvs {
namespace {

using Clock = std::chrono::steady_clock;

double MsBetween(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

const std::vector<std::string>& MarketQuestions() {
    static const std::vector<std::string> q = {
        "Is the trend bullish or bearish?",        "What is the last close price?",
        "What was the highest price so far?",      "Is volume rising or falling?",
        "Summarize the last bar in one sentence.",
    };
    return q;
}

struct FlashBenchOptions {
    std::string model;  // empty: the Qwen2.5-0.5B shape twin (Q8_0)
    std::string contexts = "512,2048,8192";
    int updates = 10;
    double gap_ms = 4000;
    int max_tokens = 12;
    int hits_per_question = 20;
    int n_threads = 2;
    double flash_share = EngineOptions{}.flash_max_share;
    std::vector<std::string> csv;
    std::uint64_t seed = 42;
    std::string json;
};

struct ContextResult {
    int n_context = 0;  // tokens in the session when streaming started
    std::vector<double> hit_us;
    std::vector<double> live_ms;
    int n_pairs = 0;  // (update, question)
    int n_ready_in_time = 0;
    std::vector<double> ready_after_ms;  // update accepted -> its evaluation published
    double stream_ms = 0;
    double flash_ms = 0;
    double step_ms = 0;
    double dropped = 0;
    double finished_overtaken = 0;
    double preempted = 0;
};

double MetricSum(MetricsRegistry& m, const char* histogram) {
    return m.GetHistogram(histogram, "", kMsBuckets).Snapshot().sum;
}

// Appends bars until the session holds at least `n_tokens`.
void FillHistory(Runtime& rt, SessionId id, BarSource& bars, int n_tokens) {
    ProgressBar progress("history", static_cast<std::size_t>(n_tokens));
    int have = 0;
    double per_bar = 0;  // tokens per bar, learned from the first append
    while (have < n_tokens) {
        const int n_bars =
            per_bar == 0 ? 1 : std::clamp(static_cast<int>((n_tokens - have) / per_bar), 1, 32);
        std::string block;
        for (int i = 0; i < n_bars; ++i) {
            block += RenderBar(bars.Next(0)) + "\n";
        }
        auto r = rt.AppendAndWait(1, id, block).get();
        Check(r.status(), "filling the history");
        per_bar = per_bar == 0 ? std::max(1.0, static_cast<double>(r->n_tokens_appended)) : per_bar;
        have = r->n_tokens;
        progress.Update(static_cast<std::size_t>(std::min(have, n_tokens)));
    }
    progress.Finish();
}

struct FlashQuestionText {
    std::string text;
};

// Waits until every question (or only `one`) has a result for the accepted version.
bool WaitCurrent(Runtime& rt,
                 SessionId id,
                 double timeout_ms,
                 const FlashQuestionText* one = nullptr) {
    const auto deadline =
        Clock::now() + std::chrono::microseconds(static_cast<long>(timeout_ms * 1e3));
    while (Clock::now() < deadline) {
        auto list = rt.ListFlash(1, id);
        if (list.ok() && std::all_of(list->begin(), list->end(), [one](const FlashInfo& f) {
                return f.current() || (one != nullptr && f.options.question != one->text);
            })) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return false;
}

// Asks `q` n times; records the microseconds of the answers that came from the cache.
void TimeHits(Runtime& rt, SessionId id, const QueryOptions& q, int n, std::vector<double>& us) {
    for (int i = 0; i < n; ++i) {
        const auto t0 = Clock::now();
        auto a = rt.Query(1, id, q).get();
        const auto t1 = Clock::now();
        if (a.ok() && a->cached) {
            us.push_back(MsBetween(t0, t1) * 1e3);
        }
    }
}

// The engine's flash figures, read before and after the stream.
struct FlashCounters {
    double flash_ms = 0;
    double step_ms = 0;
    double dropped = 0;
    double finished_overtaken = 0;
    double preempted = 0;

    static FlashCounters Read(MetricsRegistry& m) {
        const auto count = [&m](const char* name) {
            return static_cast<double>(m.GetCounter(name, "").value());
        };
        return {m.GetGauge("kvs_flash_engine_ms", "").value(), MetricSum(m, "kvs_step_ms"),
                count("kvs_flash_dropped_total"), count("kvs_flash_finished_overtaken_total"),
                count("kvs_flash_preempted_total")};
    }
};

// Each question live (cached answers refused) and cached, at the same (final) context.
void TimeLiveAndCached(Runtime& rt, SessionId id, const FlashBenchOptions& o, ContextResult& r) {
    for (const std::string& question : MarketQuestions()) {
        QueryOptions q = FlashQuery({question, o.max_tokens, {}});
        TimeHits(rt, id, q, o.hits_per_question, r.hit_us);
        q.allow_cached = false;
        const auto t0 = Clock::now();
        auto live = rt.Query(1, id, q).get();
        Check(live.status(), "a live query");
        r.live_ms.push_back(MsBetween(t0, Clock::now()));
    }
}

// For each (update, question): how long after the update its evaluation was published, and
// whether that was before the next update.
void CountReady(const std::vector<std::pair<Clock::time_point, std::uint64_t>>& updates,
                const std::map<std::pair<std::uint64_t, FlashId>, Clock::time_point>& ready,
                const std::vector<FlashInfo>& list,
                const FlashBenchOptions& o,
                ContextResult& r) {
    for (std::size_t u = 0; u < updates.size(); ++u) {
        const auto next =
            u + 1 < updates.size()
                ? updates[u + 1].first
                : updates[u].first + std::chrono::microseconds(static_cast<long>(o.gap_ms * 1e3));
        for (const FlashInfo& f : list) {
            ++r.n_pairs;
            auto it = ready.find({updates[u].second, f.id});
            if (it == ready.end()) {
                continue;  // never evaluated at this version (dropped, a newer one came first)
            }
            r.ready_after_ms.push_back(MsBetween(updates[u].first, it->second));
            r.n_ready_in_time += it->second <= next ? 1 : 0;
        }
    }
}

ContextResult RunContext(const FlashBenchOptions& o, int n_context) {
    RuntimeOptions ro;
    ro.engine.model_path = o.model;
    ro.engine.n_sessions = 1;
    ro.engine.n_ctx_session = n_context + 2048;  // history + the streamed bars + a question
    ro.engine.n_threads = o.n_threads;
    ro.engine.flash_max_share = o.flash_share;
    auto started = Runtime::Start(ro);
    Check(started.status(), "starting the runtime");
    Runtime& rt = **started;
    MetricsRegistry& m = rt.metrics();

    SessionOptions so{.prefix = "Market data, one bar per line:\n"};
    for (const std::string& q : MarketQuestions()) {
        so.flash.push_back({q, o.max_tokens, {}});
    }
    auto created = rt.CreateSession(1, so).get();
    Check(created.status(), "creating the session");
    const SessionId id = *created;
    BarSource bars(o.csv, o.seed);
    FillHistory(rt, id, bars, n_context);
    if (!WaitCurrent(rt, id, 600'000)) {
        throw std::runtime_error("the first evaluations did not finish in 10 minutes");
    }
    ContextResult r;
    r.n_context = rt.Info(1, id).get()->n_tokens;
    auto events = *rt.Subscribe(1, id, {.every_evaluation = true, .capacity = 4096});

    const FlashCounters before = FlashCounters::Read(m);
    const auto stream_start = Clock::now();
    std::vector<std::pair<Clock::time_point, std::uint64_t>> updates;  // accepted at, version
    // A reader thread stamps each evaluation when it is published.
    std::map<std::pair<std::uint64_t, FlashId>, Clock::time_point> ready;  // after `reader` joins
    std::atomic<bool> reading{true};
    std::thread reader([&] {
        while (reading) {
            if (auto e = events->Next(std::chrono::milliseconds(50));
                e && e->kind == EngineEvent::Kind::kFlash) {
                ready.emplace(std::pair(e->version, e->flash.id), Clock::now());
            }
        }
    });
    ProgressBar progress("updates", static_cast<std::size_t>(o.updates));
    for (int u = 0; u < o.updates; ++u) {
        const auto due =
            stream_start + std::chrono::microseconds(static_cast<long>(u * o.gap_ms * 1e3));
        std::this_thread::sleep_until(due);
        const auto at = Clock::now();
        auto accepted = rt.Append(1, id, RenderBar(bars.Next(0)) + "\n").get();
        Check(accepted.status(), "appending a bar");
        updates.emplace_back(at, accepted->version);
        // Cached hits of one question, timed once its answer for this version is out (they never
        // touch the engine, so they do not disturb the evaluations of the others).
        const auto next_due = due + std::chrono::microseconds(static_cast<long>(o.gap_ms * 1e3));
        const FlashQuestionText question{MarketQuestions()[u % MarketQuestions().size()]};
        if (WaitCurrent(rt, id, MsBetween(Clock::now(), next_due), &question)) {
            TimeHits(rt, id, FlashQuery({question.text, o.max_tokens, {}}), o.hits_per_question,
                     r.hit_us);
        }
        progress.Update(static_cast<std::size_t>(u) + 1);
    }
    progress.Finish();
    const auto stream_end = Clock::now() + std::chrono::milliseconds(0);
    WaitCurrent(rt, id, 600'000);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the last events
    reading = false;
    reader.join();
    TimeLiveAndCached(rt, id, o, r);
    CountReady(updates, ready, *rt.ListFlash(1, id), o, r);
    r.stream_ms = MsBetween(stream_start, stream_end);
    const FlashCounters after = FlashCounters::Read(m);
    r.flash_ms = after.flash_ms - before.flash_ms;
    r.step_ms = after.step_ms - before.step_ms;
    r.dropped = after.dropped - before.dropped;
    r.finished_overtaken = after.finished_overtaken - before.finished_overtaken;
    r.preempted = after.preempted - before.preempted;
    return r;
}

void Print(const std::vector<ContextResult>& results) {
    std::printf("\n%8s %10s %10s %10s %10s %9s %8s %12s %10s %10s %8s %8s\n", "context",
                "hit p50 us", "hit p99 us", "hit max us", "live p50ms", "live/hit", "ready",
                "ready p50 ms", "flash/wall", "flash/step", "dropped", "finished");
    for (const ContextResult& r : results) {
        const double hit50 = Quantile(r.hit_us, 0.5);
        const double live50 = Quantile(r.live_ms, 0.5);
        std::printf(
            "%8d %10.1f %10.1f %10.1f %10.1f %8.0fx %7.0f%% %12.1f %9.1f%% %9.1f%% %8.0f %8.0f\n",
            r.n_context, hit50, Quantile(r.hit_us, 0.99), Quantile(r.hit_us, 1.0), live50,
            hit50 > 0 ? live50 * 1e3 / hit50 : 0.0,
            r.n_pairs > 0 ? 100.0 * r.n_ready_in_time / r.n_pairs : 0.0,
            Quantile(r.ready_after_ms, 0.5),
            r.stream_ms > 0 ? 100.0 * r.flash_ms / r.stream_ms : 0.0,
            r.step_ms > 0 ? 100.0 * r.flash_ms / r.step_ms : 0.0, r.dropped, r.finished_overtaken);
    }
}

void WriteJson(const FlashBenchOptions& o, const std::vector<ContextResult>& results) {
    std::ofstream out(o.json);
    if (!out) {
        throw std::runtime_error("cannot write " + o.json);
    }
    JsonWriter j(2);
    j.BeginObject().Field("model", o.model).Field("threads", o.n_threads);
    j.Field("updates", o.updates).Field("gap_ms", o.gap_ms).Field("max_tokens", o.max_tokens);
    j.Field("flash_share", o.flash_share);
    j.Field("questions", static_cast<std::int64_t>(MarketQuestions().size()));
    j.Key("contexts").BeginArray();
    for (const ContextResult& r : results) {
        j.BeginObject().Field("context", r.n_context);
        j.Key("hit_us").Numbers(r.hit_us).Key("live_ms").Numbers(r.live_ms);
        j.Field("pairs", r.n_pairs).Field("ready_in_time", r.n_ready_in_time);
        j.Key("ready_after_ms").Numbers(r.ready_after_ms);
        j.Field("stream_ms", r.stream_ms).Field("flash_ms", r.flash_ms);
        j.Field("step_ms", r.step_ms).Field("dropped", r.dropped);
        j.Field("finished_overtaken", r.finished_overtaken).Field("preempted", r.preempted);
        j.EndObject();
    }
    j.EndArray().EndObject();
    out << j.str() << "\n";
}

void RunFlashBench(FlashBenchOptions o) {
    auto contexts = ParseIntList(o.contexts);
    Check(contexts.status(), "--contexts");
    if (o.model.empty()) {
        auto made = EnsureShapeTwin("qwen2.5-0.5b", WeightType::kQ8_0);
        Check(made.status(), "making the default model");
        o.model = *made;
    }
    std::printf(
        "kvstream flash-bench: %s, %d threads; 5 registered questions (%d tokens), %d updates "
        "%.0f ms apart per context, flash share cap %.2f, bars: %s\n",
        o.model.c_str(), o.n_threads, o.max_tokens, o.updates, o.gap_ms, o.flash_share,
        o.csv.empty() ? "synthetic" : o.csv.front().c_str());
    std::fflush(stdout);
    std::vector<ContextResult> results;
    for (int n : *contexts) {
        results.push_back(RunContext(o, n));
    }
    Print(results);
    if (!o.json.empty()) {
        WriteJson(o, results);
    }
}

}  // namespace

void AddFlashBenchCommand(CLI::App& app) {
    auto o = std::make_shared<FlashBenchOptions>();
    CLI::App* cmd = app.add_subcommand(
        "flash-bench", "Flash Queries benchmark: cached hits vs live queries on streaming bars");
    cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    cmd->add_option("--model", o->model, "GGUF model (default: the Qwen2.5-0.5B shape twin)");
    cmd->add_option("--contexts", o->contexts, "Session sizes in tokens when streaming starts")
        ->capture_default_str();
    cmd->add_option("--updates", o->updates, "Bars streamed per context")
        ->check(CLI::Range(1, 100000))
        ->capture_default_str();
    cmd->add_option("--gap-ms", o->gap_ms, "Time between bars")
        ->check(CLI::Range(1.0, 1e7))
        ->capture_default_str();
    cmd->add_option("--max-tokens", o->max_tokens, "Answer length of the registered questions")
        ->check(CLI::Range(1, kMaxFlashTokens))
        ->capture_default_str();
    cmd->add_option("--hits", o->hits_per_question, "Cached queries timed per update")
        ->check(CLI::Range(1, 100000))
        ->capture_default_str();
    cmd->add_option("--threads", o->n_threads, "Threads (0: all cores)")->capture_default_str();
    cmd->add_option("--flash-share", o->flash_share, "Most engine time for flash work, (0, 1]")
        ->check(CLI::Range(0.001, 1.0))
        ->capture_default_str();
    cmd->add_option("--csv", o->csv, "Real bars from a CSV file, as [SYMBOL=]PATH")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    cmd->add_option("--seed", o->seed, "Seed of the synthetic feed")->capture_default_str();
    cmd->add_option("--json", o->json, "Write every figure to this JSON file");
    cmd->callback([o] { RunFlashBench(*o); });
}

}  // namespace kvs
