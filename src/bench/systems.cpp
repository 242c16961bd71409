// The base of every system and kvstream's two ways of answering: a stateful session per stream
// (data pushed as it arrives, questions sent alone) and its registered flash questions.

#include "bench/systems.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>
#include <thread>

namespace kvs::bench {

using Json = nlohmann::json;

double MsSince(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

Status ReplyError(const std::string& what, const Result<HttpReply>& r) {
    if (!r.ok()) {
        return Status{r.status().code(), what + ": " + r.status().message()};
    }
    return Internal(what + ": HTTP " + std::to_string(r->status) + " " + r->body.substr(0, 300));
}

void System::Stop() {
    if (server_) {
        server_->Stop(30);
        server_.reset();
    }
}

Status System::Launch(const std::vector<std::string>& argv, const std::string& log, int port) {
    auto child = ChildProcess::Start(argv, log);
    if (!child.ok()) {
        return child.status();
    }
    server_.emplace(std::move(child).value());
    port_ = port;
    HttpClient client("127.0.0.1", port);
    const auto deadline = Clock::now() + std::chrono::minutes(10);
    while (Clock::now() < deadline) {
        std::string why;
        if (!server_->Running(&why)) {
            server_.reset();
            return Unavailable(argv[0] + " " + why + "; its log ends:\n" + Tail(log));
        }
        auto r = client.Request("GET", "/health", "", {}, std::chrono::seconds(2));
        if (r.ok() && r->status == 200) {
            return Status::Ok();
        }
        client.Close();
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    Stop();
    return Unavailable(argv[0] + " did not become healthy in 10 minutes; its log: " + log);
}

namespace {

// kvstream with one stateful session per stream. With `flash`, the sessions register the
// scenario's flash questions and the questions asked are those (cached answers when current).
class KvstreamSystem : public System {
public:
    explicit KvstreamSystem(bool flash) : flash_(flash) {}

    ~KvstreamSystem() override {
        Stop();
        for (auto& t : listeners_) {
            t.join();
        }
        std::error_code ec;  // the sessions' store and snapshots are not results: drop them
        std::filesystem::remove_all(data_dir_, ec);
    }

    SystemKind kind() const override {
        return flash_ ? SystemKind::kKvstreamFlash : SystemKind::kKvstream;
    }

    Status Start(const ServerSetup& setup) override {
        setup_ = setup;
        auto port = FreeLoopbackPort();
        if (!port.ok()) {
            return port.status();
        }
        data_dir_ = setup.work_dir + "/" + SystemName(kind()) + "-data";
        std::filesystem::remove_all(data_dir_);
        const int n = setup.n_sessions;
        return Launch({setup.kvstream_bin,
                       "serve",
                       "--model",
                       setup.model,
                       "--port",
                       std::to_string(*port),
                       "--threads",
                       std::to_string(setup.threads),
                       "--sessions",
                       std::to_string(n),
                       "--max-sessions",
                       std::to_string(n),
                       "--ctx",
                       std::to_string(setup.ctx_per_session),
                       "--data-dir",
                       data_dir_,
                       "--max-body-bytes",
                       std::to_string(16 << 20),
                       "--request-timeout-s",
                       "3600"},
                      setup.work_dir + "/" + SystemName(kind()) + ".log", *port);
    }

    Status Prepare(const std::vector<SessionStart>& sessions,
                   std::vector<Answer>& /*warmup*/,
                   const WarmupProgress& progress) override {
        HttpClient client("127.0.0.1", port_);
        for (const SessionStart& s : sessions) {
            Json body = {{"prefix", s.prefix}, {"template", "ohlcv"}};
            if (flash_) {
                body["flash"] = Json::array();
                for (const auto& q : setup_.flash_questions) {
                    body["flash"].push_back({{"query", q}, {"max_tokens", setup_.answer_tokens}});
                }
            }
            auto r = client.Post("/v1/sessions", body.dump());
            if (!r.ok() || r->status != 201) {
                return ReplyError("create session", r);
            }
            ids_.push_back(Json::parse(r->body).at("id").get<std::string>());
        }
        ingested_.resize(ids_.size());
        for (std::size_t i = 0; i < ids_.size(); ++i) {
            listeners_.emplace_back([this, i] { Listen(i); });
        }
        // The history in appends of 32 bars (records, rendered by the server's ohlcv template).
        std::size_t total_bars = 0;
        for (std::size_t i = 0; i < sessions.size(); ++i) {
            const auto& bars = sessions[i].history;
            total_bars += bars.size();
            for (std::size_t b = 0; b < bars.size(); b += 32) {
                Json records = Json::array();
                for (std::size_t k = b; k < std::min(bars.size(), b + 32); ++k) {
                    records.push_back(Record(bars[k]));
                }
                for (;;) {  // back-pressure (429) while the server is far behind: wait, retry
                    auto r = client.Post("/v1/sessions/" + ids_[i] + "/data",
                                         Json{{"records", records}}.dump());
                    if (r.ok() && r->status == 429) {
                        std::this_thread::sleep_for(std::chrono::milliseconds(500));
                        continue;
                    }
                    if (!r.ok() || r->status != 202) {
                        return ReplyError("append history", r);
                    }
                    break;
                }
            }
        }
        // Wait until every session has ingested its history (and flash answers are current).
        for (;;) {
            int pending = 0;
            int tokens = 0;
            int flash_missing = 0;
            for (const auto& id : ids_) {
                auto r = client.Get("/v1/sessions/" + id);
                if (!r.ok() || r->status != 200) {
                    return ReplyError("session " + id, r);
                }
                const Json j = Json::parse(r->body);
                pending += j.at("pending_tokens").get<int>();
                tokens += j.at("tokens").get<int>();
                for (const auto& f : j.at("flash")) {
                    flash_missing += f.at("current").get<bool>() ? 0 : 1;
                }
            }
            progress(
                "ingesting history: " + std::to_string(tokens) + " tokens in, " +
                std::to_string(pending) + " pending (" + std::to_string(total_bars) + " bars)" +
                (flash_ ? ", flash answers not current: " + std::to_string(flash_missing) : ""));
            if (pending == 0 && flash_missing == 0) {
                return Status::Ok();
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
        }
    }

    Result<Appended> Append(HttpClient& client, int session, const Bar& bar) override {
        const std::string body = Json{{"records", Json::array({Record(bar)})}}.dump();
        const auto start = Clock::now();
        auto r = client.Post("/v1/sessions/" + ids_[session] + "/data", body);
        const double ms = MsSince(start);
        if (!r.ok() || r->status != 202) {
            return ReplyError("append", r);
        }
        Appended a{ms, Json::parse(r->body).at("version").get<std::uint64_t>()};
        std::lock_guard lock(mu_);
        acked_.push_back({session, a.version, Clock::now()});
        return a;
    }

    Result<Answer> Ask(HttpClient& client, int session, const std::string& question) override {
        Json body = {{"query", question}, {"max_tokens", setup_.answer_tokens}};
        const std::string target = "/v1/sessions/" + ids_[session] + "/query";
        Answer a;
        const auto start = Clock::now();
        if (flash_) {  // exactly as registered, so a current answer is served from the cache
            auto r = client.Post(target, body.dump());
            a.total_ms = a.ttft_ms = MsSince(start);
            if (!r.ok() || r->status != 200) {
                return ReplyError("query", r);
            }
            ReadDone(Json::parse(r->body), a);
            if (r->server_timing.starts_with("app;dur=")) {
                a.server_ms = std::stod(r->server_timing.substr(8));
            }
            return a;
        }
        body["stream"] = true;
        body["ignore_eos"] = true;  // every answer has answer_tokens tokens, as on the peers
        SseParser sse;
        bool failed = false;
        std::string error;
        auto r = client.Request("POST", target, body.dump(), [&](std::string_view bytes) {
            sse.Feed(bytes, [&](const SseParser::Event& e) {
                if (e.name == "token" && a.ttft_ms == 0) {
                    a.ttft_ms = MsSince(start);
                } else if (e.name == "done") {
                    ReadDone(Json::parse(e.data), a);
                } else if (e.name == "error") {
                    failed = true;
                    error = e.data;
                }
            });
        });
        a.total_ms = MsSince(start);
        if (!r.ok() || r->status != 200 || failed) {
            return failed ? Internal("query: " + error) : ReplyError("query", r);
        }
        return a;
    }

    std::vector<double> IngestLagsMs() override {
        // The last bars may still be in the engine: wait (up to a minute) for their events.
        const auto deadline = Clock::now() + std::chrono::minutes(1);
        for (bool all = false; !all && Clock::now() < deadline;) {
            {
                std::lock_guard lock(mu_);
                all = std::all_of(acked_.begin(), acked_.end(), [&](const Acked& a) {
                    return !ingested_[a.session].empty() &&
                           ingested_[a.session].rbegin()->first >= a.version;
                });
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(all ? 0 : 100));
        }
        std::lock_guard lock(mu_);
        std::vector<double> lags;
        for (const Acked& a : acked_) {
            // An event names the newest version ingested: the first at or after this one.
            const auto& events = ingested_[a.session];
            const auto it = events.lower_bound(a.version);
            if (it != events.end()) {
                lags.push_back(std::max(
                    0.0, std::chrono::duration<double, std::milli>(it->second - a.at).count()));
            }
        }
        return lags;
    }

    std::optional<double> OverheadShare() override {
        std::map<std::string, double> m = ScrapeMetrics();
        const double step = m["kvs_step_ms_sum"];
        return step > 0 ? std::optional(m["kvs_overhead_ms_sum"] / step) : std::nullopt;
    }

    std::map<std::string, double> ScrapeMetrics() override {
        std::map<std::string, double> series;
        HttpClient client("127.0.0.1", port_);
        auto r = client.Get("/metrics");
        if (!r.ok() || r->status != 200) {
            return series;
        }
        std::istringstream lines(r->body);
        std::string line;
        std::set<std::string> gauges;  // from "# TYPE name gauge"
        while (std::getline(lines, line)) {
            if (line.starts_with("# TYPE ") && line.ends_with(" gauge")) {
                gauges.insert(line.substr(7, line.size() - 7 - 6));
            }
            const std::size_t space = line.rfind(' ');
            if (line.empty() || line[0] == '#' || space == std::string::npos ||
                line.find("_bucket{") != std::string::npos) {
                continue;
            }
            const std::string name = line.substr(0, std::min(line.find('{'), space));
            if (!gauges.contains(name) || name == "kvs_flash_engine_ms") {
                series[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
            }
        }
        return series;
    }

private:
    struct Acked {
        int session;
        std::uint64_t version;
        Clock::time_point at;
    };

    static Json Record(const Bar& b) {
        Json r = {{"symbol", b.symbol}, {"t", b.time_s}, {"o", b.open},
                  {"h", b.high},        {"l", b.low},    {"c", b.close}};
        if (b.volume > 0) {
            r["v"] = b.volume;
        }
        return r;
    }

    static void ReadDone(const Json& done, Answer& a) {
        a.cached = done.value("cached", false);
        a.text = done.value("answer", "");
        const Json& t = done.at("timings");
        a.answer_tokens = t.value("answer_tokens", 0);
        a.joined = done.value("joined", false);
        a.engine_ms = t.value("total_ms", -1.0);
        a.queued_ms = t.value("queued_ms", -1.0);
        a.wait_ms = t.value("wait_ms", -1.0);
        a.prefill_ms = t.value("prefill_ms", -1.0);
        a.decode_ms = t.value("decode_ms", -1.0);
        a.in_server_ms = t.value("server_ms", -1.0);
        a.computed_tokens = a.cached ? 0 : t.value("prompt_tokens", 0) + a.answer_tokens;
        if (a.cached) {  // the timings are those of the evaluation that made it
            a.answer_tokens = done.value("tokens", 0);
            a.engine_ms = a.queued_ms = a.wait_ms = a.prefill_ms = a.decode_ms = 0;
        }
        if (a.joined) {  // computed once, by the evaluation it joined
            a.computed_tokens = 0;
        }
    }

    // Reads the session's event stream until the server closes it: when each version was
    // ingested.
    void Listen(std::size_t i) {
        HttpClient client("127.0.0.1", port_);
        SseParser sse;
        (void)client.Request(
            "GET", "/v1/sessions/" + ids_[i] + "/events", "",
            [&](std::string_view bytes) {
                sse.Feed(bytes, [&](const SseParser::Event& e) {
                    if (e.name == "data_ingested") {
                        const auto v = Json::parse(e.data).at("version").get<std::uint64_t>();
                        std::lock_guard lock(mu_);
                        ingested_[i].emplace(v, Clock::now());
                    }
                });
            },
            std::chrono::hours(24));
    }

    bool flash_;
    ServerSetup setup_;
    std::string data_dir_;
    std::vector<std::string> ids_;
    std::vector<std::thread> listeners_;
    std::mutex mu_;
    std::vector<Acked> acked_;
    std::vector<std::map<std::uint64_t, Clock::time_point>> ingested_;
};

}  // namespace

std::unique_ptr<System> MakeSystem(SystemKind kind) {
    switch (kind) {
        case SystemKind::kKvstream:
            return std::make_unique<KvstreamSystem>(false);
        case SystemKind::kKvstreamFlash:
            return std::make_unique<KvstreamSystem>(true);
        case SystemKind::kStateless:
            return MakeStatelessSystem();
        case SystemKind::kLlamaServer:
            return MakeLlamaServerSystem(false);
        case SystemKind::kLlamaServerShared:
            return MakeLlamaServerSystem(true);
    }
    return nullptr;
}

}  // namespace kvs::bench
