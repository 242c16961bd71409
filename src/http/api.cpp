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
        inner_->Reply(std::move(r));
        // Counted out on the connection's strand after the response's write has begun: a
        // server that stops once nothing is in flight then finishes that write before closing
        // (Connection::Close), instead of cutting an answer already on its way.
        inner_->Post([self = shared_from_this()] { --self->in_flight_; });
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

    void Post(std::function<void()> work) override { inner_->Post(std::move(work)); }

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

// ---- The route table ------------------------------------------------------------------------

struct Api::PathIds {
    SessionId session = 0;  // {id}
    FlashId flash = 0;      // {flash_id}
};

// A pattern is literal segments and placeholders ({id}: a session id, {flash_id}: a flash
// question id). The pattern is also the route's name in the metrics.
struct Api::Route {
    std::string_view method;
    std::string_view pattern;
    bool is_public;  // served before authentication and without a runtime check
    void (*run)(Api& api, Call& c, const PathIds& ids);
};

const std::vector<Api::Route>& Api::Routes() {
    using P = const PathIds&;
    // For one pattern, the methods in the order the Allow header lists them.
    static const std::vector<Route> kRoutes = {
        {"GET", "/health", true, [](Api& a, Call& c, P) { a.Health(c); }},
        {"GET", "/metrics", true, [](Api& a, Call& c, P) { a.MetricsText(c); }},
        {"GET", "/v1/queries", false, [](Api& a, Call& c, P) { a.RecentQueries(c); }},
        {"GET", "/v1/models", false, [](Api& a, Call& c, P) { a.Models(c); }},
        {"POST", "/v1/completions", false, [](Api& a, Call& c, P) { a.Completions(c, false); }},
        {"POST", "/v1/chat/completions", false, [](Api& a, Call& c, P) { a.Completions(c, true); }},
        {"GET", "/v1/sessions", false, [](Api& a, Call& c, P) { a.ListSessions(c); }},
        {"POST", "/v1/sessions", false, [](Api& a, Call& c, P) { a.CreateSession(c); }},
        {"GET", "/v1/sessions/{id}", false,
         [](Api& a, Call& c, P ids) { a.GetSession(c, ids.session); }},
        {"DELETE", "/v1/sessions/{id}", false,
         [](Api& a, Call& c, P ids) { a.DeleteSession(c, ids.session); }},
        {"GET", "/v1/sessions/{id}/data", false,
         [](Api& a, Call& c, P ids) { a.ReadData(c, ids.session); }},
        {"POST", "/v1/sessions/{id}/data", false,
         [](Api& a, Call& c, P ids) { a.AppendData(c, ids.session); }},
        {"POST", "/v1/sessions/{id}/query", false,
         [](Api& a, Call& c, P ids) { a.QuerySession(c, ids.session); }},
        {"GET", "/v1/sessions/{id}/events", false,
         [](Api& a, Call& c, P ids) { a.Events(c, ids.session); }},
        {"GET", "/v1/sessions/{id}/flash", false,
         [](Api& a, Call& c, P ids) { a.ListFlash(c, ids.session); }},
        {"POST", "/v1/sessions/{id}/flash", false,
         [](Api& a, Call& c, P ids) { a.AddFlash(c, ids.session); }},
        {"DELETE", "/v1/sessions/{id}/flash/{flash_id}", false,
         [](Api& a, Call& c, P ids) { a.RemoveFlash(c, ids.session, ids.flash); }},
    };
    return kRoutes;
}

namespace {

// Whether `parts` (the path's segments) fit `pattern`; a placeholder fits any one segment.
bool PathFits(std::string_view pattern, const std::vector<std::string_view>& parts) {
    const std::vector<std::string_view> want = SplitPath(pattern);
    if (want.size() != parts.size()) {
        return false;
    }
    for (std::size_t i = 0; i < want.size(); ++i) {
        if (!want[i].starts_with('{') && want[i] != parts[i]) {
            return false;
        }
    }
    return true;
}

}  // namespace

bool Api::Dispatch(Call& c, bool is_public) {
    const auto parts = SplitPath(c.request.path);
    const Route* found = nullptr;
    std::string_view name;  // the route's name in the metrics: its pattern
    std::string allowed;    // the methods of the path, for a 405
    for (const Route& r : Routes()) {
        if (r.is_public != is_public || !PathFits(r.pattern, parts)) {
            continue;
        }
        name = r.pattern;
        allowed += (allowed.empty() ? "" : ", ") + std::string(r.method);
        if (r.method == c.request.method && found == nullptr) {
            found = &r;
        }
    }
    if (allowed.empty()) {
        return false;
    }
    static_cast<MeteredExchange*>(c.ex.get())->SetRoute(std::string(name));  // Handle made it
    if (found == nullptr) {
        HttpResponse r = ErrorResponse(405, "method_not_allowed",
                                       c.request.method + " is not allowed here; use " + allowed);
        r.headers.emplace_back("Allow", allowed);
        c.ex->Reply(std::move(r));
        return true;
    }
    // The ids, left to right; the first malformed one is a 404.
    PathIds ids;
    const std::vector<std::string_view> want = SplitPath(found->pattern);
    for (std::size_t i = 0; i < want.size(); ++i) {
        if (!want[i].starts_with('{')) {
            continue;
        }
        const auto id = ParseId(parts[i]);
        const bool session = want[i] == "{id}";
        if (!id) {
            c.ex->Reply(ErrorResponse(404, "not_found",
                                      (session ? "unknown session " : "unknown flash question ") +
                                          std::string(parts[i])));
            return true;
        }
        (session ? ids.session : ids.flash) = *id;
    }
    found->run(*this, c, ids);
    return true;
}

bool Api::ServeDashboard(Call& c) {
    const DashboardAsset* asset = FindDashboardAsset(c.request.path);
    const auto parts = SplitPath(c.request.path);
    if (asset == nullptr && (parts.empty() || parts[0] != "dashboard")) {
        return false;
    }
    static_cast<MeteredExchange*>(c.ex.get())->SetRoute("dashboard");
    if (asset == nullptr) {
        c.ex->Reply(ErrorResponse(404, "not_found", "no route " + c.request.path));
        return true;
    }
    if (c.request.method != "GET" && c.request.method != "HEAD") {
        HttpResponse r = ErrorResponse(405, "method_not_allowed",
                                       c.request.method + " is not allowed here; use GET");
        r.headers.emplace_back("Allow", "GET");
        c.ex->Reply(std::move(r));
        return true;
    }
    HttpResponse r;
    r.content_type = std::string(asset->content_type);
    r.body = std::string(asset->body);
    r.headers.emplace_back("Cache-Control", "no-cache");
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'self'; style-src 'self'; script-src 'self'");
    c.ex->Reply(std::move(r));
    return true;
}

// ---- Dispatch -------------------------------------------------------------------------------

void Api::Handle(HttpRequest request, ExchangePtr raw) {
    auto ex = std::make_shared<MeteredExchange>(std::move(raw), metrics_, in_flight_);
    Runtime* rt = runtime_.load();
    Call c{std::move(request), ex, {}, rt, this};

    // 1. Unauthenticated: the dashboard's files (the page asks for a key itself), liveness,
    //    metrics.
    if (ServeDashboard(c) || Dispatch(c, /*is_public=*/true)) {
        return;
    }
    // 2. Authentication.
    std::string why;
    auto tenant = keys_.Authenticate(c.request.authorization, c.request.loopback, why);
    if (!tenant) {
        ex->SetRoute("auth");
        const unsigned status = keys_.enabled() ? 401 : 403;
        HttpResponse r =
            ErrorResponse(status, status == 401 ? "unauthenticated" : "forbidden", why);
        if (status == 401) {
            r.headers.emplace_back("WWW-Authenticate", "Bearer");
        }
        return ex->Reply(std::move(r));
    }
    c.tenant = *tenant;
    // 3. Only /v1/ from here on, and only with a runtime that is serving.
    const auto parts = SplitPath(c.request.path);
    if (parts.empty() || parts[0] != "v1") {
        ex->SetRoute("unknown");
        return ex->Reply(ErrorResponse(404, "not_found", "no route " + c.request.path));
    }
    if (rt == nullptr || stopping_) {
        ex->SetRoute("unavailable");
        return ex->Reply(
            ErrorResponse(503, "unavailable",
                          rt == nullptr ? "loading the model; retry shortly" : "shutting down"));
    }
    // 4. The route table.
    if (!Dispatch(c, /*is_public=*/false)) {
        ex->SetRoute("unknown");
        ex->Reply(ErrorResponse(404, "not_found", "no route " + c.request.path));
    }
}

void Api::Health(Call& c) {
    if (c.rt == nullptr || stopping_) {
        return c.ex->Reply(ErrorResponse(503, "unavailable",
                                         c.rt == nullptr ? "loading the model" : "shutting down"));
    }
    const CpuBackendInfo& cpu = c.rt->cpu_backend();
    const Json backend{{"variant", cpu.variant},
                       {"features", cpu.features},
                       {"weight_buffers", cpu.extra_buffers},
                       {"other_backends", cpu.other_backends}};
    c.ex->Reply(JsonResponse(
        200, DumpJson(Json{{"status", "ok"}, {"model", model_id_}, {"cpu_backend", backend}})));
}

void Api::MetricsText(Call& c) {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = metrics_.RenderPrometheus() + (c.rt != nullptr ? c.rt->MetricsPrometheus() : "");
    c.ex->Reply(std::move(r));
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
