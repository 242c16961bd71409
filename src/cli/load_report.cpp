// The report of `kvstream load`: the tables printed to stdout and the JSON file (--json).

#include "cli/defaults.h"
#include "cli/load.h"
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

// The q-quantile, linear between the two nearest ranks (0 for an empty list).
double Percentile(std::vector<double> v, double q) {
    if (v.empty()) {
        return 0;
    }
    std::sort(v.begin(), v.end());
    const double rank = q * static_cast<double>(v.size() - 1);
    const auto lo = static_cast<std::size_t>(rank);
    const std::size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (rank - static_cast<double>(lo));
}

double Mean(const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) {
        sum += x;
    }
    return v.empty() ? 0 : sum / static_cast<double>(v.size());
}

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

// A JSON number (null when not finite).
std::string Num(double v) {
    if (!std::isfinite(v)) {
        return "null";
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

// A JSON string.
std::string Quote(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out + "\"";
}

// A JSON array of numbers.
std::string List(const std::vector<double>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) {
        s += (i ? "," : "") + Num(v[i]);
    }
    return s + "]";
}

// Builds one JSON object, keys in the order added; values are numbers, strings or raw JSON.
class JsonObject {
public:
    JsonObject& Num(const std::string& key, double v) { return Raw(key, load::Num(v)); }

    JsonObject& Int(const std::string& key, std::int64_t v) { return Raw(key, std::to_string(v)); }

    JsonObject& Str(const std::string& key, const std::string& v) { return Raw(key, Quote(v)); }

    JsonObject& Raw(const std::string& key, const std::string& json) {
        body_ += (body_.size() > 1 ? "," : "") + Quote(key) + ":" + json;
        return *this;
    }

    std::string str() const { return body_ + "}"; }

private:
    std::string body_ = "{";
};

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
    l.query_share = Percentile(Latencies(r.run.idle).engine_ms, 0.5) / o.question_gap_ms;
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
                    s == &a ? "loaded" : "idle", s->client_ms.size(), Percentile(s->client_ms, 0.5),
                    Percentile(s->client_ms, 0.99), Mean(s->client_ms),
                    Percentile(s->engine_ms, 0.5), Percentile(s->queued_ms, 0.5),
                    Percentile(s->outside_ms, 0.5), Mean(s->context_tokens), failed);
    }
    if (a.client_ms.empty() || b.client_ms.empty()) {
        std::printf("loaded p50 / idle p50 = n/a (no answered questions in a phase)\n");
    } else {
        const double ratio = Percentile(a.client_ms, 0.5) / Percentile(b.client_ms, 0.5);
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
        "(n_scratch + n_template_slots), at most %d - %d\n",
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

std::string PhaseJson(const Phase& p) {
    const LatencyStats s = Latencies(p);
    const StepTotals& t = p.steps;
    JsonObject errors;
    for (const auto& [code, n] : s.errors) {
        errors.Int(code, n);
    }
    JsonObject steps;
    steps.Num("n", t.n_steps).Num("step_ms_sum", t.step_ms).Num("decode_ms_sum", t.decode_ms);
    steps.Num("overhead_ms_sum", t.overhead_ms).Num("overhead_share", t.OverheadShare());
    steps.Num("busy_share", t.BusyShare()).Num("wall_ms", t.wall_ms);
    steps.Num("query_tokens", t.query_tokens).Num("ingest_tokens", t.ingest_tokens);
    steps.Num("latency_bound_steps", t.latency_bound_steps);
    steps.Num("parks", t.parks).Num("restores", t.restores);
    JsonObject j;
    j.Int("n", static_cast<std::int64_t>(s.client_ms.size())).Raw("errors", errors.str());
    j.Num("client_p50_ms", Percentile(s.client_ms, 0.5));
    j.Num("client_p99_ms", Percentile(s.client_ms, 0.99)).Num("client_mean_ms", Mean(s.client_ms));
    j.Num("engine_p50_ms", Percentile(s.engine_ms, 0.5));
    j.Num("queued_p50_ms", Percentile(s.queued_ms, 0.5));
    j.Num("outside_p50_ms", Percentile(s.outside_ms, 0.5));
    j.Raw("client_ms", List(s.client_ms)).Raw("engine_ms", List(s.engine_ms));
    j.Raw("queued_ms", List(s.queued_ms)).Raw("context_tokens", List(s.context_tokens));
    return j.Raw("steps", steps.str()).str();
}

std::string ParkJson(const Report& r) {
    std::string s = "[";
    for (const ParkRow& p : r.park.rows) {
        JsonObject j;
        j.Int("n_tokens", p.n_tokens).Str("where", p.on_disk ? "disk" : "ram");
        j.Int("blob_bytes", static_cast<std::int64_t>(p.blob_bytes));
        j.Num("park_median_ms", Median(p.park_ms)).Num("restore_median_ms", Median(p.restore_ms));
        j.Raw("park_ms", List(p.park_ms)).Raw("restore_ms", List(p.restore_ms));
        s += (s.size() > 1 ? "," : "") + j.str();
    }
    return s + "]";
}

std::string BudgetJson(const Report& r) {
    const int n_res = r.park.n_reserved_seqs;
    std::string rows = "[";
    for (std::int64_t cells : kBudgetCells) {
        for (int ctx : kBudgetCtx) {
            const std::int64_t n = SlotsFor(cells, ctx, n_res);
            JsonObject row;
            row.Int("budget_cells", cells).Int("ctx", ctx).Int("resident_sessions", n);
            row.Int("kv_bytes", (n + n_res) * SlotCells(ctx) * r.kv.bytes_per_cell);
            rows += (rows.size() > 1 ? "," : "") + row.str();
        }
    }
    JsonObject j;
    j.Int("bytes_per_cell", r.kv.bytes_per_cell).Int("n_layer", r.kv.n_layer);
    j.Int("n_head_kv", r.kv.n_head_kv).Int("head_dim", r.kv.head_dim);
    j.Int("reserved_sequences", n_res);
    j.Str("formula",
          "resident = min(floor(budget_cells / round_up(ctx, 256)) - reserved, 256 - reserved); "
          "kv_bytes = (resident + reserved) * round_up(ctx, 256) * bytes_per_cell; "
          "parked = park_host_bytes / blob_bytes");
    j.Int("park_host_bytes", static_cast<std::int64_t>(EngineOptions{}.park_host_bytes));
    return j.Raw("rows", rows + "]").str();
}

std::string ConfigJson(const LoadOptions& o, int n_slots) {
    JsonObject j;
    j.Int("sessions", o.n_sessions).Int("slots", n_slots).Int("ctx", o.n_ctx);
    j.Num("bars_per_second_per_session", o.bars_per_s);
    j.Str("feed", o.csv.empty() ? "synthetic" : "csv").Num("question_gap_ms", o.question_gap_ms);
    j.Num("duration_s", o.duration_s).Int("warmup_bars", o.warmup_bars);
    j.Int("max_tokens", o.max_tokens).Int("threads", o.n_threads);
    j.Int("prefill_chunk_tokens", o.prefill_chunk_tokens);
    j.Str("step_target", o.step_target).Str("seed", std::to_string(o.seed));
    return j.Int("idle_queries", o.idle_queries).Int("park_reps", o.park_reps).str();
}

}  // namespace

void WriteJson(const LoadOptions& o, const Report& r) {
    std::ofstream out(o.json);
    if (!out) {
        throw std::runtime_error("cannot write " + o.json);
    }
    JsonObject feed;
    feed.Int("bars", r.run.feed.n_bars).Int("refused", r.run.feed.n_refused);
    feed.Int("tokens", r.run.feed.n_tokens).Num("drain_ms", r.run.drain_ms);
    feed.Num("backlog_tokens_at_end", r.run.pending_tokens_at_end);
    const OfferedLoad l = Offered(o, r);
    feed.Num("ingest_tokens_per_s", l.ingest_tokens_per_s);
    feed.Num("prefill_tokens_per_s", r.park.prefill_tokens_per_s);
    feed.Num("ingest_share", l.ingest_share).Num("query_share", l.query_share);
    JsonObject j;
    j.Str("command", r.command).Str("model", r.model).Raw("config", ConfigJson(o, r.n_slots));
    j.Raw("loaded", PhaseJson(r.run.loaded)).Raw("idle", PhaseJson(r.run.idle));
    j.Num("p50_ratio", Percentile(Latencies(r.run.loaded).client_ms, 0.5) /
                           Percentile(Latencies(r.run.idle).client_ms, 0.5));
    j.Raw("feed", feed.str()).Raw("park", ParkJson(r)).Raw("kv_budget", BudgetJson(r));
    out << j.str() << "\n";
}

}  // namespace kvs::load
