#include "bench/report.h"

#include "bench/svg_plot.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

namespace kvs::bench {
namespace {

using Json = nlohmann::json;

[[gnu::format(printf, 1, 2)]] std::string Fmt(const char* format, ...) {
    char buf[128];
    va_list args;
    va_start(args, format);
    std::vsnprintf(buf, sizeof buf, format, args);
    va_end(args);
    return buf;
}

// Milliseconds as a readable figure: "0.41 ms", "912 ms", "40.3 s".
std::string Ms(double ms) {
    if (ms < 10) {
        return Fmt("%.2f ms", ms);
    }
    if (ms < 1000) {
        return Fmt("%.0f ms", ms);
    }
    return Fmt("%.2f s", ms / 1000);
}

std::string Ratio(double r) {
    return r >= 10 ? Fmt("%.0fx", r) : Fmt("%.1fx", r);
}

// Answered questions of the measured phase, by system (rounds pooled).
std::map<SystemKind, std::vector<const QuerySample*>> Measured(const std::vector<SystemRun>& runs) {
    std::map<SystemKind, std::vector<const QuerySample*>> by;
    for (const auto& r : runs) {
        auto& list = by[r.system];
        for (const auto& s : r.samples) {
            if (!s.warmup && s.error.empty()) {
                list.push_back(&s);
            }
        }
    }
    return by;
}

template <typename F>
std::vector<double> Values(const std::vector<const QuerySample*>& samples, F&& f) {
    std::vector<double> v;
    for (const auto* s : samples) {
        const double x = f(*s);
        if (x >= 0) {
            v.push_back(x);
        }
    }
    return v;
}

// A context size's bucket: the nearest power of two times 512 (512, 1k, 2k, ..., 16k, ...).
int Bucket(int tokens) {
    const double k = std::round(std::log2(std::max(tokens, 256) / 512.0));
    return static_cast<int>(512 * std::pow(2.0, std::max(k, -1.0)));
}

std::string BucketLabel(int b) {
    return b >= 1024 ? std::to_string(b / 1024) + "k" : std::to_string(b);
}

std::vector<SystemKind> Order(const std::vector<SystemRun>& runs) {
    std::vector<SystemKind> kinds;
    for (const auto& r : runs) {
        if (std::find(kinds.begin(), kinds.end(), r.system) == kinds.end()) {
            kinds.push_back(r.system);
        }
    }
    return kinds;
}

Status WriteFile(const std::string& path, const std::string& text) {
    std::ofstream f(path);
    f << text;
    f.close();
    return f ? Status::Ok() : InvalidArgument("cannot write " + path);
}

std::string Csv(const std::vector<SystemRun>& runs) {
    std::ostringstream o;
    o << "system,round,session,warmup,at_s,late_ms,bars_since,context_tokens,question_tokens,"
         "ttft_ms,total_ms,server_ms,engine_ms,queued_ms,computed_tokens,answer_tokens,cached,"
         "error\n";
    for (const auto& r : runs) {
        for (const auto& s : r.samples) {
            std::string error = s.error;
            std::replace(error.begin(), error.end(), '"', '\'');
            std::replace(error.begin(), error.end(), '\n', ' ');
            const Answer& a = s.answer;
            o << SystemName(s.system) << ',' << s.round << ',' << s.session << ','
              << (s.warmup ? 1 : 0) << ',' << Fmt("%.3f", s.at_s) << ',' << Fmt("%.1f", s.late_ms)
              << ',' << s.bars_since << ',' << s.context_tokens << ',' << s.question_tokens << ','
              << Fmt("%.3f", a.ttft_ms) << ',' << Fmt("%.3f", a.total_ms) << ','
              << Fmt("%.3f", a.server_ms) << ',' << Fmt("%.3f", a.engine_ms) << ','
              << Fmt("%.3f", a.queued_ms) << ',' << a.computed_tokens << ',' << a.answer_tokens
              << ',' << (a.cached ? 1 : 0) << ",\"" << error << "\"\n";
        }
    }
    return o.str();
}

Json Summary(const Scenario& sc,
             const RunInfo& info,
             const std::vector<SystemRun>& runs,
             const std::optional<Floor>& floor) {
    Json j = {{"scenario", sc.name},
              {"scenario_file", info.scenario_path},
              {"model", info.model},
              {"machine", info.machine},
              {"threads", info.threads},
              {"ctx_per_session", info.ctx_per_session},
              {"started_utc", info.started_utc},
              {"wall_s", info.wall_s},
              {"runs", Json::array()}};
    for (const auto& r : runs) {
        std::vector<const QuerySample*> ok;
        int failed = 0;
        for (const auto& s : r.samples) {
            if (!s.warmup) {
                s.error.empty() ? ok.push_back(&s) : void(++failed);
            }
        }
        const auto total = Values(ok, [](const QuerySample& s) { return s.answer.total_ms; });
        const auto ttft = Values(ok, [](const QuerySample& s) { return s.answer.ttft_ms; });
        Json jr = {{"system", SystemName(r.system)},
                   {"round", r.round},
                   {"error", r.error},
                   {"start_s", r.start_s},
                   {"warmup_s", r.warmup_s},
                   {"measured_s", r.measured_s},
                   {"cpu_s", r.cpu_s},
                   {"peak_rss_mib", r.peak_rss_mib},
                   {"bars", r.bars},
                   {"questions", ok.size()},
                   {"failed", failed}};
        for (double p : {50.0, 95.0, 99.0}) {
            const std::string n = std::to_string(static_cast<int>(p));
            jr["total_ms_p" + n] = Percentile(total, p);
            jr["ttft_ms_p" + n] = Percentile(ttft, p);
            jr["ingest_lag_ms_p" + n] = Percentile(r.ingest_lag_ms, p);
            jr["ack_ms_p" + n] = Percentile(r.ack_ms, p);
        }
        if (r.overhead_share) {
            jr["overhead_share"] = *r.overhead_share;
        }
        j["runs"].push_back(jr);
    }
    if (floor) {
        j["floor"] = {{"depth", floor->depth}, {"prompt", floor->prompt},
                      {"gen", floor->gen},     {"pp_ms", floor->pp_ms},
                      {"tg_ms", floor->tg_ms}, {"total_ms", floor->total_ms()}};
    }
    return j;
}

}  // namespace

double Percentile(std::vector<double> values, double p) {
    if (values.empty()) {
        return 0;
    }
    std::sort(values.begin(), values.end());
    const double rank = std::ceil(p / 100.0 * static_cast<double>(values.size()));
    const std::size_t i =
        static_cast<std::size_t>(std::clamp(rank, 1.0, static_cast<double>(values.size()))) - 1;
    return values[i];
}

std::string MachineDescription() {
    std::ifstream cpu("/proc/cpuinfo");
    std::string model = "unknown CPU";
    for (std::string line; std::getline(cpu, line);) {
        if (line.starts_with("model name")) {
            model = line.substr(line.find(':') + 2);
            break;
        }
    }
    std::ifstream mem("/proc/meminfo");
    std::string label;
    double kb = 0;
    mem >> label >> kb;
    return std::to_string(std::thread::hardware_concurrency()) + " cores, " + model + ", " +
           Fmt("%.0f GiB", kb / 1024 / 1024);
}

std::string ReportMarkdown(const Scenario& sc,
                           const RunInfo& info,
                           const std::vector<SystemRun>& runs,
                           const std::optional<Floor>& floor);

Status WriteResults(const std::string& out_dir,
                    const Scenario& scenario,
                    const RunInfo& info,
                    const std::vector<SystemRun>& runs,
                    const std::optional<Floor>& floor) {
    KV_RETURN_IF_ERROR(WriteFile(out_dir + "/queries.csv", Csv(runs)));
    KV_RETURN_IF_ERROR(
        WriteFile(out_dir + "/summary.json", Summary(scenario, info, runs, floor).dump(2) + "\n"));

    const auto measured = Measured(runs);
    const auto kinds = Order(runs);
    Plot by_context{"Question latency against context (p50 per context bucket)",
                    "tokens of context when asked",
                    "seconds (log scale)",
                    true,
                    true,
                    {}};
    Plot by_bars{"Question latency against bars arrived since the previous question (p50)",
                 "bars between questions",
                 "seconds (log scale)",
                 true,
                 true,
                 {}};
    for (std::size_t i = 0; i < kinds.size(); ++i) {
        const auto it = measured.find(kinds[i]);
        if (it == measured.end()) {
            continue;
        }
        std::map<int, std::vector<double>> ctx;
        std::map<int, std::vector<double>> bars;
        for (const auto* s : it->second) {
            ctx[Bucket(s->context_tokens)].push_back(s->answer.total_ms / 1000);
            bars[s->bars_since].push_back(s->answer.total_ms / 1000);
        }
        PlotSeries a{SystemName(kinds[i]), SeriesColor(i), {}};
        for (const auto& [b, v] : ctx) {
            a.points.emplace_back(b, Percentile(v, 50));
        }
        by_context.series.push_back(a);
        PlotSeries b{SystemName(kinds[i]), SeriesColor(i), {}};
        for (const auto& [k, v] : bars) {
            b.points.emplace_back(k, Percentile(v, 50));
        }
        by_bars.series.push_back(b);
    }
    KV_RETURN_IF_ERROR(WriteFile(out_dir + "/latency_vs_context.svg", RenderSvg(by_context)));
    if (scenario.sweep()) {
        KV_RETURN_IF_ERROR(WriteFile(out_dir + "/latency_vs_bars.svg", RenderSvg(by_bars)));
    }
    return WriteFile(out_dir + "/report.md", ReportMarkdown(scenario, info, runs, floor));
}

std::string ReportMarkdown(const Scenario& sc,
                           const RunInfo& info,
                           const std::vector<SystemRun>& runs,
                           const std::optional<Floor>& floor) {
    const auto measured = Measured(runs);
    const auto kinds = Order(runs);
    auto samples = [&](SystemKind k) {
        auto it = measured.find(k);
        return it == measured.end() ? std::vector<const QuerySample*>() : it->second;
    };
    auto total = [](const QuerySample& s) { return s.answer.total_ms; };
    std::ostringstream o;
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

    for (const auto& r : runs) {
        if (!r.error.empty()) {
            o << "**" << SystemName(r.system) << " failed**: " << r.error << "\n\n";
        }
    }

    o << "## Question latency (measured phase)\n\n"
      << "| system | questions | failed | first token p50 | total p50 | p95 | p99 | tokens "
         "computed p50 | server CPU (cores busy) | CPU per question |\n"
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (SystemKind k : kinds) {
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
          << Ms(Percentile(Values(s, [](const QuerySample& q) { return q.answer.ttft_ms; }), 50))
          << " | " << Ms(Percentile(t, 50)) << " | " << Ms(Percentile(t, 95)) << " | "
          << Ms(Percentile(t, 99)) << " | "
          << Fmt("%.0f", Percentile(Values(s,
                                           [](const QuerySample& q) {
                                               return static_cast<double>(q.answer.computed_tokens);
                                           }),
                                    50))
          << " | " << Fmt("%.0f s", cpu) << " (" << Fmt("%.2f", wall > 0 ? cpu / wall : 0) << ") | "
          << (s.empty() ? std::string("-") : Ms(cpu * 1000 / static_cast<double>(s.size())))
          << " |\n";
    }

    o << "\n## Ingest and warm-up\n\n"
      << "| system | server start | warm-up | bars in phase | append ack p50 / p99 | ingest lag "
         "p50 / p95 / max | peak RSS |\n|---|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& r : runs) {
        o << "| " << SystemName(r.system)
          << (sc.rounds > 1 ? " #" + std::to_string(r.round + 1) : "") << " | "
          << Fmt("%.1f s", r.start_s) << " | " << Fmt("%.1f s", r.warmup_s) << " | " << r.bars
          << " | "
          << (r.ack_ms.empty()
                  ? std::string("client-side")
                  : Ms(Percentile(r.ack_ms, 50)) + " / " + Ms(Percentile(r.ack_ms, 99)))
          << " | "
          << (r.ingest_lag_ms.empty() ? std::string("at question time")
                                      : Ms(Percentile(r.ingest_lag_ms, 50)) + " / " +
                                            Ms(Percentile(r.ingest_lag_ms, 95)) + " / " +
                                            Ms(Percentile(r.ingest_lag_ms, 100)))
          << " | " << Fmt("%.0f MiB", r.peak_rss_mib) << " |\n";
    }
    o << "\nWarm-up brings each session to its starting context: kvstream ingests the history "
         "(appends, then the engine's prefill); llama-server answers each session's first "
         "question with the whole history (a cold prefill); the stateless engine has nothing to "
         "warm.\n";

    // Latency by context bucket.
    std::set<int> buckets;
    for (const auto& [k, list] : measured) {
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
    for (SystemKind k : kinds) {
        o << "| " << SystemName(k) << " |";
        for (int b : buckets) {
            std::vector<double> v;
            for (const auto* s : samples(k)) {
                if (Bucket(s->context_tokens) == b) {
                    v.push_back(s->answer.total_ms);
                }
            }
            o << " "
              << (v.empty() ? "-" : Ms(Percentile(v, 50)) + " (" + std::to_string(v.size()) + ")")
              << " |";
        }
        o << "\n";
    }
    o << "\n![latency against context](latency_vs_context.svg)\n";

    // The speedup against the bars between questions.
    std::set<int> bar_counts;
    for (const auto* s : samples(SystemKind::kKvstream)) {
        bar_counts.insert(s->bars_since);
    }
    auto p50_at = [&](SystemKind k, int bars) {
        std::vector<double> v;
        for (const auto* s : samples(k)) {
            if (s->bars_since == bars) {
                v.push_back(s->answer.total_ms);
            }
        }
        return Percentile(v, 50);
    };
    if (sc.sweep()) {
        o << "\n## Bars between questions (total p50; in brackets: how many times kvstream's)\n\n"
          << "| bars | ";
        for (SystemKind k : kinds) {
            o << SystemName(k) << " | ";
        }
        o << "\n|---:|";
        for (std::size_t i = 0; i < kinds.size(); ++i) {
            o << "---:|";
        }
        o << "\n";
        for (int b : bar_counts) {
            const double base = p50_at(SystemKind::kKvstream, b);
            o << "| " << b << " | ";
            for (SystemKind k : kinds) {
                const double v = p50_at(k, b);
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

    // Ablation: what each part contributes.
    const auto kv = samples(SystemKind::kKvstream);
    const double kv_p50 = Percentile(Values(kv, total), 50);
    o << "\n## Where the time goes (ablation)\n\n| step | total p50 | |\n|---|---:|---|\n";
    const double sl_p50 = Percentile(Values(samples(SystemKind::kStateless), total), 50);
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
    const double fl_p50 = Percentile(Values(fl, total), 50);
    if (fl_p50 > 0) {
        int hits = 0;
        for (const auto* s : fl) {
            hits += s->answer.cached;
        }
        const auto hit_ms = Values(
            fl, [](const QuerySample& s) { return s.answer.cached ? s.answer.server_ms : -1.0; });
        o << "| + flash queries: registered questions answered from the cache | " << Ms(fl_p50)
          << " | " << hits << " of " << fl.size()
          << " cached (the others were asked before the new bar's answer was ready, and computed "
             "live); a hit in the server p50 "
          << Ms(Percentile(hit_ms, 50)) << ", max " << Ms(Percentile(hit_ms, 100)) << " |\n";
    }
    if (!kv.empty()) {
        const double engine =
            Percentile(Values(kv, [](const QuerySample& s) { return s.answer.engine_ms; }), 50);
        const double queued =
            Percentile(Values(kv, [](const QuerySample& s) { return s.answer.queued_ms; }), 50);
        o << "\nkvstream's stateful questions: engine compute p50 " << Ms(engine)
          << ", wait for the scheduler p50 " << Ms(queued)
          << " (data of the session still being ingested, or the step in flight), the rest "
             "(HTTP, tokenizing, streaming) about "
          << Ms(std::max(0.0, kv_p50 - engine - queued)) << ".";
        for (const auto& r : runs) {
            if (r.system == SystemKind::kKvstream && r.overhead_share) {
                o << " Scheduler overhead (time in a step outside llama_decode): "
                  << Fmt("%.2f%%", *r.overhead_share * 100) << " of step time.";
                break;
            }
        }
        o << "\n";
    }

    // The targets.
    o << "\n## Targets\n\nDefined for the reference case (bench/scenarios/targets.json: the "
         "Qwen2.5-0.5B shape, ~8k tokens, 30 bars between questions); for other scenarios these "
         "are comparisons, not goals.\n\n| target | measured | |\n|---|---|---|\n";
    if (floor) {
        std::vector<double> near;
        for (const auto* s : kv) {
            if (Bucket(s->context_tokens) == Bucket(floor->depth)) {
                near.push_back(s->answer.total_ms);
            }
        }
        const double adjusted = floor->pp_ms + floor->tg_ms * (floor->gen - 1) / floor->gen;
        const double p50 = Percentile(near, 50);
        o << "| kvstream p50 at ~" << BucketLabel(Bucket(floor->depth))
          << " within 10% of llama-bench's floor (pp" << floor->prompt << " + tg" << floor->gen
          << " at depth " << floor->depth << ": " << Ms(floor->total_ms()) << "; adjusted for the "
          << (floor->gen - 1) << " decodes we run: " << Ms(adjusted) << ") | " << Ms(p50) << " = "
          << Fmt("%.2f", adjusted > 0 ? p50 / adjusted : 0) << "x the adjusted floor | "
          << (p50 > 0 && p50 <= adjusted * 1.1 ? "met" : "missed") << " |\n";
    }
    // The speedups: at the sweep's largest count of bars between questions, else over the
    // whole measured phase.
    const int most = bar_counts.empty() ? 0 : *bar_counts.rbegin();
    auto p50_of = [&](SystemKind k) {
        return sc.sweep() ? p50_at(k, most) : Percentile(Values(samples(k), total), 50);
    };
    const std::string when = sc.sweep() ? "with " + std::to_string(most) + " bars between questions"
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
        const auto server = Values(
            fl, [](const QuerySample& s) { return s.answer.cached ? s.answer.server_ms : -1.0; });
        const double worst = Percentile(server, 100);
        o << "| flash hits under 1 ms inside the server | p50 " << Ms(Percentile(server, 50))
          << ", max " << Ms(worst) << " over " << server.size() << " hits | "
          << (!server.empty() && worst < 1 ? "met" : "missed") << " |\n";
    }
    o << "\nRaw figures: `queries.csv` (one row per question), `summary.json`; server logs beside "
         "them.\n";
    return o.str();
}

}  // namespace kvs::bench
