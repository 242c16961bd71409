#pragma once
// The systems the benchmark compares, behind one interface: start a server, bring each session to
// its starting context, take bars as they arrive, answer questions. kvstream keeps the context
// in the server (data pushed as it arrives, questions sent alone); the stateless engine and
// llama-server get each question with the session's whole accumulated text, as a conventional
// client sends it.

#include "bench/child_process.h"
#include "bench/http_client.h"
#include "bench/scenario.h"
#include "common/status.h"
#include "feed/market.h"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace kvs::bench {

using Clock = std::chrono::steady_clock;

// How to start the servers.
struct ServerSetup {
    std::string kvstream_bin;      // this program
    std::string llama_server_bin;  // llama.cpp's llama-server (same pinned tree)
    std::string model;
    int threads = 2;
    int n_sessions = 0;
    int ctx_per_session = 0;  // tokens a session needs by the end of the run
    int shared_slots = 1;
    int answer_tokens = 16;
    std::vector<std::string> flash_questions;
    std::string work_dir;  // logs and kvstream's data folder
};

// One session's starting state.
struct SessionStart {
    std::string prefix;
    std::vector<Bar> history;
    std::string history_text;  // the bars rendered, as the server renders them
    std::string first_question;
};

// One answer as the client saw it.
struct Answer {
    double ttft_ms = 0;     // request sent -> first answer text (non-streamed: the whole reply)
    double total_ms = 0;    // request sent -> reply complete
    double server_ms = -1;  // inside the server (Server-Timing), -1 when not reported
    double engine_ms = -1;  // kvstream: the engine's compute for it (prefill + decode)
    double queued_ms = -1;  // kvstream: its own catch-up ingest (timings.queued_ms)
    // kvstream's attribution of a question's time (QueryTimings), -1 when not reported: the
    // engine step in flight when it came, prefill, decode, and the server's whole time for it
    // (arrival at the route to the answer's last event); the HTTP side is total_ms - in_server_ms.
    double wait_ms = -1;
    double prefill_ms = -1;
    double decode_ms = -1;
    double in_server_ms = -1;
    bool joined = false;       // answered by the flash evaluation running when it came
    int computed_tokens = -1;  // tokens the server computed for it (prompt part + answer)
    int answer_tokens = 0;
    bool cached = false;  // a flash answer served from the cache
    std::string text;
};

// What an append's acknowledgement said (kvstream only; others keep the text client-side).
struct Appended {
    double ack_ms = 0;
    std::uint64_t version = 0;
};

// Progress of the warm-up, for the progress line.
using WarmupProgress = std::function<void(const std::string& what)>;

class System {
public:
    virtual ~System() = default;
    virtual SystemKind kind() const = 0;

    // Starts the server and waits until /health answers 200.
    virtual Status Start(const ServerSetup& setup) = 0;

    // Brings every session to its starting context. Answers computed here (cold prefills) are
    // appended to `warmup`.
    virtual Status Prepare(const std::vector<SessionStart>& sessions,
                           std::vector<Answer>& warmup,
                           const WarmupProgress& progress) = 0;

    // A new bar for a session (called from that session's feeder thread with its own client).
    virtual Result<Appended> Append(HttpClient& client, int session, const Bar& bar) = 0;

    // A question for a session (its own thread and client).
    virtual Result<Answer> Ask(HttpClient& client, int session, const std::string& question) = 0;

    // Ingest lag of each appended version, ms from acknowledgement to "in the KV cache"
    // (kvstream only; empty for systems that read the data at question time).
    virtual std::vector<double> IngestLagsMs() { return {}; }

    // The server's own scheduler overhead share, when it reports one (kvstream's metrics).
    virtual std::optional<double> OverheadShare() { return std::nullopt; }

    // The server's cumulative series by name with their labels (kvstream's /metrics: counters,
    // histograms' _sum and _count, and the gauge kvs_flash_engine_ms, which only grows; other
    // gauges and the buckets are left out); empty for servers without metrics.
    virtual std::map<std::string, double> ScrapeMetrics() { return {}; }

    void Stop();

    double CpuSeconds() const { return server_ ? server_->CpuSeconds() : 0; }

    double PeakRssMib() const { return server_ ? server_->PeakRssMib() : 0; }

    int port() const { return port_; }

protected:
    // Starts argv (its port already chosen) and waits for GET /health == 200.
    Status Launch(const std::vector<std::string>& argv, const std::string& log, int port);

    std::optional<ChildProcess> server_;
    int port_ = 0;
};

std::unique_ptr<System> MakeSystem(SystemKind kind);

// The conventional systems (peers.cpp): kvstream's stateless endpoint and llama-server.
std::unique_ptr<System> MakeStatelessSystem();
std::unique_ptr<System> MakeLlamaServerSystem(bool shared);

// For the systems' implementations: milliseconds since `start`; a failed or unexpected reply as a
// Status naming `what` (the transport's error, or the HTTP status and the body's start).
double MsSince(Clock::time_point start);
Status ReplyError(const std::string& what, const Result<HttpReply>& r);

}  // namespace kvs::bench
