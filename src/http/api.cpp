// Dispatch: authentication, routing, per-route metrics, /health, /metrics and /v1/models.

#include "http/api.h"

#include "http/api_call.h"
#include "http/dashboard_assets.h"

#include <charconv>
#include <vector>

namespace kvs::http {
namespace {

const std::vector<double> kRequestMsBuckets = ExponentialBuckets(0.01, 2.0, 24);

std::vector<std::string_view> SplitPath(std::string_view path) {
    std::vector<std::string_view> parts;
    while (!path.empty()) {
        if (path.front() == '/') {
            path.remove_prefix(1);
            continue;
        }
        const std::size_t slash = path.find('/');
        parts.push_back(path.substr(0, slash));
        path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
    }
    return parts;
}

std::optional<std::uint64_t> ParseId(std::string_view s) {
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || v == 0) {
        return std::nullopt;
    }
    return v;
}

// Records the route's status and latency once it is answered; counts in-flight requests.
class MeteredExchange : public Exchange, public std::enable_shared_from_this<MeteredExchange> {
public:
    MeteredExchange(ExchangePtr inner, MetricsRegistry& m, std::atomic<int>& in_flight)
        : inner_(std::move(inner)), metrics_(m), in_flight_(in_flight) {
        ++in_flight_;
    }

    void SetRoute(std::string route) { route_ = std::move(route); }

    void Reply(HttpResponse r) override {
        // The time inside the server, for clients that measure it (benchmarks): RFC 8673's
        // Server-Timing header.
        char timing[48];
        std::snprintf(timing, sizeof timing, "app;dur=%.3f", Record(r.status));
        r.headers.emplace_back("Server-Timing", timing);
        --in_flight_;
        inner_->Reply(std::move(r));
    }

    void BeginStream() override {
        Record(200);
        inner_->BeginStream();
        inner_->OnClose([self = shared_from_this()] {
            --self->in_flight_;
            std::function<void()> f;
            {
                std::lock_guard lock(self->mu_);
                f = std::move(self->on_close_);
            }
            if (f) {
                f();
            }
        });
    }

    void Write(std::string chunk) override { inner_->Write(std::move(chunk)); }

    void End() override { inner_->End(); }

    void Pull(std::function<std::optional<std::string>()> next) override {
        inner_->Pull(std::move(next));
    }

    void Wake() override { inner_->Wake(); }

    void OnClose(std::function<void()> on_close) override {
        std::lock_guard lock(mu_);
        on_close_ = std::move(on_close);
    }

private:
    double Record(unsigned status) {
        const double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_)
                .count();
        metrics_
            .GetCounter("kvs_http_requests_total", "HTTP requests by route and status",
                        {{"route", route_}, {"status", std::to_string(status)}})
            .Add();
        metrics_
            .GetHistogram("kvs_http_request_ms", "Time to the response (or a stream's start)",
                          kRequestMsBuckets, {{"route", route_}})
            .Observe(ms);
        return ms;
    }

    ExchangePtr inner_;
    MetricsRegistry& metrics_;
    std::atomic<int>& in_flight_;
    std::string route_ = "unknown";
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
    std::mutex mu_;
    std::function<void()> on_close_;
};

}  // namespace

Api::Api(ApiLimits limits, ApiKeys keys, MetricsRegistry& http_metrics)
    : limits_(limits), keys_(std::move(keys)), metrics_(http_metrics) {}

void Api::SetRuntime(Runtime* runtime, std::string model_id) {
    model_id_ = std::move(model_id);
    {
        std::lock_guard lock(mu_);  // restored sessions' record formats
        for (const auto& [id, settings] : runtime->restored()) {
            auto doc = ParseJsonBody(settings, BodyLimits{});
            const Json* t = doc.ok() ? FindField(*doc, "template") : nullptr;
            auto parsed =
                t != nullptr ? ParseRecordTemplate(*t) : Result<RecordTemplate>(RecordTemplate{});
            templates_[id] = parsed.ok() ? *parsed : RecordTemplate{};
        }
    }
    runtime_ = runtime;
}

void Api::Handle(HttpRequest request, ExchangePtr raw) {
    auto ex = std::make_shared<MeteredExchange>(std::move(raw), metrics_, in_flight_);
    Runtime* rt = runtime_.load();
    Call c{std::move(request), ex, {}, rt, this};
    const auto parts = SplitPath(c.request.path);  // views into c.request
    const std::string& method = c.request.method;
    auto route = [&](const char* name) { ex->SetRoute(name); };
    auto wrong_method = [&](const char* allowed) {
        HttpResponse r = ErrorResponse(405, "method_not_allowed",
                                       method + " is not allowed here; use " + allowed);
        r.headers.emplace_back("Allow", allowed);
        ex->Reply(std::move(r));
    };

    // Unauthenticated: the dashboard's files (the page asks for a key itself), liveness, metrics.
    if (const DashboardAsset* asset = FindDashboardAsset(c.request.path);
        asset != nullptr || (!parts.empty() && parts[0] == "dashboard")) {
        route("dashboard");
        if (asset == nullptr) {
            return ex->Reply(ErrorResponse(404, "not_found", "no route " + c.request.path));
        }
        if (method != "GET" && method != "HEAD") {
            return wrong_method("GET");
        }
        HttpResponse r;
        r.content_type = std::string(asset->content_type);
        r.body = std::string(asset->body);
        r.headers.emplace_back("Cache-Control", "no-cache");
        r.headers.emplace_back("Content-Security-Policy",
                               "default-src 'self'; style-src 'self'; script-src 'self'");
        return ex->Reply(std::move(r));
    }
    if (parts.size() == 1 && parts[0] == "health") {
        route("/health");
        if (method != "GET") {
            return wrong_method("GET");
        }
        if (rt == nullptr || stopping_) {
            return ex->Reply(ErrorResponse(503, "unavailable",
                                           rt == nullptr ? "loading the model" : "shutting down"));
        }
        const CpuBackendInfo& cpu = rt->cpu_backend();
        const Json backend{{"variant", cpu.variant},
                           {"features", cpu.features},
                           {"weight_buffers", cpu.extra_buffers},
                           {"other_backends", cpu.other_backends}};
        return ex->Reply(JsonResponse(
            200, DumpJson(Json{{"status", "ok"}, {"model", model_id_}, {"cpu_backend", backend}})));
    }
    if (parts.size() == 1 && parts[0] == "metrics") {
        route("/metrics");
        if (method != "GET") {
            return wrong_method("GET");
        }
        HttpResponse r;
        r.content_type = "text/plain; version=0.0.4";
        r.body = metrics_.RenderPrometheus() + (rt != nullptr ? rt->MetricsPrometheus() : "");
        return ex->Reply(std::move(r));
    }

    std::string why;
    auto tenant = keys_.Authenticate(c.request.authorization, c.request.loopback, why);
    if (!tenant) {
        route("auth");
        const unsigned status = keys_.enabled() ? 401 : 403;
        HttpResponse r =
            ErrorResponse(status, status == 401 ? "unauthenticated" : "forbidden", why);
        if (status == 401) {
            r.headers.emplace_back("WWW-Authenticate", "Bearer");
        }
        return ex->Reply(std::move(r));
    }
    c.tenant = *tenant;
    if (parts.empty() || parts[0] != "v1") {
        route("unknown");
        return ex->Reply(ErrorResponse(404, "not_found", "no route " + c.request.path));
    }
    if (rt == nullptr || stopping_) {
        route("unavailable");
        return ex->Reply(
            ErrorResponse(503, "unavailable",
                          rt == nullptr ? "loading the model; retry shortly" : "shutting down"));
    }

    // /v1/...
    if (parts.size() == 2 && parts[1] == "queries") {
        route("/v1/queries");
        return method == "GET" ? RecentQueries(c) : wrong_method("GET");
    }
    if (parts.size() == 2 && parts[1] == "models") {
        route("/v1/models");
        return method == "GET" ? Models(c) : wrong_method("GET");
    }
    if (parts.size() == 2 && parts[1] == "completions") {
        route("/v1/completions");
        return method == "POST" ? Completions(c, false) : wrong_method("POST");
    }
    if (parts.size() == 3 && parts[1] == "chat" && parts[2] == "completions") {
        route("/v1/chat/completions");
        return method == "POST" ? Completions(c, true) : wrong_method("POST");
    }
    if (parts.size() >= 2 && parts[1] == "sessions") {
        if (parts.size() == 2) {
            route("/v1/sessions");
            if (method == "GET") {
                return ListSessions(c);
            }
            return method == "POST" ? CreateSession(c) : wrong_method("GET, POST");
        }
        const auto id = ParseId(parts[2]);
        auto unknown = [&] {
            ex->Reply(ErrorResponse(404, "not_found", "unknown session " + std::string(parts[2])));
        };
        if (parts.size() == 3) {
            route("/v1/sessions/{id}");
            if (method != "GET" && method != "DELETE") {
                return wrong_method("GET, DELETE");
            }
            if (!id) {
                return unknown();
            }
            return method == "GET" ? GetSession(c, *id) : DeleteSession(c, *id);
        }
        const std::string_view what = parts[3];
        if (parts.size() == 4 && what == "data") {
            route("/v1/sessions/{id}/data");
            if (method != "GET" && method != "POST") {
                return wrong_method("GET, POST");
            }
            if (!id) {
                return unknown();
            }
            return method == "POST" ? AppendData(c, *id) : ReadData(c, *id);
        }
        if (parts.size() == 4 && what == "query") {
            route("/v1/sessions/{id}/query");
            if (method != "POST") {
                return wrong_method("POST");
            }
            return id ? QuerySession(c, *id) : unknown();
        }
        if (parts.size() == 4 && what == "events") {
            route("/v1/sessions/{id}/events");
            if (method != "GET") {
                return wrong_method("GET");
            }
            return id ? Events(c, *id) : unknown();
        }
        if (parts.size() == 4 && what == "flash") {
            route("/v1/sessions/{id}/flash");
            if (method != "GET" && method != "POST") {
                return wrong_method("GET, POST");
            }
            if (!id) {
                return unknown();
            }
            return method == "POST" ? AddFlash(c, *id) : ListFlash(c, *id);
        }
        if (parts.size() == 5 && what == "flash") {
            route("/v1/sessions/{id}/flash/{flash_id}");
            if (method != "DELETE") {
                return wrong_method("DELETE");
            }
            const auto flash = ParseId(parts[4]);
            if (!id) {
                return unknown();
            }
            if (!flash) {
                return ex->Reply(ErrorResponse(404, "not_found",
                                               "unknown flash question " + std::string(parts[4])));
            }
            return RemoveFlash(c, *id, *flash);
        }
    }
    route("unknown");
    ex->Reply(ErrorResponse(404, "not_found", "no route " + c.request.path));
}

void Api::Models(Call& c) {
    Json m;
    m["id"] = model_id_;
    m["object"] = "model";
    m["created"] =
        std::chrono::duration_cast<std::chrono::seconds>(started_.time_since_epoch()).count();
    m["owned_by"] = "kvstream";
    Json body;
    body["object"] = "list";
    body["data"] = Json::array({m});
    c.ex->Reply(JsonResponse(200, DumpJson(body)));
}

RecordTemplate Api::TemplateOf(SessionId id) {
    std::lock_guard lock(mu_);
    auto it = templates_.find(id);
    return it == templates_.end() ? RecordTemplate{} : it->second;
}

}  // namespace kvs::http
