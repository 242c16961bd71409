// report.md of `kvstream bench SCENARIO`: the tables, the ablation and the targets.

#include "bench/report_format.h"
#include "common/stats.h"

#include <algorithm>
#include <optional>
#include <set>
#include <sstream>

namespace kvs::bench {
namespace {

// What every section reads: the run and the measured samples by system.
struct Input {
    const Scenario& sc;
    const RunInfo& info;
    const std::vector<SystemRun>& runs;
    const std::optional<Floor>& floor;
    SamplesBySystem measured;
    std::vector<SystemKind> kinds;
    std::set<int> bar_counts;  // the bars between questions kvstream was asked at

    std::vector<const QuerySample*> Samples(SystemKind k) const {
        auto it = measured.find(k);
        return it == measured.end() ? std::vector<const QuerySample*>() : it->second;
    }

    // Total p50 of system k's questions asked after `bars` new bars.
    double P50At(SystemKind k, int bars) const {
        std::vector<double> v;
        for (const auto* s : Samples(k)) {
            if (s->bars_since == bars) {
                v.push_back(s->answer.total_ms);
            }
        }
        return Median(v);
    }
};

double TotalMs(const QuerySample& s) {
    return s.answer.total_ms;
}

// A flash hit's time inside the server; -1 (left out by Values) for every other answer.
double HitServerMs(const QuerySample& s) {
    return s.answer.cached ? s.answer.server_ms : -1.0;
}

double ComputedTokens(const QuerySample& s) {
    return static_cast<double>(s.answer.computed_tokens);
}

// The title, the setup and how to reproduce; failed systems.
void Header(std::ostream& o, const Input& in) {
    const Scenario& sc = in.sc;
    const RunInfo& info = in.info;
    o << "# Streaming market benchmark: " << sc.name << "\n\n";
    if (!sc.description.empty()) {
        o << sc.description << "\n\n";
    }
    o << "- Machine: " << info.machine << "; " << info.threads << " threads for every server\n"
      << "- Model: `" << info.model << "`; answers of " << sc.answer_tokens
      << " tokens (greedy, end of generation ignored; flash answers as registered)\n"
      << "- Sessions: " << sc.sessions.size() << " (";
    for (std::size_t i = 0; i < sc.sessions.size(); ++i) {
        o << (i ? ", " : "") << sc.sessions[i].feed << " from " << sc.sessions[i].context_tokens
          << " tokens";
    }
    o << "); " << Fmt("%g", sc.bars_per_second) << " bars/s per session; "
      << (sc.sweep() ? "one question after each of " : "questions every ")
      << (sc.sweep() ? [&] {
             std::string s;
             for (int k : sc.after_bars) {
                 s += (s.empty() ? "" : ", ") + std::to_string(k);
             }
             return s + " new bars";
         }()
                     : Fmt("%g s on average (Poisson), ", sc.question_gap_s) +
                           Fmt("for %g s", sc.duration_s))
      << "; seed " << sc.seed << "; " << info.ctx_per_session << " tokens of KV per session\n"
      << "- Started " << info.started_utc << ", took " << Fmt("%.0f s", info.wall_s) << "\n"
      << "- Reproduce: `" << info.command << "`\n\n";

    for (const auto& r : in.runs) {
        if (!r.error.empty()) {
            o << "**" << SystemName(r.system) << " failed**: " << r.error << "\n\n";
        }
    }
}

// Question latency of the measured phase, one row per system.
void LatencyTable(std::ostream& o, const Input& in) {
    const std::vector<SystemRun>& runs = in.runs;
    auto samples = [&](SystemKind k) { return in.Samples(k); };
    const auto total = TotalMs;
    o << "## Question latency (measured phase)\n\n"
      << "| system | questions | failed | first token p50 | total p50 | p95 | p99 | tokens "
         "computed p50 | server CPU (cores busy) | CPU per question |\n"
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (SystemKind k : in.kinds) {
        const auto s = samples(k);
        int failed = 0;
        double cpu = 0;
        double wall = 0;
        for (const auto& r : runs) {
            if (r.system == k) {
                cpu += r.cpu_s;
                wall += r.measured_s;
                for (const auto& q : r.samples) {
                    failed += !q.warmup && !q.error.empty();
                }
            }
        }
        const auto t = Values(s, total);
        o << "| " << SystemName(k) << " | " << s.size() << " | " << failed << " | "
          << Ms(Median(Values(s, [](const QuerySample& q) { return q.answer.ttft_ms; }))) << " | "
          << Ms(Median(t)) << " | " << Ms(Quantile(t, 0.95)) << " | " << Ms(Quantile(t, 0.99))
          << " | " << Fmt("%.0f", Median(Values(s, ComputedTokens))) << " | " << Fmt("%.0f s", cpu)
          << " (" << Fmt("%.2f", wall > 0 ? cpu / wall : 0) << ") | "
          << (s.empty() ? std::string("-") : Ms(cpu * 1000 / static_cast<double>(s.size())))
          << " |\n";
    }
}

// Server start, warm-up, append acknowledgements and ingest lag, one row per run.
void IngestTable(std::ostream& o, const Input& in) {
    const Scenario& sc = in.sc;
    o << "\n## Ingest and warm-up\n\n"
      << "| system | server start | warm-up | bars in phase | append ack p50 / p99 | ingest lag "
         "p50 / p95 / max | peak RSS |\n|---|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& r : in.runs) {
        o << "| " << SystemName(r.system)
          << (sc.rounds > 1 ? " #" + std::to_string(r.round + 1) : "") << " | "
          << Fmt("%.1f s", r.start_s) << " | " << Fmt("%.1f s", r.warmup_s) << " | " << r.bars
          << " | "
          << (r.ack_ms.empty() ? std::string("client-side")
                               : Ms(Median(r.ack_ms)) + " / " + Ms(Quantile(r.ack_ms, 0.99)))
          << " | "
          << (r.ingest_lag_ms.empty()
                  ? std::string("at question time")
                  : Ms(Median(r.ingest_lag_ms)) + " / " + Ms(Quantile(r.ingest_lag_ms, 0.95)) +
                        " / " + Ms(Quantile(r.ingest_lag_ms, 1.0)))
          << " | " << Fmt("%.0f MiB", r.peak_rss_mib) << " |\n";
    }
    o << "\nWarm-up brings each session to its starting context: kvstream ingests the history "
         "(appends, then the engine's prefill); llama-server answers each session's first "
         "question with the whole history (a cold prefill); the stateless engine has nothing to "
         "warm.\n";
}

// Latency by context bucket.
void ContextTable(std::ostream& o, const Input& in) {
    auto samples = [&](SystemKind k) { return in.Samples(k); };
    std::set<int> buckets;
    for (const auto& [k, list] : in.measured) {
        for (const auto* s : list) {
            buckets.insert(Bucket(s->context_tokens));
        }
    }
    o << "\n## Latency against context (total p50, questions)\n\n| system |";
    for (int b : buckets) {
        o << " ~" << BucketLabel(b) << " |";
    }
    o << "\n|---|";
    for (std::size_t i = 0; i < buckets.size(); ++i) {
        o << "---:|";
    }
    o << "\n";
    for (SystemKind k : in.kinds) {
        o << "| " << SystemName(k) << " |";
        for (int b : buckets) {
            std::vector<double> v;
            for (const auto* s : samples(k)) {
                if (Bucket(s->context_tokens) == b) {
                    v.push_back(s->answer.total_ms);
                }
            }
            o << " " << (v.empty() ? "-" : Ms(Median(v)) + " (" + std::to_string(v.size()) + ")")
              << " |";
        }
        o << "\n";
    }
    o << "\n![latency against context](latency_vs_context.svg)\n";
}

// The speedup against the bars between questions (sweep scenarios only).
void BarsTable(std::ostream& o, const Input& in) {
    if (in.sc.sweep()) {
        o << "\n## Bars between questions (total p50; in brackets: how many times kvstream's)\n\n"
          << "| bars | ";
        for (SystemKind k : in.kinds) {
            o << SystemName(k) << " | ";
        }
        o << "\n|---:|";
        for (std::size_t i = 0; i < in.kinds.size(); ++i) {
            o << "---:|";
        }
        o << "\n";
        for (int b : in.bar_counts) {
            const double base = in.P50At(SystemKind::kKvstream, b);
            o << "| " << b << " | ";
            for (SystemKind k : in.kinds) {
                const double v = in.P50At(k, b);
                o << (v > 0 ? Ms(v) + (k != SystemKind::kKvstream && base > 0
                                           ? " (" + Ratio(v / base) + ")"
                                           : "")
                            : "-")
                  << " | ";
            }
            o << "\n";
        }
        o << "\n![latency against bars between questions](latency_vs_bars.svg)\n";
    }
}

// Where the time goes: what each part contributes.
void Ablation(std::ostream& o, const Input& in) {
    auto samples = [&](SystemKind k) { return in.Samples(k); };
    const auto total = TotalMs;
    const auto kv = samples(SystemKind::kKvstream);
    const double kv_p50 = Median(Values(kv, total));
    o << "\n## Where the time goes (ablation)\n\n| step | total p50 | |\n|---|---:|---|\n";
    const double sl_p50 = Median(Values(samples(SystemKind::kStateless), total));
    if (sl_p50 > 0) {
        o << "| stateless: the whole context prefilled for each question | " << Ms(sl_p50)
          << " | |\n";
    }
    if (kv_p50 > 0) {
        o << "| + stateful KV reuse: only the question and answer computed | " << Ms(kv_p50)
          << " | " << (sl_p50 > 0 ? Ratio(sl_p50 / kv_p50) + " faster than stateless" : "")
          << " |\n";
    }
    const auto fl = samples(SystemKind::kKvstreamFlash);
    const double fl_p50 = Median(Values(fl, total));
    if (fl_p50 > 0) {
        int hits = 0;
        int joins = 0;
        for (const auto* s : fl) {
            hits += s->answer.cached;
            joins += s->answer.joined;
        }
        const auto hit_ms = Values(fl, HitServerMs);
        o << "| + flash queries: registered questions answered from the cache | " << Ms(fl_p50)
          << " | " << hits << " of " << fl.size() << " cached, " << joins
          << " joined the evaluation running when they came (the others were asked before the "
             "new bar's evaluation started, and computed live); "
          << (hit_ms.empty() ? std::string("no hit")
                             : "a hit in the server p50 " + Ms(Median(hit_ms)) + ", max " +
                                   Ms(Quantile(hit_ms, 1.0)))
          << "; every answer at the newest version (0 versions stale: the asks accept no stale "
             "answer) |\n";
    }
    for (const auto& r : in.runs) {
        if (r.system == SystemKind::kKvstream && r.overhead_share) {
            o << "\nScheduler overhead (time in a step outside llama_decode): "
              << Fmt("%.2f%%", *r.overhead_share * 100) << " of step time.\n";
            break;
        }
    }
}

// The parts of one answer's time, in order; the last two are differences of measured spans.
struct Parts {
    double wait, catch_up, prefill, decode, server_other, http;
};

std::optional<Parts> PartsOf(const QuerySample& s) {
    const Answer& a = s.answer;
    if (a.wait_ms < 0 || a.queued_ms < 0 || a.prefill_ms < 0 || a.decode_ms < 0 ||
        a.in_server_ms < 0) {
        return std::nullopt;
    }
    const double engine = a.wait_ms + a.queued_ms + a.prefill_ms + a.decode_ms;
    return Parts{a.wait_ms,
                 a.queued_ms,
                 a.prefill_ms,
                 a.decode_ms,
                 a.in_server_ms - engine,
                 a.total_ms - a.in_server_ms};
}

// Every millisecond of kvstream's questions attributed: means (which add up) and medians.
void Attribution(std::ostream& o, const Input& in) {
    o << "\n## Where a question's time goes (kvstream)\n\nEach answer's own timings: the engine "
         "step in flight when it arrived (wait), its session's catch-up ingest (queued), its "
         "prefill and decode, the rest of its time inside the server (arrival at the route to "
         "the answer's last event, minus those), and the HTTP side (the client's total minus "
         "the server's time).\n\n| system | answers | wait for the step in flight | catch-up "
         "ingest | prefill | decode | rest in the server | HTTP side | total |\n"
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (SystemKind k : {SystemKind::kKvstream, SystemKind::kKvstreamFlash}) {
        std::vector<Parts> parts;
        std::vector<double> totals;
        for (const auto* s : in.Samples(k)) {
            if (auto p = PartsOf(*s)) {
                parts.push_back(*p);
                totals.push_back(s->answer.total_ms);
            }
        }
        if (parts.empty()) {
            continue;
        }
        auto cell = [&](double Parts::*m) {
            std::vector<double> v;
            for (const Parts& p : parts) {
                v.push_back(p.*m);
            }
            return Ms(Mean(v)) + " (p50 " + Ms(Median(v)) + ")";
        };
        o << "| " << SystemName(k) << " | " << parts.size() << " | " << cell(&Parts::wait) << " | "
          << cell(&Parts::catch_up) << " | " << cell(&Parts::prefill) << " | "
          << cell(&Parts::decode) << " | " << cell(&Parts::server_other) << " | "
          << cell(&Parts::http) << " | " << Ms(Mean(totals)) << " (p50 " << Ms(Median(totals))
          << ") |\n";
    }
    o << "\nMeans add up to the mean total; the rest in the server is what no engine timing "
         "covers (handing the question to the engine thread and the answer back).\n";
}

// What the flash engine did in the measured phase (the server's metrics, end minus start) next
// to what the data offered and what the engine could evaluate: the arithmetic of flash work.
void FlashWork(std::ostream& o, const Input& in) {
    const SystemRun* run = nullptr;
    for (const auto& r : in.runs) {
        run = r.system == SystemKind::kKvstreamFlash && !r.metrics_delta.empty() ? &r : run;
    }
    if (run == nullptr || run->measured_s <= 0) {
        return;
    }
    auto m = [run](const char* series) {
        auto it = run->metrics_delta.find(series);
        return it == run->metrics_delta.end() ? 0.0 : it->second;
    };
    const double wall_s = run->measured_s;
    const double evals = m("kvs_flash_evaluations_total");
    const double n_timed = m("kvs_flash_eval_ms_count");
    const double engine_ms = m("kvs_flash_engine_ms");  // dropped and preempted work included
    const double offered = run->bars * static_cast<double>(in.sc.flash_questions.size());
    int asks = 0;
    int hits = 0;
    for (const auto* s : in.Samples(SystemKind::kKvstreamFlash)) {
        asks += s->round == run->round ? 1 : 0;
        hits += s->round == run->round && s->answer.cached ? 1 : 0;
    }
    o << "\n## Flash work (kvstream-flash, measured phase)\n\n"
      << "From the server's metrics over the phase (" << Fmt("%.0f", wall_s)
      << " s).\n\n| figure | value |\n|---|---:|\n"
      << "| versions to evaluate (bars x registered questions per session) | "
      << Fmt("%.0f (%.2f/s)", offered, offered / wall_s) << " |\n"
      << "| evaluations finished | " << Fmt("%.0f (%.2f/s)", evals, evals / wall_s) << " |\n"
      << "| mean evaluation time (start to last token, waits for live queries included) | "
      << (n_timed > 0 ? Ms(m("kvs_flash_eval_ms_sum") / n_timed) : std::string("none")) << " |\n"
      << "| engine time in evaluations (finished, dropped and preempted) | " << Ms(engine_ms)
      << Fmt(" (%.0f%% of wall)", 100 * engine_ms / (wall_s * 1000)) << " |\n"
      << "| dropped for new data / preempted by a live query / finished overtaken | "
      << Fmt("%.0f / %.0f / %.0f", m("kvs_flash_dropped_total"), m("kvs_flash_preempted_total"),
             m("kvs_flash_finished_overtaken_total"))
      << " |\n| steps in which the time cap held a start back | "
      << Fmt("%.0f", m("kvs_flash_budget_waits_total"))
      << " |\n| asks: hits / joins / live answers kept as results | " << hits << " of " << asks
      << Fmt(" / %.0f / %.0f", m("kvs_flash_joins_total"), m("kvs_flash_live_results_total"))
      << " |\n";
    if (evals > 0 && engine_ms > 0) {
        o << "\nEvaluations cost " << Ms(engine_ms / evals)
          << " of engine time each (the wasted work of dropped ones included): an engine doing "
             "nothing else would finish about "
          << Fmt("%.2f", evals / (engine_ms / 1000)) << " per second; the data offered "
          << Fmt("%.2f", offered / wall_s) << " versions per second and "
          << Fmt("%.2f", evals / wall_s) << " were evaluated.\n";
    }
}

// The targets of the reference case, met or missed.
void Targets(std::ostream& o, const Input& in) {
    auto samples = [&](SystemKind k) { return in.Samples(k); };
    const auto total = TotalMs;
    const auto kv = samples(SystemKind::kKvstream);
    const auto fl = samples(SystemKind::kKvstreamFlash);
    o << "\n## Targets\n\nDefined for the reference case (bench/scenarios/targets.json: the "
         "Qwen2.5-0.5B shape, ~8k tokens, 30 bars between questions); for other scenarios these "
         "are comparisons, not goals.\n\n| target | measured | |\n|---|---|---|\n";
    if (in.floor) {
        std::vector<double> near;
        for (const auto* s : kv) {
            if (Bucket(s->context_tokens) == Bucket(in.floor->depth)) {
                near.push_back(s->answer.total_ms);
            }
        }
        const double adjusted =
            in.floor->pp_ms + in.floor->tg_ms * (in.floor->gen - 1) / in.floor->gen;
        const double p50 = Median(near);
        o << "| kvstream p50 at ~" << BucketLabel(Bucket(in.floor->depth))
          << " within 10% of llama-bench's floor (pp" << in.floor->prompt << " + tg"
          << in.floor->gen << " at depth " << in.floor->depth << ": " << Ms(in.floor->total_ms())
          << "; adjusted for the " << (in.floor->gen - 1) << " decodes we run: " << Ms(adjusted)
          << ") | " << Ms(p50) << " = " << Fmt("%.2f", adjusted > 0 ? p50 / adjusted : 0)
          << "x the adjusted floor | " << (p50 > 0 && p50 <= adjusted * 1.1 ? "met" : "missed")
          << " |\n";
    }
    // The speedups: at the sweep's largest count of bars between questions, else over the
    // whole measured phase.
    const int most = in.bar_counts.empty() ? 0 : *in.bar_counts.rbegin();
    auto p50_of = [&](SystemKind k) {
        return in.sc.sweep() ? in.P50At(k, most) : Median(Values(samples(k), total));
    };
    const std::string when = in.sc.sweep()
                                 ? "with " + std::to_string(most) + " bars between questions"
                                 : "over all questions (p50)";
    const double kv_most = p50_of(SystemKind::kKvstream);
    for (auto [k, want] : {std::pair{SystemKind::kLlamaServer, 10.0},
                           std::pair{SystemKind::kLlamaServerShared, 20.0},
                           std::pair{SystemKind::kStateless, 30.0}}) {
        const double v = p50_of(k);
        if (v > 0 && kv_most > 0) {
            o << "| at least " << Ratio(want) << " faster than " << SystemName(k) << " " << when
              << " | " << Ms(v) << " / " << Ms(kv_most) << " = " << Ratio(v / kv_most) << " | "
              << (v / kv_most >= want ? "met" : "missed") << " |\n";
        }
    }
    if (!fl.empty()) {
        const auto server = Values(fl, HitServerMs);
        const double worst = Quantile(server, 1.0);
        if (server.empty()) {
            o << "| flash hits under 1 ms inside the server | no hit among " << fl.size()
              << " asks | missed |\n";
        } else {
            o << "| flash hits under 1 ms inside the server | p50 " << Ms(Median(server))
              << ", max " << Ms(worst) << " over " << server.size() << " hits | "
              << (worst < 1 ? "met" : "missed") << " |\n";
        }
    }
    o << "\nRaw figures: `queries.csv` (one row per question), `summary.json`; server logs beside "
         "them.\n";
}

}  // namespace

std::string ReportMarkdown(const Scenario& sc,
                           const RunInfo& info,
                           const std::vector<SystemRun>& runs,
                           const std::optional<Floor>& floor) {
    Input in{sc, info, runs, floor, Measured(runs), Order(runs), {}};
    for (const auto* s : in.Samples(SystemKind::kKvstream)) {
        in.bar_counts.insert(s->bars_since);
    }
    std::ostringstream o;
    Header(o, in);
    LatencyTable(o, in);
    IngestTable(o, in);
    ContextTable(o, in);
    BarsTable(o, in);
    Ablation(o, in);
    Attribution(o, in);
    FlashWork(o, in);
    Targets(o, in);
    return o.str();
}

}  // namespace kvs::bench
