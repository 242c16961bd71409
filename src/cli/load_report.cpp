// The report of `kvstream load`: the tables printed to stdout and the JSON file (--json).

#include "cli/defaults.h"
#include "cli/load.h"
#include "common/json_writer.h"
#include "common/stats.h"
#include "runtime/runtime.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace kvs::load {
namespace {

// The KV budgets (cells) and session windows of the budget table.
constexpr std::int64_t kBudgetCells[] = {64 << 10, 256 << 10, 1 << 20};
constexpr int kBudgetCtx[] = {1024, 4096};

// The answered questions of one phase, figure by figure, and the failed ones by code.
struct LatencyStats {
    std::vector<double> client_ms, engine_ms, queued_ms, context_tokens;
    std::vector<double> outside_ms;  // client - queued - engine: the Runtime's queue and delivery
    std::map<std::string, int> errors;  // by status code name
};

LatencyStats Latencies(const Phase& phase) {
    LatencyStats s;
    for (const QueryRecord& r : phase.queries) {
        if (!r.status.ok()) {
            s.errors[StatusCodeName(r.status.code())] += 1;
            continue;
        }
        s.client_ms.push_back(r.client_ms);
        s.engine_ms.push_back(r.timings.total_ms);
        s.queued_ms.push_back(r.timings.queued_ms);
        s.context_tokens.push_back(r.timings.n_context_tokens);
        s.outside_ms.push_back(r.client_ms - r.timings.queued_ms - r.timings.total_ms);
    }
    return s;
}

// The load offered against what the engine can do, from this run's own figures: data at the
// single-session prefill rate (filling the park session), questions at their idle engine time.
struct OfferedLoad {
    double ingest_tokens_per_s = 0;
    double ingest_share = 0;  // of the engine's time
    double query_share = 0;

    double total() const { return ingest_share + query_share; }
};

OfferedLoad Offered(const LoadOptions& o, const Report& r) {
    OfferedLoad l;
    l.ingest_tokens_per_s = static_cast<double>(r.run.feed.n_tokens) / o.duration_s;
    if (r.park.prefill_tokens_per_s > 0) {
        l.ingest_share = l.ingest_tokens_per_s / r.park.prefill_tokens_per_s;
    }
    l.query_share = Quantile(Latencies(r.run.idle).engine_ms, 0.5) / o.question_gap_ms;
    return l;
}

}  // namespace

std::string ReproduceCommand(const LoadOptions& o, const std::string& model, int n_slots) {
    std::ostringstream s;
    s << "build/kvstream load --model " << model << " --sessions " << o.n_sessions << " --slots "
      << n_slots << " --ctx " << o.n_ctx << " --bars-per-second-per-session " << o.bars_per_s
      << " --question-gap-ms " << o.question_gap_ms << " --duration-s " << o.duration_s
      << " --warmup-bars " << o.warmup_bars << " --max-tokens " << o.max_tokens << " --threads "
      << o.n_threads << " --step-target " << o.step_target << " --prefill-chunk-tokens "
      << o.prefill_chunk_tokens << " --seed " << o.seed << " --idle-queries " << o.idle_queries
      << " --park-lengths " << o.park_lengths << " --park-reps " << o.park_reps;
    for (const auto& c : o.csv) {
        s << " --csv " << c;
    }
    if (!o.park_dir.empty()) {
        s << " --park-dir " << o.park_dir;
    }
    return s.str();
}

void PrintLatency(const Report& r) {
    const LatencyStats a = Latencies(r.run.loaded);
    const LatencyStats b = Latencies(r.run.idle);
    std::printf(
        "\nquery latency, ms (client: submit to answer; engine: Answer::timings total_ms, "
        "queued: its queued_ms; outside: client - queued - engine)\n");
    std::printf("%-7s %5s %8s %8s %8s %11s %11s %12s %8s %7s\n", "", "n", "p50", "p99", "mean",
                "engine p50", "queued p50", "outside p50", "context", "failed");
    for (const auto* s : {&a, &b}) {
        int failed = 0;
        for (const auto& [code, n] : s->errors) {
            failed += n;
        }
        std::printf("%-7s %5zu %8.1f %8.1f %8.1f %11.1f %11.1f %12.1f %8.0f %7d\n",
                    s == &a ? "loaded" : "idle", s->client_ms.size(), Quantile(s->client_ms, 0.5),
                    Quantile(s->client_ms, 0.99), Mean(s->client_ms), Quantile(s->engine_ms, 0.5),
                    Quantile(s->queued_ms, 0.5), Quantile(s->outside_ms, 0.5),
                    Mean(s->context_tokens), failed);
    }
    if (a.client_ms.empty() || b.client_ms.empty()) {
        std::printf("loaded p50 / idle p50 = n/a (no answered questions in a phase)\n");
    } else {
        const double ratio = Quantile(a.client_ms, 0.5) / Quantile(b.client_ms, 0.5);
        std::printf("loaded p50 / idle p50 = %.2fx (target <= 1.5x: %s)\n", ratio,
                    ratio <= 1.5 ? "met" : "missed");
    }
    for (const auto& [code, n] : a.errors) {
        std::printf("  loaded queries failed with %s: %d\n", code.c_str(), n);
    }
}

void PrintSteps(const LoadOptions& o, const Report& r) {
    std::printf("\nscheduler (engine metrics kvs_step_ms / kvs_overhead_ms, summed per phase)\n");
    std::printf("%-7s %6s %10s %14s %9s %6s %6s %6s %8s\n", "", "steps", "mean step",
                "overhead/step", "overhead", "busy", "bound", "parks", "restores");
    for (const Phase* p : {&r.run.loaded, &r.run.idle}) {
        const StepTotals& t = p->steps;
        const double n = std::max(1.0, t.n_steps);
        std::printf("%-7s %6.0f %7.2f ms %11.3f ms %8.2f%% %5.0f%% %6.0f %6.0f %8.0f\n",
                    p == &r.run.loaded ? "loaded" : "idle", t.n_steps, t.step_ms / n,
                    t.overhead_ms / n, 100 * t.OverheadShare(), 100 * t.BusyShare(),
                    t.latency_bound_steps, t.parks, t.restores);
    }
    std::printf("overhead share under load: %.2f%% (target < 5%%); busy = step time / wall time\n",
                100 * r.run.loaded.steps.OverheadShare());
    const FeedStats& f = r.run.feed;
    std::printf(
        "feed: %d bars (%lld tokens) accepted, %d refused; backlog %.0f tokens when the feed "
        "stopped (fully ingested %.0f ms after the last answer)\n",
        f.n_bars - f.n_refused, static_cast<long long>(f.n_tokens), f.n_refused,
        r.run.pending_tokens_at_end, r.run.drain_ms);
    if (!f.first_error.empty()) {
        std::printf("  first refusal: %s\n", f.first_error.c_str());
    }
    const OfferedLoad l = Offered(o, r);
    std::printf(
        "offered load: data %.0f tokens/s = %.0f%% of the prefill rate (%.0f tokens/s), "
        "questions %.0f%% (idle engine ms / gap): %.0f%% of the engine%s\n",
        l.ingest_tokens_per_s, 100 * l.ingest_share, r.park.prefill_tokens_per_s,
        100 * l.query_share, 100 * l.total(),
        l.total() > 0.9 ? " -- saturated: the loaded figures measure a queue" : "");
}

void PrintParking(const Report& r) {
    std::printf("\npark / restore per session length (medians of the engine's timings)\n");
    std::printf("%8s %6s %10s %10s %9s %11s\n", "tokens", "where", "blob MiB", "B/token", "park ms",
                "restore ms");
    for (const ParkRow& p : r.park.rows) {
        std::printf("%8d %6s %10.2f %10.0f %9.2f %11.2f\n", p.n_tokens, p.on_disk ? "disk" : "RAM",
                    static_cast<double>(p.blob_bytes) / (1 << 20),
                    static_cast<double>(p.blob_bytes) / std::max(1, p.n_tokens), Median(p.park_ms),
                    Median(p.restore_ms));
    }
}

void PrintBudget(const Report& r) {
    const KvShape& k = r.kv;
    const int n_res = r.park.n_reserved_seqs;
    std::printf(
        "\nsessions per KV budget: %lld B/cell = 2 (K,V) x %d layers x %d kv heads x %d "
        "dims x 2 B (f16)\n",
        static_cast<long long>(k.bytes_per_cell), k.n_layer, k.n_head_kv, k.head_dim);
    std::printf(
        "resident = floor(budget_cells / round_up(ctx, 256)) - %d reserved sequences "
        "(n_scratch + flash_max_running + n_template_slots), at most %d - %d\n",
        n_res, kMaxSeqs, n_res);
    std::printf("%12s %9s %12s %12s\n", "budget cells", "KV GiB", "ctx 1024", "ctx 4096");
    for (std::int64_t cells : kBudgetCells) {
        std::printf("%12lld %9.2f", static_cast<long long>(cells),
                    static_cast<double>(cells * k.bytes_per_cell) / (1 << 30));
        for (int ctx : kBudgetCtx) {
            std::printf(" %12lld", static_cast<long long>(SlotsFor(cells, ctx, n_res)));
        }
        std::printf("\n");
    }
    const double host = static_cast<double>(EngineOptions{}.park_host_bytes);
    std::printf("parked in %.0f MiB of host RAM (EngineOptions::park_host_bytes):",
                host / (1 << 20));
    for (const ParkRow& p : r.park.rows) {
        if (!p.on_disk && p.blob_bytes > 0) {
            std::printf("  %d tokens: %.0f", p.n_tokens,
                        std::floor(host / static_cast<double>(p.blob_bytes)));
        }
    }
    std::printf(
        "\n(sessions in all, resident and parked, are capped by max_sessions, default %d)\n",
        EngineOptions{}.max_sessions);
}

namespace {

void PhaseJson(JsonWriter& j, const Phase& p) {
    const LatencyStats s = Latencies(p);
    const StepTotals& t = p.steps;
    j.BeginObject().Field("n", static_cast<std::int64_t>(s.client_ms.size()));
    j.Key("errors").BeginObject();
    for (const auto& [code, n] : s.errors) {
        j.Field(code, n);
    }
    j.EndObject();
    j.Field("client_p50_ms", Quantile(s.client_ms, 0.5));
    j.Field("client_p99_ms", Quantile(s.client_ms, 0.99))
        .Field("client_mean_ms", Mean(s.client_ms));
    j.Field("engine_p50_ms", Quantile(s.engine_ms, 0.5));
    j.Field("queued_p50_ms", Quantile(s.queued_ms, 0.5));
    j.Field("outside_p50_ms", Quantile(s.outside_ms, 0.5));
    j.Key("client_ms").Numbers(s.client_ms).Key("engine_ms").Numbers(s.engine_ms);
    j.Key("queued_ms").Numbers(s.queued_ms).Key("context_tokens").Numbers(s.context_tokens);
    j.Key("steps").BeginObject();
    j.Field("n", t.n_steps).Field("step_ms_sum", t.step_ms).Field("decode_ms_sum", t.decode_ms);
    j.Field("overhead_ms_sum", t.overhead_ms).Field("overhead_share", t.OverheadShare());
    j.Field("busy_share", t.BusyShare()).Field("wall_ms", t.wall_ms);
    j.Field("query_tokens", t.query_tokens).Field("ingest_tokens", t.ingest_tokens);
    j.Field("latency_bound_steps", t.latency_bound_steps);
    j.Field("parks", t.parks).Field("restores", t.restores);
    j.EndObject().EndObject();
}

void ParkJson(JsonWriter& j, const Report& r) {
    j.BeginArray();
    for (const ParkRow& p : r.park.rows) {
        j.BeginObject().Field("n_tokens", p.n_tokens).Field("where", p.on_disk ? "disk" : "ram");
        j.Field("blob_bytes", static_cast<std::int64_t>(p.blob_bytes));
        j.Field("park_median_ms", Median(p.park_ms))
            .Field("restore_median_ms", Median(p.restore_ms));
        j.Key("park_ms").Numbers(p.park_ms).Key("restore_ms").Numbers(p.restore_ms);
        j.EndObject();
    }
    j.EndArray();
}

void BudgetJson(JsonWriter& j, const Report& r) {
    const int n_res = r.park.n_reserved_seqs;
    j.BeginObject().Field("bytes_per_cell", r.kv.bytes_per_cell).Field("n_layer", r.kv.n_layer);
    j.Field("n_head_kv", r.kv.n_head_kv).Field("head_dim", r.kv.head_dim);
    j.Field("reserved_sequences", n_res);
    j.Field("formula",
            "resident = min(floor(budget_cells / round_up(ctx, 256)) - reserved, 256 - reserved); "
            "kv_bytes = (resident + reserved) * round_up(ctx, 256) * bytes_per_cell; "
            "parked = park_host_bytes / blob_bytes");
    j.Field("park_host_bytes", static_cast<std::int64_t>(EngineOptions{}.park_host_bytes));
    j.Key("rows").BeginArray();
    for (std::int64_t cells : kBudgetCells) {
        for (int ctx : kBudgetCtx) {
            const std::int64_t n = SlotsFor(cells, ctx, n_res);
            j.BeginObject().Field("budget_cells", cells).Field("ctx", ctx);
            j.Field("resident_sessions", n);
            j.Field("kv_bytes", (n + n_res) * SlotCells(ctx) * r.kv.bytes_per_cell).EndObject();
        }
    }
    j.EndArray().EndObject();
}

void ConfigJson(JsonWriter& j, const LoadOptions& o, int n_slots) {
    j.BeginObject().Field("sessions", o.n_sessions).Field("slots", n_slots).Field("ctx", o.n_ctx);
    j.Field("bars_per_second_per_session", o.bars_per_s);
    j.Field("feed", o.csv.empty() ? "synthetic" : "csv")
        .Field("question_gap_ms", o.question_gap_ms);
    j.Field("duration_s", o.duration_s).Field("warmup_bars", o.warmup_bars);
    j.Field("max_tokens", o.max_tokens).Field("threads", o.n_threads);
    j.Field("prefill_chunk_tokens", o.prefill_chunk_tokens);
    j.Field("step_target", o.step_target).Field("seed", std::to_string(o.seed));
    j.Field("idle_queries", o.idle_queries).Field("park_reps", o.park_reps).EndObject();
}

}  // namespace

void WriteJson(const LoadOptions& o, const Report& r) {
    std::ofstream out(o.json);
    if (!out) {
        throw std::runtime_error("cannot write " + o.json);
    }
    JsonWriter j;
    j.BeginObject().Field("command", r.command).Field("model", r.model);
    j.Key("config");
    ConfigJson(j, o, r.n_slots);
    j.Key("loaded");
    PhaseJson(j, r.run.loaded);
    j.Key("idle");
    PhaseJson(j, r.run.idle);
    j.Field("p50_ratio", Quantile(Latencies(r.run.loaded).client_ms, 0.5) /
                             Quantile(Latencies(r.run.idle).client_ms, 0.5));
    const OfferedLoad l = Offered(o, r);
    j.Key("feed").BeginObject();
    j.Field("bars", r.run.feed.n_bars).Field("refused", r.run.feed.n_refused);
    j.Field("tokens", r.run.feed.n_tokens).Field("drain_ms", r.run.drain_ms);
    j.Field("backlog_tokens_at_end", r.run.pending_tokens_at_end);
    j.Field("ingest_tokens_per_s", l.ingest_tokens_per_s);
    j.Field("prefill_tokens_per_s", r.park.prefill_tokens_per_s);
    j.Field("ingest_share", l.ingest_share).Field("query_share", l.query_share).EndObject();
    j.Key("park");
    ParkJson(j, r);
    j.Key("kv_budget");
    BudgetJson(j, r);
    j.EndObject();
    out << j.str() << "\n";
}

}  // namespace kvs::load
