// The Runtime phases of `kvstream load`: sessions fed bars on a schedule (a feeder thread) while
// questions arrive at random sessions on a seeded Poisson schedule (a client thread), then the
// same kind of questions one at a time on the idle engine. Step figures come from the engine's
// Prometheus metrics, snapshotted around each phase.

#include "cli/load.h"
#include "cli/market_input.h"
#include "common/progress.h"
#include "common/rng.h"
#include "runtime/runtime.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <future>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace kvs::load {
namespace {

constexpr TenantId kTenant = 1;

using Rng = SplitMix64;  // a seed gives the same schedule with every standard library

// ---- Sessions, feed and questions -------------------------------------------------------------

struct Fleet {
    std::vector<SessionId> ids;
    std::vector<std::string> symbols;
};

// What the threads of the loaded phase have done so far (for the progress line).
struct LiveCounts {
    std::atomic<int> n_asked{0};
    std::atomic<int> n_answered{0};
    std::atomic<int> n_bars{0};
};

QueryOptions QuestionFor(const std::string& symbol, int max_tokens, std::uint64_t max_staleness) {
    QueryOptions q;
    q.question = "\nQ: Is " + symbol + " trending up or down, and what was the last close?\nA:";
    q.max_tokens = max_tokens;
    q.ignore_eog = true;  // every answer has max_tokens tokens, so latencies compare
    q.max_staleness = max_staleness;
    return q;
}

// Submits a question; a waiter thread notes when its answer is ready, so the caller never waits.
std::future<QueryRecord> Ask(Runtime& rt, SessionId id, QueryOptions q, LiveCounts* live) {
    const auto submitted = Clock::now();
    auto answer = rt.Query(kTenant, id, std::move(q));
    return std::async(std::launch::async, [submitted, live, answer = std::move(answer)]() mutable {
        Result<Answer> r = answer.get();
        QueryRecord rec;
        rec.client_ms = MsBetween(submitted, Clock::now());
        if (r.ok()) {
            rec.timings = r->timings;
        } else {
            rec.status = r.status();
        }
        if (live != nullptr) {
            live->n_answered.fetch_add(1);
        }
        return rec;
    });
}

}  // namespace

namespace {

// Creates the sessions and gives each `warmup_bars` bars, waiting until they are ingested.
Fleet StartFleet(Runtime& rt, BarSource& source, const LoadOptions& o) {
    Fleet fleet;
    for (int i = 0; i < o.n_sessions; ++i) {
        const std::string symbol = source.Symbol(static_cast<std::size_t>(i));
        SessionOptions so;
        so.prefix = "Live 1-minute bars for " + symbol +
                    " follow, one per line: time, o=open h=high l=low c=close v=volume.\n";
        so.on_full = OnFull::kRoll;  // a stream outlives any window: keep the latest data
        auto id = rt.CreateSession(kTenant, so).get();
        Check(id.status(), "creating session " + std::to_string(i));
        fleet.ids.push_back(*id);
        fleet.symbols.push_back(symbol);
    }
    std::vector<std::future<Result<AppendResult>>> waits;
    for (std::size_t i = 0; i < fleet.ids.size(); ++i) {
        for (int b = 0; b < o.warmup_bars; ++b) {
            const std::string text = RenderBar(source.Next(i));
            waits.push_back(b + 1 < o.warmup_bars ? rt.Append(kTenant, fleet.ids[i], text)
                                                  : rt.AppendAndWait(kTenant, fleet.ids[i], text));
        }
    }
    for (auto& w : waits) {
        Check(w.get().status(), "warm-up append");
    }
    // One question first, so graph allocation and first-use costs stay out of the figures.
    Check(
        Ask(rt, fleet.ids[0], QuestionFor(fleet.symbols[0], o.max_tokens, o.max_staleness), nullptr)
            .get()
            .status,
        "warm-up question");
    return fleet;
}

// Appends one bar to each session in turn, n_sessions * bars_per_s bars a second in all, until
// `end`. Appends are answered when the engine thread next drains its queue, so their futures
// are collected as they become ready instead of waited for one by one.
FeedStats FeedBars(Runtime& rt,
                   BarSource& source,
                   const Fleet& fleet,
                   double bars_per_s,
                   Clock::time_point start,
                   Clock::time_point end,
                   LiveCounts& live) {
    FeedStats stats;
    std::deque<std::future<Result<AppendResult>>> pending;
    auto settle = [&](bool wait) {
        while (!pending.empty() && (wait || pending.front().wait_for(std::chrono::seconds(0)) ==
                                                std::future_status::ready)) {
            const auto r = pending.front().get();
            pending.pop_front();
            stats.n_tokens += r.ok() ? r->n_tokens_appended : 0;
            stats.n_refused += r.ok() ? 0 : 1;
            if (!r.ok() && stats.first_error.empty()) {
                stats.first_error = r.status().ToString();
            }
        }
    };
    const auto gap =
        std::chrono::duration<double>(1.0 / (bars_per_s * static_cast<double>(fleet.ids.size())));
    for (std::size_t k = 0;; ++k) {
        const auto due = start + std::chrono::duration_cast<Clock::duration>(gap * k);
        if (due >= end) {
            break;
        }
        std::this_thread::sleep_until(due);
        const std::size_t i = k % fleet.ids.size();
        pending.push_back(rt.Append(kTenant, fleet.ids[i], RenderBar(source.Next(i))));
        stats.n_bars += 1;
        live.n_bars.fetch_add(1);
        settle(false);
    }
    settle(true);
    return stats;
}

// Asks questions at random sessions, the gaps between them exponential (a Poisson process).
std::vector<std::future<QueryRecord>> AskOnSchedule(Runtime& rt,
                                                    const Fleet& fleet,
                                                    const LoadOptions& o,
                                                    Clock::time_point start,
                                                    Clock::time_point end,
                                                    LiveCounts& live) {
    Rng rng(o.seed);
    std::vector<std::future<QueryRecord>> answers;
    auto due = start;
    while (true) {
        due += std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double, std::milli>(rng.Exponential(o.question_gap_ms)));
        if (due >= end) {
            return answers;
        }
        std::this_thread::sleep_until(due);
        const std::size_t i = rng.Below(fleet.ids.size());
        answers.push_back(Ask(rt, fleet.ids[i],
                              QuestionFor(fleet.symbols[i], o.max_tokens, o.max_staleness), &live));
        live.n_asked.fetch_add(1);
    }
}

// ---- Engine metrics -----------------------------------------------------------------------------

// Series name (with labels) -> value, from Prometheus text; bucket lines are skipped.
using MetricValues = std::map<std::string, double>;

MetricValues ParseMetrics(const std::string& prometheus) {
    MetricValues out;
    std::istringstream in(prometheus);
    std::string line;
    while (std::getline(in, line)) {
        const std::size_t space = line.rfind(' ');
        if (line.empty() || line[0] == '#' || space == std::string::npos ||
            line.find("_bucket") != std::string::npos) {
            continue;
        }
        out[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
    }
    return out;
}

double Get(const MetricValues& m, const std::string& name) {
    auto it = m.find(name);
    return it == m.end() ? 0 : it->second;
}

StepTotals StepsBetween(const MetricValues& a, const MetricValues& b, double wall_ms) {
    auto delta = [&](const std::string& name) { return Get(b, name) - Get(a, name); };
    StepTotals t;
    t.n_steps = delta("kvs_step_ms_count");
    t.step_ms = delta("kvs_step_ms_sum");
    t.decode_ms = delta("kvs_decode_ms_sum");
    t.overhead_ms = delta("kvs_overhead_ms_sum");
    t.query_tokens = delta("kvs_batch_tokens_total{kind=\"query\"}");
    t.ingest_tokens = delta("kvs_batch_tokens_total{kind=\"ingest\"}");
    t.latency_bound_steps = delta("kvs_latency_bound_steps_total");
    t.parks = delta("kvs_parks_total");
    t.restores = delta("kvs_restores_total");
    t.wall_ms = wall_ms;
    return t;
}

// ---- The loaded phase and the idle baseline -----------------------------------------------------

void ShowProgress(const LoadOptions& o,
                  Clock::time_point start,
                  Clock::time_point end,
                  const LiveCounts& live) {
    ProgressBar bar("load", static_cast<std::size_t>(o.duration_s * 10));
    auto note = [&] {
        return std::to_string(live.n_answered.load()) + "/" + std::to_string(live.n_asked.load()) +
               " answered, " + std::to_string(live.n_bars.load()) + " bars";
    };
    while (true) {
        std::this_thread::sleep_until(std::min(end, Clock::now() + std::chrono::milliseconds(200)));
        if (Clock::now() >= end) {
            break;
        }
        bar.Update(static_cast<std::size_t>(MsBetween(start, Clock::now()) / 100), note());
    }
    bar.Update(static_cast<std::size_t>(o.duration_s * 10), note());
    bar.Finish(note());
}

// Shows the questions still unanswered after the schedule ended (a saturated engine has a queue).
void WaitForAnswers(const LiveCounts& live) {
    const int n_asked = live.n_asked.load();
    if (live.n_answered.load() >= n_asked) {
        return;
    }
    ProgressBar bar("answers", static_cast<std::size_t>(n_asked));
    while (live.n_answered.load() < n_asked) {
        bar.Update(static_cast<std::size_t>(live.n_answered.load()), "questions still queued");
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    bar.Update(static_cast<std::size_t>(n_asked));
    bar.Finish();
}

double PendingTokens(Runtime& rt) {
    return Get(ParseMetrics(rt.MetricsPrometheus()), "kvs_pending_ingest_tokens");
}

// Feeds bars and asks questions for duration_s, then waits for every answer.
void RunLoaded(
    Runtime& rt, BarSource& source, const Fleet& fleet, const LoadOptions& o, LoadRun& run) {
    LiveCounts live;
    const MetricValues before = ParseMetrics(rt.MetricsPrometheus());
    const auto start = Clock::now();
    const auto end = start + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(o.duration_s));
    std::vector<std::future<QueryRecord>> answers;
    std::thread feeder(
        [&] { run.feed = FeedBars(rt, source, fleet, o.bars_per_s, start, end, live); });
    std::thread client([&] { answers = AskOnSchedule(rt, fleet, o, start, end, live); });
    ShowProgress(o, start, end, live);
    feeder.join();
    client.join();
    run.pending_tokens_at_end = PendingTokens(rt);
    WaitForAnswers(live);
    for (auto& a : answers) {
        run.loaded.queries.push_back(a.get());
    }
    run.loaded.steps =
        StepsBetween(before, ParseMetrics(rt.MetricsPrometheus()), MsBetween(start, Clock::now()));
}

// Waits until every session has ingested everything it accepted; returns how long that took.
// Fails when the backlog stops shrinking for a minute.
double WaitForIngest(Runtime& rt, const Fleet& fleet) {
    const auto start = Clock::now();
    const double backlog = PendingTokens(rt);
    std::optional<ProgressBar> bar;  // only when there is a backlog to show
    if (backlog > 0) {
        bar.emplace("drain", static_cast<std::size_t>(backlog));
    }
    double lowest = backlog;
    auto last_progress = start;
    for (SessionId id : fleet.ids) {
        while (true) {
            auto info = rt.Info(kTenant, id).get();
            Check(info.status(), "session info");
            if (info->n_pending_tokens == 0) {
                break;
            }
            const double pending = PendingTokens(rt);
            if (pending < lowest) {
                lowest = pending;
                last_progress = Clock::now();
            } else if (MsBetween(last_progress, Clock::now()) > 60'000) {
                throw std::runtime_error("the ingest backlog stopped draining");
            }
            if (bar) {
                bar->Update(static_cast<std::size_t>(std::max(0.0, backlog - pending)),
                            "tokens of backlog ingested");
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
    if (bar) {
        bar->Update(static_cast<std::size_t>(backlog));
        bar->Finish();
    }
    return MsBetween(start, Clock::now());
}

// The same kind of question on the same sessions, one at a time, nothing else running.
Phase RunIdle(Runtime& rt, const Fleet& fleet, const LoadOptions& o) {
    Rng rng(o.seed ^ 0x1D1EULL);
    Phase phase;
    const MetricValues before = ParseMetrics(rt.MetricsPrometheus());
    const auto start = Clock::now();
    for (int k = 0; k < o.idle_queries; ++k) {
        const std::size_t i = rng.Below(fleet.ids.size());
        phase.queries.push_back(Ask(rt, fleet.ids[i],
                                    QuestionFor(fleet.symbols[i], o.max_tokens, o.max_staleness),
                                    nullptr)
                                    .get());
    }
    phase.steps =
        StepsBetween(before, ParseMetrics(rt.MetricsPrometheus()), MsBetween(start, Clock::now()));
    return phase;
}

}  // namespace

LoadRun RunQueries(const LoadOptions& o, const std::string& model, int n_slots) {
    RuntimeOptions ro;
    ro.engine.model_path = model;
    ro.engine.n_sessions = n_slots;
    ro.engine.n_ctx_session = o.n_ctx;
    ro.engine.max_sessions = std::max(ro.engine.max_sessions, o.n_sessions);
    ro.engine.n_threads = o.n_threads;
    ro.engine.n_gpu_layers = o.n_gpu_layers;
    const auto target = ParseStepTarget(o.step_target);  // checked by the command line
    ro.engine.step_target = target.ok() ? target->first : StepTarget::kAuto;
    ro.engine.target_step_ms = target.ok() ? target->second : 0.0;
    ro.engine.prefill_chunk_tokens = o.prefill_chunk_tokens;
    ro.tenant_limits.max_sessions = std::max(ro.tenant_limits.max_sessions, o.n_sessions);
    auto rt = Runtime::Start(ro);
    Check(rt.status(), "starting the runtime");
    BarSource source(o.csv, o.seed);
    const Fleet fleet = StartFleet(**rt, source, o);
    LoadRun run;
    RunLoaded(**rt, source, fleet, o, run);
    run.drain_ms = WaitForIngest(**rt, fleet);
    std::fprintf(stderr, "load: feed stopped, backlog drained in %.0f ms; idle baseline (%d)\n",
                 run.drain_ms, o.idle_queries);
    run.idle = RunIdle(**rt, fleet, o);
    run.metrics_table = (*rt)->MetricsTable();
    return run;
}

}  // namespace kvs::load
