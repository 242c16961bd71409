// The conventional systems: each question is sent with the session's whole accumulated text, as
// a client of a stateless server sends it. kvstream's own OpenAI endpoint (computed from scratch)
// and llama.cpp's llama-server (its prompt cache on, as shipped).

#include "bench/systems.h"

#include <nlohmann/json.hpp>

namespace kvs::bench {

using Json = nlohmann::json;

namespace {

// Keeps each session's text on the client; a question is that text plus the question.
class ClientContextSystem : public System {
public:
    Result<Appended> Append(HttpClient& /*client*/, int session, const Bar& bar) override {
        std::lock_guard lock(mu_);
        texts_[session] += RenderBar(bar);
        return Appended{};
    }

    Result<Answer> Ask(HttpClient& client, int session, const std::string& question) override {
        std::string prompt;
        {
            std::lock_guard lock(mu_);
            prompt = texts_[session] + question;
        }
        return Complete(client, prompt);
    }

protected:
    void Keep(const std::vector<SessionStart>& sessions) {
        std::lock_guard lock(mu_);
        for (const SessionStart& s : sessions) {
            texts_.push_back(s.prefix + s.history_text);
        }
    }

    // One streamed completion of `prompt`.
    virtual Result<Answer> Complete(HttpClient& client, const std::string& prompt) = 0;

    // Streams a completion request and reads its server-sent events: `on_event` sees each data
    // object and returns whether it carried answer text (for the time to the first token).
    Result<Answer> Stream(HttpClient& client,
                          const std::string& target,
                          const Json& body,
                          const std::function<bool(const Json&, Answer&)>& on_event) {
        Answer a;
        SseParser sse;
        std::string error;
        const auto start = Clock::now();
        auto r = client.Request("POST", target, body.dump(), [&](std::string_view bytes) {
            sse.Feed(bytes, [&](const SseParser::Event& e) {
                if (e.data.empty() || e.data == "[DONE]") {
                    return;
                }
                Json j = Json::parse(e.data, nullptr, false);
                if (j.is_discarded() || j.contains("error")) {
                    error = e.data;
                    return;
                }
                if (on_event(j, a) && a.ttft_ms == 0) {
                    a.ttft_ms = MsSince(start);
                }
            });
        });
        a.total_ms = MsSince(start);
        if (!r.ok() || r->status != 200) {
            return ReplyError("completion", r);
        }
        if (!error.empty()) {
            return Internal("completion: " + error.substr(0, 300));
        }
        return a;
    }

    int answer_tokens_ = 16;

private:
    std::mutex mu_;
    std::vector<std::string> texts_;
};

// kvstream's OpenAI-compatible endpoint: every question computed from scratch.
class StatelessSystem : public ClientContextSystem {
public:
    SystemKind kind() const override { return SystemKind::kStateless; }

    Status Start(const ServerSetup& setup) override {
        answer_tokens_ = setup.answer_tokens;
        auto port = FreeLoopbackPort();
        if (!port.ok()) {
            return port.status();
        }
        // Stateless requests run on the engine's reserved sequences, each a slot of --ctx cells.
        return Launch(
            {setup.kvstream_bin, "serve", "--model", setup.model, "--port", std::to_string(*port),
             "--threads", std::to_string(setup.threads), "--sessions", "1", "--ctx",
             std::to_string(setup.ctx_per_session), "--in-memory", "--max-body-bytes",
             std::to_string(16 << 20), "--request-timeout-s", "3600"},
            setup.work_dir + "/stateless.log", *port);
    }

    Status Prepare(const std::vector<SessionStart>& sessions,
                   std::vector<Answer>& /*warmup*/,
                   const WarmupProgress& /*progress*/) override {
        Keep(sessions);  // nothing to warm: every question starts from nothing
        return Status::Ok();
    }

protected:
    Result<Answer> Complete(HttpClient& client, const std::string& prompt) override {
        const Json body = {{"prompt", prompt},
                           {"max_tokens", answer_tokens_},
                           {"temperature", 0},
                           {"stream", true},
                           {"ignore_eos", true}};
        return Stream(client, "/v1/completions", body, [](const Json& j, Answer& a) {
            if (j.contains("usage") && j["usage"].is_object()) {
                a.answer_tokens = j["usage"].value("completion_tokens", 0);
                a.computed_tokens = j["usage"].value("prompt_tokens", 0) + a.answer_tokens;
            }
            if (j.contains("choices") && !j["choices"].empty()) {
                const std::string piece = j["choices"][0].value("text", "");
                a.text += piece;
                return !piece.empty();
            }
            return false;
        });
    }
};

// llama.cpp's server from the same pinned tree, with its defaults (prompt cache on, 8 GiB of
// host prompt cache, idle slots saved to it). Flash attention off, as kvstream runs.
class LlamaServerSystem : public ClientContextSystem {
public:
    explicit LlamaServerSystem(bool shared) : shared_(shared) {}

    SystemKind kind() const override {
        return shared_ ? SystemKind::kLlamaServerShared : SystemKind::kLlamaServer;
    }

    Status Start(const ServerSetup& setup) override {
        answer_tokens_ = setup.answer_tokens;
        if (setup.llama_server_bin.empty()) {
            return NotFound("no llama-server (--llama-server PATH; bench/market.sh builds it)");
        }
        auto port = FreeLoopbackPort();
        if (!port.ok()) {
            return port.status();
        }
        const int slots = shared_ ? setup.shared_slots : setup.n_sessions;
        return Launch(
            {setup.llama_server_bin, "--model", setup.model, "--host", "127.0.0.1", "--port",
             std::to_string(*port), "--threads", std::to_string(setup.threads), "--threads-batch",
             std::to_string(setup.threads), "--parallel", std::to_string(slots), "--ctx-size",
             std::to_string(slots * setup.ctx_per_session), "--flash-attn", "off", "--no-webui"},
            setup.work_dir + "/" + SystemName(kind()) + ".log", *port);
    }

    // Each session's first question carries its whole history: the cold prefill a
    // conventional server pays once per session (or again after its slot was taken).
    Status Prepare(const std::vector<SessionStart>& sessions,
                   std::vector<Answer>& warmup,
                   const WarmupProgress& progress) override {
        Keep(sessions);
        HttpClient client("127.0.0.1", port_);
        for (std::size_t i = 0; i < sessions.size(); ++i) {
            progress("first question of session " + std::to_string(i + 1) + " of " +
                     std::to_string(sessions.size()) + " (cold prefill)");
            auto a = Ask(client, static_cast<int>(i), sessions[i].first_question);
            if (!a.ok()) {
                return a.status();
            }
            warmup.push_back(*a);
        }
        return Status::Ok();
    }

protected:
    Result<Answer> Complete(HttpClient& client, const std::string& prompt) override {
        const Json body = {{"prompt", prompt}, {"n_predict", answer_tokens_}, {"temperature", 0},
                           {"stream", true},   {"cache_prompt", true},        {"ignore_eos", true}};
        return Stream(client, "/completion", body, [](const Json& j, Answer& a) {
            if (j.contains("timings")) {
                const Json& t = j["timings"];
                a.answer_tokens = t.value("predicted_n", 0);
                a.computed_tokens = t.value("prompt_n", 0) + a.answer_tokens;
            }
            const std::string piece = j.value("content", "");
            a.text += piece;
            return !piece.empty();
        });
    }

private:
    bool shared_;
};

}  // namespace

std::unique_ptr<System> MakeStatelessSystem() {
    return std::make_unique<StatelessSystem>();
}

std::unique_ptr<System> MakeLlamaServerSystem(bool shared) {
    return std::make_unique<LlamaServerSystem>(shared);
}

}  // namespace kvs::bench
