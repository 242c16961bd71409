// `kvstream durable-bench`: what durability costs and what snapshots buy (docs/benchmarks.md,
// bench/durable.sh). In-process Runtime, no HTTP.
//   store     client threads append market bars to the data log alone and wait for each
//             acknowledgement: appends/s, latency, appends per group commit, per sync policy
//   appends   the same through the Runtime (each client its own rolling session): in memory and
//             with the store under each sync policy; an acknowledgement waits for the engine
//             step in progress, so this is bound by the model's ingest speed
//   restart   N sessions of T tokens are fed and the runtime stopped (snapshots written at
//             shutdown); then started again from the snapshots, and again from the data log alone
//             (snapshot files removed): time until Start returns, until every session's data is in
//             the KV cache or in a checked snapshot, and the first answer of one session
// Results: a JSON file (--out) and a table on stdout.

#include "cli/commands.h"
#include "cli/defaults.h"
#include "common/json_writer.h"
#include "common/stats.h"
#include "feed/market.h"
#include "runtime/runtime.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <stdexcept>
#include <thread>

namespace kvs {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

struct DurableBenchOptions {
    std::string model;
    std::string dir;  // scratch data folders go here
    std::string out = "durable_bench.json";
    int threads = 0;
    int clients = 8;
    int appends = 200;  // per client
    int sessions = 32;
    int tokens = 8000;
    int ctx = 8192;
    int slots = 4;
};

RuntimeOptions BaseOptions(const DurableBenchOptions& o, const std::string& data_dir) {
    RuntimeOptions r;
    r.engine.model_path = o.model;
    r.engine.n_threads = o.threads;
    r.engine.n_ctx_session = o.ctx;
    r.engine.n_sessions = o.slots;
    r.engine.max_sessions = std::max(o.sessions, o.clients) + 8;
    r.engine.park_host_bytes = std::size_t{8} << 30;
    r.engine.flash_max_running = 0;
    r.durable.data_dir = data_dir;
    r.durable.snapshot_interval_s = 1e9;  // snapshots at parking and shutdown only
    return r;
}

std::unique_ptr<Runtime> StartRuntime(const RuntimeOptions& o) {
    auto rt = Runtime::Start(o);
    Check(rt.status(), "starting the runtime");
    return std::move(rt).value();
}

struct AppendFigures {
    std::string mode;
    double per_s = 0;
    double p50_ms = 0;
    double p99_ms = 0;
};

// `clients` threads each append `appends` bars of their own feed with `append(client, index,
// line)`, which returns once the append is acknowledged. Appends/s and latency over all of them.
AppendFigures TimeAppends(const std::string& mode,
                          const DurableBenchOptions& o,
                          const std::function<void(int, int, std::string)>& append) {
    std::vector<std::vector<double>> latencies(static_cast<std::size_t>(o.clients));
    const auto started = Clock::now();
    std::vector<std::thread> clients;
    for (int c = 0; c < o.clients; ++c) {
        clients.emplace_back([&, c] {
            SyntheticFeed feed(DefaultSymbols(), 100 + static_cast<std::uint64_t>(c));
            for (int i = 0; i < o.appends; ++i) {
                std::string line = RenderBar(feed.NextBar(0));
                const auto t = Clock::now();
                append(c, i, std::move(line));
                latencies[static_cast<std::size_t>(c)].push_back(MsSince(t));
            }
        });
    }
    for (std::thread& t : clients) {
        t.join();
    }
    const double wall_s = MsSince(started) / 1000;
    std::vector<double> all;
    for (const auto& l : latencies) {
        all.insert(all.end(), l.begin(), l.end());
    }
    return {mode, static_cast<double>(all.size()) / wall_s, Quantile(all, 0.5),
            Quantile(all, 0.99)};
}

AppendFigures MeasureAppends(const DurableBenchOptions& o, const std::string& mode) {
    const fs::path dir = fs::path(o.dir) / ("appends-" + mode);
    fs::remove_all(dir);
    RuntimeOptions ro = BaseOptions(o, mode == "memory" ? "" : dir.string());
    if (mode != "memory") {
        ro.durable.sync = *ParseSyncPolicy(mode);
    }
    auto rt = StartRuntime(ro);
    std::vector<SessionId> ids;
    for (int c = 0; c < o.clients; ++c) {  // rolling windows: never full
        auto id = rt->CreateSession(0, {.prefix = "", .on_full = OnFull::kRoll}).get();
        Check(id.status(), "creating a session");
        ids.push_back(*id);
    }
    AppendFigures figures = TimeAppends(mode, o, [&](int c, int, std::string line) {
        Check(rt->Append(0, ids[static_cast<std::size_t>(c)], std::move(line)).get().status(),
              "appending");
    });
    rt.reset();
    fs::remove_all(dir);
    return figures;
}

// The store alone: client threads append to the data log and wait for each acknowledgement
// (group commit shares one sync among the appends queued meanwhile).
AppendFigures MeasureStore(const DurableBenchOptions& o, SyncPolicy sync, const char* name) {
    const fs::path dir = fs::path(o.dir) / "store";
    fs::remove_all(dir);
    fs::create_directories(dir);
    StoreOptions store_options;
    store_options.path = (dir / "kvstream.db").string();
    store_options.sync = sync;
    auto store = Store::Open(store_options);
    Check(store.status(), "opening the store");
    AppendFigures figures =
        TimeAppends(std::string("store-") + name, o, [&](int c, int i, std::string line) {
            std::promise<Status> done;
            (*store)->Append(
                {static_cast<SessionId>(c + 1), static_cast<std::uint64_t>(i + 1), std::move(line)},
                [&done](const Status& st) { done.set_value(st); });
            Check(done.get_future().get(), "appending to the store");
        });
    const StoreStats stats = (*store)->stats();
    store->reset();
    fs::remove_all(dir);
    std::printf("store   %-7s %9.0f /s   p50 %8.3f ms   p99 %8.3f ms   %.1f appends per commit\n",
                name, figures.per_s, figures.p50_ms, figures.p99_ms,
                static_cast<double>(stats.n_entries) / static_cast<double>(stats.n_commits));
    std::fflush(stdout);
    return figures;
}

struct RestartFigures {
    std::string source;
    double start_ms = 0;  // Runtime::Start
    double ready_ms = 0;  // + every session's data in the cache or in a checked snapshot
    double first_answer_ms = 0;
};

// Starts on `dir` and waits until no session has data left to replay.
RestartFigures MeasureRestart(const DurableBenchOptions& o,
                              const fs::path& dir,
                              const std::string& source) {
    const auto t0 = Clock::now();
    auto rt = StartRuntime(BaseOptions(o, dir.string()));
    RestartFigures f{source, MsSince(t0), 0, 0};
    while (true) {
        bool done = true;
        for (const auto& [id, settings] : rt->restored()) {
            auto info = rt->Info(0, id).get();
            Check(info.status(), "reading a restored session");
            done = done && info->version == info->accepted_version;
        }
        if (done) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    f.ready_ms = MsSince(t0);
    QueryOptions q;
    q.question = " Next bar:";
    q.max_tokens = 8;
    const auto t1 = Clock::now();
    Check(rt->Query(0, rt->restored().front().first, q).get().status(), "querying");
    f.first_answer_ms = MsSince(t1);
    return f;
}

struct SnapshotFigures {
    double bytes_per_token = 0;
    HistogramSnapshot writes;  // snapshots written while feeding (sessions parked)
    double shutdown_ms = 0;    // the shutdown's snapshots of the resident rest
};

// Builds `o.sessions` sessions of `o.tokens` tokens in `dir`, then stops: shutdown writes the
// snapshots.
SnapshotFigures BuildSessions(const DurableBenchOptions& o, const fs::path& dir) {
    fs::remove_all(dir);
    RuntimeOptions build = BaseOptions(o, dir.string());
    build.durable.sync = SyncPolicy::kNormal;
    auto rt = StartRuntime(build);
    SyntheticFeed feed(DefaultSymbols(), 7);
    std::vector<SessionId> ids;
    for (int s = 0; s < o.sessions; ++s) {
        auto id = rt->CreateSession(0, {}).get();
        Check(id.status(), "creating a session");
        ids.push_back(*id);
        int n = 0;
        while (n < o.tokens) {
            std::string chunk;  // 8 bars at a time, then one at a time near the end
            for (int i = 0; i < (n < o.tokens - 512 ? 8 : 1); ++i) {
                chunk += RenderBar(feed.NextBar(static_cast<std::size_t>(s) % 4));
            }
            auto r = rt->AppendAndWait(0, *id, chunk).get();
            Check(r.status(), "feeding a session");
            n = r->n_tokens;
        }
        std::printf("\rfeeding sessions: %d/%d (%d tokens each)", s + 1, o.sessions, n);
        std::fflush(stdout);
    }
    std::printf("\n");
    // Sessions parked while feeding were snapshotted then: the write time per file.
    const HistogramSnapshot writes =
        rt->metrics().GetHistogram("kvs_snapshot_ms", "", kMsBuckets).Snapshot();
    const auto stop = Clock::now();
    rt.reset();
    const double shutdown_ms = MsSince(stop);
    std::uintmax_t snapshot_bytes = 0;
    for (const auto& e : fs::directory_iterator(dir / "snapshots")) {
        snapshot_bytes += e.file_size();
    }
    const double bytes_per_token =
        static_cast<double>(snapshot_bytes) / (static_cast<double>(o.sessions) * o.tokens);
    return {bytes_per_token, writes, shutdown_ms};
}

void WriteJson(const DurableBenchOptions& o,
               const std::vector<AppendFigures>& appends,
               const std::vector<RestartFigures>& restarts,
               const SnapshotFigures& snapshots) {
    JsonWriter j(2);
    j.BeginObject().Field("model", o.model).Field("threads", o.threads);
    j.Field("clients", o.clients).Field("appends_per_client", o.appends);
    j.Key("appends").BeginArray();
    for (const AppendFigures& a : appends) {
        j.BeginObject().Field("mode", a.mode).Field("per_s", a.per_s);
        j.Field("p50_ms", a.p50_ms).Field("p99_ms", a.p99_ms).EndObject();
    }
    j.EndArray().Field("sessions", o.sessions).Field("tokens", o.tokens);
    j.Key("restarts").BeginArray();
    for (const RestartFigures& r : restarts) {
        j.BeginObject().Field("source", r.source).Field("start_ms", r.start_ms);
        j.Field("ready_ms", r.ready_ms).Field("first_answer_ms", r.first_answer_ms).EndObject();
    }
    j.EndArray().Field("snapshot_bytes_per_token", snapshots.bytes_per_token);
    j.Field("snapshot_write_ms_mean", snapshots.writes.Mean());
    j.Field("snapshot_write_ms_max", snapshots.writes.max);
    j.Field("snapshots_timed", static_cast<std::int64_t>(snapshots.writes.count));
    j.Field("shutdown_ms", snapshots.shutdown_ms).EndObject();
    std::ofstream out(o.out);
    out << j.str() << "\n";
    if (!out) {
        throw std::runtime_error("cannot write " + o.out);
    }
}

void RunDurableBench(DurableBenchOptions o) {
    if (o.model.empty()) {
        auto made = EnsureShapeTwin(kDefaultShape, WeightType::kQ8_0);
        Check(made.status(), "making the default model");
        o.model = *made;
    }
    if (o.dir.empty()) {
        o.dir = (fs::temp_directory_path() / "kvstream-durable-bench").string();
    }
    fs::create_directories(o.dir);
    std::printf("durable-bench: %s, %d threads, scratch %s\n", o.model.c_str(), o.threads,
                o.dir.c_str());

    std::vector<AppendFigures> appends;
    for (const auto& [sync, name] :
         {std::pair{SyncPolicy::kOff, "off"}, std::pair{SyncPolicy::kNormal, "normal"},
          std::pair{SyncPolicy::kFull, "full"}}) {
        appends.push_back(MeasureStore(o, sync, name));
    }
    for (const char* mode : {"memory", "off", "normal", "full"}) {
        appends.push_back(MeasureAppends(o, mode));
        const AppendFigures& a = appends.back();
        std::printf("appends %-7s %9.0f /s   p50 %8.3f ms   p99 %8.3f ms\n", mode, a.per_s,
                    a.p50_ms, a.p99_ms);
        std::fflush(stdout);
    }

    const fs::path dir = fs::path(o.dir) / "restart";
    const SnapshotFigures snapshots = BuildSessions(o, dir);
    std::vector<RestartFigures> restarts;
    restarts.push_back(MeasureRestart(o, dir, "snapshots"));
    fs::remove_all(dir / "snapshots");
    fs::create_directories(dir / "snapshots");
    restarts.push_back(MeasureRestart(o, dir, "log"));
    for (const RestartFigures& r : restarts) {
        std::printf("restart from %-9s start %9.1f ms   ready %10.1f ms   first answer %7.1f ms\n",
                    r.source.c_str(), r.start_ms, r.ready_ms, r.first_answer_ms);
    }
    std::printf(
        "snapshots: %.0f bytes per token; %llu written while feeding, %.1f ms each "
        "(mean; max %.1f); shutdown (the resident rest) %.1f ms\n",
        snapshots.bytes_per_token, static_cast<unsigned long long>(snapshots.writes.count),
        snapshots.writes.Mean(), snapshots.writes.max, snapshots.shutdown_ms);
    fs::remove_all(dir);

    WriteJson(o, appends, restarts, snapshots);
    std::printf("wrote %s\n", o.out.c_str());
}

}  // namespace

void AddDurableBenchCommand(CLI::App& app) {
    auto o = std::make_shared<DurableBenchOptions>();
    CLI::App* cmd = app.add_subcommand(
        "durable-bench", "Append cost of durability; restart from snapshots vs the data log");
    cmd->add_option("--model", o->model, "GGUF model (default: the SmolLM2-135M shape twin)");
    cmd->add_option("--dir", o->dir, "Scratch folder for the data folders");
    cmd->add_option("--out", o->out, "Results file (JSON)")->capture_default_str();
    cmd->add_option("--threads", o->threads, "Compute threads (0: all)")->capture_default_str();
    cmd->add_option("--clients", o->clients, "Appending threads")->capture_default_str();
    cmd->add_option("--appends", o->appends, "Appends per client")->capture_default_str();
    cmd->add_option("--sessions", o->sessions, "Sessions to restart")->capture_default_str();
    cmd->add_option("--tokens", o->tokens, "Tokens per session")->capture_default_str();
    cmd->add_option("--ctx", o->ctx, "Tokens per session slot")->capture_default_str();
    cmd->add_option("--slots", o->slots, "Resident session slots")->capture_default_str();
    cmd->callback([o] { RunDurableBench(*o); });
}

}  // namespace kvs
