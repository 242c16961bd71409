// The files of `kvstream bench SCENARIO` but report.md (report_markdown.cpp): queries.csv,
// summary.json and the SVG plots.

#include "bench/report.h"

#include "bench/report_format.h"
#include "bench/svg_plot.h"
#include "common/json_writer.h"
#include "common/stats.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace kvs::bench {
namespace {

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
         "wait_ms,prefill_ms,decode_ms,in_server_ms,joined,error\n";
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
              << ',' << (a.cached ? 1 : 0) << ',' << Fmt("%.3f", a.wait_ms) << ','
              << Fmt("%.3f", a.prefill_ms) << ',' << Fmt("%.3f", a.decode_ms) << ','
              << Fmt("%.3f", a.in_server_ms) << ',' << (a.joined ? 1 : 0) << ",\"" << error
              << "\"\n";
        }
    }
    return o.str();
}

void SummaryRun(JsonWriter& j, const SystemRun& r) {
    std::vector<const QuerySample*> ok;
    int failed = 0;
    for (const auto& s : r.samples) {
        if (!s.warmup) {
            s.error.empty() ? ok.push_back(&s) : void(++failed);
        }
    }
    const auto total = Values(ok, [](const QuerySample& s) { return s.answer.total_ms; });
    const auto ttft = Values(ok, [](const QuerySample& s) { return s.answer.ttft_ms; });
    j.BeginObject().Field("system", SystemName(r.system)).Field("round", r.round);
    j.Field("error", r.error).Field("start_s", r.start_s).Field("warmup_s", r.warmup_s);
    j.Field("measured_s", r.measured_s).Field("cpu_s", r.cpu_s);
    j.Field("peak_rss_mib", r.peak_rss_mib).Field("bars", static_cast<std::int64_t>(r.bars));
    j.Field("questions", static_cast<std::int64_t>(ok.size())).Field("failed", failed);
    for (int p : {50, 95, 99}) {
        const std::string n = std::to_string(p);
        const double q = p / 100.0;
        j.Field("total_ms_p" + n, Quantile(total, q)).Field("ttft_ms_p" + n, Quantile(ttft, q));
        j.Field("ingest_lag_ms_p" + n, Quantile(r.ingest_lag_ms, q));
        j.Field("ack_ms_p" + n, Quantile(r.ack_ms, q));
    }
    if (r.overhead_share) {
        j.Field("overhead_share", *r.overhead_share);
    }
    if (!r.metrics_delta.empty()) {  // the server's metrics over the phase (end minus start)
        j.Key("metrics_delta").BeginObject();
        for (const auto& [series, value] : r.metrics_delta) {
            j.Field(series, value);
        }
        j.EndObject();
    }
    j.EndObject();
}

// summary.json, keys in a fixed order (each run's percentiles by the rule of common/stats.h).
std::string Summary(const Scenario& sc,
                    const RunInfo& info,
                    const std::vector<SystemRun>& runs,
                    const std::optional<Floor>& floor) {
    JsonWriter j(2);
    j.BeginObject().Field("scenario", sc.name).Field("scenario_file", info.scenario_path);
    j.Field("model", info.model).Field("machine", info.machine).Field("threads", info.threads);
    j.Field("ctx_per_session", info.ctx_per_session).Field("started_utc", info.started_utc);
    j.Field("wall_s", info.wall_s).Key("runs").BeginArray();
    for (const auto& r : runs) {
        SummaryRun(j, r);
    }
    j.EndArray();
    if (floor) {
        j.Key("floor").BeginObject().Field("depth", floor->depth).Field("prompt", floor->prompt);
        j.Field("gen", floor->gen).Field("pp_ms", floor->pp_ms).Field("tg_ms", floor->tg_ms);
        j.Field("total_ms", floor->total_ms()).EndObject();
    }
    j.EndObject();
    return j.str();
}

}  // namespace

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

Status WriteResults(const std::string& out_dir,
                    const Scenario& scenario,
                    const RunInfo& info,
                    const std::vector<SystemRun>& runs,
                    const std::optional<Floor>& floor) {
    KV_RETURN_IF_ERROR(WriteFile(out_dir + "/queries.csv", Csv(runs)));
    KV_RETURN_IF_ERROR(
        WriteFile(out_dir + "/summary.json", Summary(scenario, info, runs, floor) + "\n"));

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
            a.points.emplace_back(b, Median(v));
        }
        by_context.series.push_back(a);
        PlotSeries b{SystemName(kinds[i]), SeriesColor(i), {}};
        for (const auto& [k, v] : bars) {
            b.points.emplace_back(k, Median(v));
        }
        by_bars.series.push_back(b);
    }
    KV_RETURN_IF_ERROR(WriteFile(out_dir + "/latency_vs_context.svg", RenderSvg(by_context)));
    if (scenario.sweep()) {
        KV_RETURN_IF_ERROR(WriteFile(out_dir + "/latency_vs_bars.svg", RenderSvg(by_bars)));
    }
    return WriteFile(out_dir + "/report.md", ReportMarkdown(scenario, info, runs, floor));
}

}  // namespace kvs::bench
