// `kvstream serve`: the HTTP server (docs/http_api.md). It listens at once (/health answers 503
// while the model loads), serves until SIGTERM or SIGINT, then shuts down in order: new work is
// refused (503), requests in flight get up to --grace-s to finish, every connection closes (open
// event streams end), the engine answers what is still queued with `aborted`, exit 0.

#include "cli/commands.h"
#include "cli/defaults.h"
#include "engine/backend.h"
#include "http/api.h"
#include "http/server.h"
#include "runtime/runtime.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <sys/resource.h>
#include <thread>

namespace kvs {
namespace {

struct ServeOptions {
    std::string config;
    std::string sync = "full";
    bool in_memory = false;
    std::string model;
    std::string api_keys;
    std::string port_file;
    double grace_s = 10;
    http::ServerOptions server;
    http::ApiLimits limits;
    RuntimeOptions runtime;
};

// $XDG_DATA_HOME/kvstream, else ~/.local/share/kvstream, else ./kvstream-data.
std::string DefaultDataDir() {
    if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg != nullptr && *xdg != '\0') {
        return std::string(xdg) + "/kvstream";
    }
    if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
        return std::string(home) + "/.local/share/kvstream";
    }
    return "kvstream-data";
}

// Blocks the stop signals in every thread (the caller waits for them) and raises the limit of
// open files. Returns the stop signals.
sigset_t PrepareProcess() {
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    // One descriptor per connection: raise the soft limit to the hard one (often 1024 -> more).
    rlimit files{};
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }
    return stop_signals;
}

// Says where the server listens and how it authenticates; writes --port-file.
void AnnounceListening(const ServeOptions& o, int port, bool with_keys, std::size_t n_keys) {
    std::printf("kvstream: listening on http://%s:%d\n", o.server.host.c_str(), port);
    if (with_keys) {
        std::printf("kvstream: %zu API keys loaded; requests need Authorization: Bearer <key>\n",
                    n_keys);
    } else {
        std::printf(
            "kvstream: no API keys (--api-keys): serving loopback clients only, as tenant "
            "\"local\"\n");
    }
    std::fflush(stdout);
    if (!o.port_file.empty()) {
        std::ofstream(o.port_file) << port << "\n";
    }
}

// The model, the sync policy and the data folder of the runtime.
void ResolveRuntimeOptions(ServeOptions& o) {
    if (o.model.empty()) {
        auto made = EnsureShapeTwin(kDefaultShape, WeightType::kQ8_0);
        Check(made.status(), "making the default model");
        o.model = *made;
    }
    o.runtime.engine.model_path = o.model;
    auto sync = ParseSyncPolicy(o.sync);
    Check(sync.status(), "--sync");
    o.runtime.durable.sync = *sync;
    if (o.in_memory) {
        o.runtime.durable.data_dir.clear();
        std::printf("kvstream: --in-memory: sessions are lost when the server stops\n");
    } else {
        if (o.runtime.durable.data_dir.empty()) {
            o.runtime.durable.data_dir = DefaultDataDir();
        }
        std::printf("kvstream: data folder %s (sync %s)\n", o.runtime.durable.data_dir.c_str(),
                    o.sync.c_str());
    }
    std::fflush(stdout);
}

// The shutdown after a stop signal: new work refused, requests in flight get `grace_s`, event
// streams end, connections close, the engine answers what is still queued with `aborted`.
void ShutDown(http::Api& api,
              std::unique_ptr<Runtime> runtime,
              http::HttpServer& server,
              MetricsRegistry& http_metrics,
              double grace_s) {
    api.SetStopping();
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(static_cast<long>(grace_s * 1000));
    Gauge& streams = http_metrics.GetGauge("kvs_http_streams", "");
    while (api.in_flight() > api.event_streams() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    // Event streams hear `closed` and end before their connections are closed.
    runtime->CloseSubscriptions();
    const auto flushed = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (streams.value() > 0 && std::chrono::steady_clock::now() < flushed) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    server.Stop();
    runtime.reset();  // answers whatever is still queued with `aborted`
}

void RunServe(ServeOptions o) {
    sigset_t stop_signals = PrepareProcess();

    http::ApiKeys keys;
    if (!o.api_keys.empty()) {
        auto loaded = http::ApiKeys::Load(o.api_keys);
        Check(loaded.status(), "--api-keys");
        keys = std::move(loaded).value();
    }
    const bool with_keys = keys.enabled();
    for (const http::Tenant& t : keys.tenants()) {
        o.runtime.durable.tenant_names[t.id] = t.name;
    }
    const std::size_t n_keys = keys.size();
    MetricsRegistry http_metrics;
    o.limits.max_body_bytes = o.server.max_body_bytes;
    http::Api api(o.limits, std::move(keys), http_metrics);
    auto server = http::HttpServer::Start(
        o.server,
        [&api](http::HttpRequest r, http::ExchangePtr ex) { api.Handle(std::move(r), ex); },
        http_metrics);
    Check(server.status(), "starting the HTTP server");
    AnnounceListening(o, (*server)->port(), with_keys, n_keys);
    ResolveRuntimeOptions(o);
    auto runtime = Runtime::Start(o.runtime);
    Check(runtime.status(), "loading " + o.model);
    std::printf("kvstream: %s\n", CpuBackendLine().c_str());
    api.SetRuntime(runtime->get(), std::filesystem::path(o.model).stem().string());
    if (!(*runtime)->restored().empty()) {
        std::printf("kvstream: %zu sessions restored\n", (*runtime)->restored().size());
    }
    std::printf("kvstream: ready (%s)\n", o.model.c_str());
    std::fflush(stdout);

    int signal = 0;
    sigwait(&stop_signals, &signal);
    std::printf("kvstream: %s: shutting down\n", signal == SIGINT ? "SIGINT" : "SIGTERM");
    std::fflush(stdout);
    ShutDown(api, std::move(runtime).value(), **server, http_metrics, o.grace_s);
    std::printf("kvstream: stopped\n");
}

std::string Trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t\r");
    const auto e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// The model, the listener and the engine's shape.
void AddServerOptions(CLI::App* cmd, ServeOptions& o) {
    EngineOptions& e = o.runtime.engine;
    cmd->add_option("--model", o.model, "GGUF model (default: the SmolLM2-135M shape twin)");
    cmd->add_option("--host", o.server.host, "Address to listen on")->capture_default_str();
    cmd->add_option("--port", o.server.port, "Port (0: any free port)")
        ->check(CLI::Range(0, 65535))
        ->capture_default_str();
    cmd->add_option("--port-file", o.port_file, "Write the port listened on to this file");
    cmd->add_option("--api-keys", o.api_keys,
                    "JSON file {\"keys\": [{\"key\", \"tenant\"}]}; without it only loopback "
                    "clients are served");
    cmd->add_option("--http-threads", o.server.io_threads, "I/O threads")
        ->check(CLI::Range(1, 64))
        ->capture_default_str();
    cmd->add_option("--threads", e.n_threads, "Compute threads (0: all cores)")
        ->capture_default_str();
    cmd->add_option("--sessions", e.n_sessions, "Resident session slots")
        ->check(CLI::Range(1, 250))
        ->capture_default_str();
    cmd->add_option("--ctx", e.n_ctx_session, "Tokens per session slot")
        ->check(CLI::Range(256, 1 << 20))
        ->capture_default_str();
    cmd->add_option("--max-sessions", e.max_sessions, "Sessions in all (beyond slots: parked)")
        ->check(CLI::Range(1, 1 << 20))
        ->capture_default_str();
}

// Where sessions are kept, and how durably.
void AddStorageOptions(CLI::App* cmd, ServeOptions& o) {
    EngineOptions& e = o.runtime.engine;
    cmd->add_option("--park-dir", e.park_dir,
                    "Spill folder for parked sessions past RAM (default: DATA_DIR/park)");
    DurableOptions& d = o.runtime.durable;
    cmd->add_option("--data-dir", d.data_dir,
                    "Folder for durable sessions: the store, snapshots (default: "
                    "$XDG_DATA_HOME/kvstream or ~/.local/share/kvstream)");
    cmd->add_flag("--in-memory", o.in_memory,
                  "Keep sessions in memory only: nothing is stored, a restart loses them");
    cmd->add_option("--sync", o.sync,
                    "When an append is acknowledged: full (fsync'd: survives power loss), normal "
                    "(survives a crash of the server), off (benchmarks only)")
        ->check(CLI::IsMember({"full", "normal", "off"}))
        ->capture_default_str();
    cmd->add_option("--snapshot-interval-s", d.snapshot_interval_s,
                    "Refresh a resident session's KV snapshot at most this often")
        ->check(CLI::Range(0.0, 86400.0))
        ->capture_default_str();
    cmd->add_option("--snapshot-min-tokens", d.snapshot_min_tokens,
                    "... and only once this many new tokens arrived")
        ->check(CLI::Range(0, 1 << 24))
        ->capture_default_str();
    cmd->add_option("--snapshot-memory-bytes", d.snapshot_memory_bytes,
                    "Most bytes of session state held in memory for snapshots at once (parking "
                    "copies, queued and shutdown snapshots); past it a snapshot waits")
        ->check(CLI::Range(std::size_t{1} << 20, std::size_t{1} << 40))
        ->capture_default_str();
    cmd->add_option("--store-max-pages", d.max_store_pages,
                    "Cap the store at this many 4 KiB pages (tests a full disk; 0: no cap)")
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 40))
        ->capture_default_str();
}

// Tenants, flash and speculation, request limits and timeouts.
void AddLimitOptions(CLI::App* cmd, ServeOptions& o) {
    EngineOptions& e = o.runtime.engine;
    cmd->add_option("--tenant-max-sessions", o.runtime.tenant_limits.max_sessions,
                    "Sessions one tenant may hold")
        ->check(CLI::Range(1, 1 << 20))
        ->capture_default_str();
    cmd->add_option("--tenant-max-queries", o.runtime.tenant_limits.max_queued_queries,
                    "Queries one tenant may have queued or running (more: 429)")
        ->check(CLI::Range(1, 1 << 20))
        ->capture_default_str();
    cmd->add_option("--tenant-max-resident", e.max_resident_per_tenant,
                    "KV slots one tenant may hold at once (0: no limit)")
        ->check(CLI::Range(0, 250))
        ->capture_default_str();
    cmd->add_option("--flash-share", e.flash_max_share, "Most engine time for flash work, (0, 1]")
        ->check(CLI::Range(0.001, 1.0))
        ->capture_default_str();
    cmd->add_option("--spec-draft", e.draft.max_draft,
                    "Speculative decoding by prompt lookup: most tokens drafted per step (0: off)")
        ->check(CLI::Range(0, 32))
        ->capture_default_str();
    cmd->add_option("--spec-ngram", e.draft.ngram_max, "Longest answer suffix looked up")
        ->check(CLI::Range(1, 8))
        ->capture_default_str();
    cmd->add_option("--spec-max-decoders", e.draft_max_decoders,
                    "Speculate only while at most this many sequences decode")
        ->check(CLI::Range(0, 1024))
        ->capture_default_str();
    cmd->add_option("--max-body-bytes", o.server.max_body_bytes, "Largest request body")
        ->capture_default_str();
    cmd->add_option("--max-records", o.limits.max_records, "Records per append")
        ->capture_default_str();
    cmd->add_option("--max-tokens", o.limits.max_tokens, "Largest max_tokens of a request")
        ->check(CLI::Range(1, kMaxAnswerTokens))
        ->capture_default_str();
    cmd->add_option("--event-buffer", o.limits.event_buffer,
                    "Events buffered per subscriber before the oldest are dropped")
        ->check(CLI::Range(1, 1 << 20))
        ->capture_default_str();
    cmd->add_option("--request-timeout-s", o.server.request_timeout_s,
                    "Time for a client to send its request")
        ->check(CLI::Range(1, 3600))
        ->capture_default_str();
    cmd->add_option("--grace-s", o.grace_s, "On SIGTERM: time for requests in flight to finish")
        ->check(CLI::Range(0.0, 3600.0))
        ->capture_default_str();
}

}  // namespace

std::vector<std::string> ExpandServeConfig(std::vector<std::string> args) {
    if (args.size() < 2 || args[1] != "serve") {
        return args;
    }
    std::string path;
    for (std::size_t i = 2; i + 1 < args.size(); ++i) {
        if (args[i] == "--config") {
            path = args[i + 1];
        }
    }
    if (path.empty()) {
        return args;
    }
    std::ifstream in(path);
    if (!in) {
        throw std::runtime_error("--config: cannot read " + path);
    }
    std::vector<std::string> from_file;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        line = Trim(line.substr(0, line.find('#')));
        if (line.empty() || (line.front() == '[' && line.back() == ']')) {
            continue;  // blank, comment, or a section header such as [serve]
        }
        const auto eq = line.find('=');
        if (eq == std::string::npos) {
            throw std::runtime_error(path + ":" + std::to_string(n) + ": expected name = value");
        }
        const std::string name = Trim(line.substr(0, eq));
        std::string value = Trim(line.substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
            value = value.substr(1, value.size() - 2);
        }
        if (name.empty() || name == "config") {
            throw std::runtime_error(path + ":" + std::to_string(n) + ": bad option name");
        }
        from_file.push_back("--" + name);
        from_file.push_back(value);
    }
    // File options first: a later value of an option wins, so the command line overrides them.
    args.insert(args.begin() + 2, from_file.begin(), from_file.end());
    return args;
}

void AddServeCommand(CLI::App& app) {
    auto o = std::make_shared<ServeOptions>();
    CLI::App* cmd = app.add_subcommand("serve", "Serve the HTTP API (docs/http_api.md)");
    cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    // Read by ExpandServeConfig before parsing; declared here for --help.
    cmd->add_option("--config", o->config,
                    "Read options from this file: `name = value` lines (TOML-like; names are the "
                    "options without --); options on the command line win");
    AddServerOptions(cmd, *o);
    AddStorageOptions(cmd, *o);
    AddLimitOptions(cmd, *o);
    cmd->callback([o] { RunServe(*o); });
}

}  // namespace kvs
