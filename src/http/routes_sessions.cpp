// The session routes: create, inspect, delete, query (plain or streamed), flash questions, and
// the event stream. Appends and the data log: routes_data.cpp.

#include "http/api_call.h"

#include <atomic>
#include <charconv>

namespace kvs::http {
namespace {

std::string IdText(std::uint64_t id) {
    return std::to_string(id);
}

Json FlashJson(const FlashInfo& f) {
    Json j;
    j["flash_id"] = IdText(f.id);
    j["query"] = f.options.question;
    j["max_tokens"] = f.options.max_tokens;
    j["current"] = f.current();
    if (f.result) {
        j["answer"] = f.result->answer;
        j["version"] = f.result->version;
        j["confidence"] = f.result->confidence;
        j["eval_ms"] = f.result->eval_ms;
    } else {
        j["answer"] = nullptr;
        j["version"] = nullptr;
    }
    return j;
}

Json SessionJson(const SessionInfo& i, const std::vector<FlashInfo>& flash) {
    Json j;
    j["id"] = IdText(i.id);
    j["tokens"] = i.n_tokens;
    j["prefix_tokens"] = i.n_prefix_tokens;
    j["version"] = i.version;
    j["accepted_version"] = i.accepted_version;
    j["pending_tokens"] = i.n_pending_tokens;
    j["max_context"] = i.n_ctx;
    j["room"] = i.room;
    j["resident"] = i.resident;
    j["dropped_tokens"] = i.n_dropped_tokens;
    j["flash"] = Json::array();
    for (const FlashInfo& f : flash) {
        j["flash"].push_back(FlashJson(f));
    }
    return j;
}

// A flash question's fields: {query, max_tokens?, temperature?, top_p?, top_k?, seed?}.
std::optional<FlashOptions> ReadFlash(const Api::Call& c, const Json& f) {
    if (!f.is_object()) {
        c.ex->Reply(ErrorResponse(Status(StatusCode::kInvalidArgument,
                                         "a flash question must be an object {query, ...}")));
        return std::nullopt;
    }
    if (c.Failed(RejectUnknownFields(
            f, {"query", "max_tokens", "temperature", "top_p", "top_k", "seed"}))) {
        return std::nullopt;
    }
    FlashOptions o;
    std::int64_t max_tokens = o.max_tokens;
    if (!Read(c, OptString(f, "query", 8192), o.question) ||
        !Read(c, OptInt(f, "max_tokens", 1, kMaxFlashTokens), max_tokens) ||
        !ReadSampling(c, f, o.sampling)) {
        return std::nullopt;
    }
    if (o.question.empty()) {
        c.ex->Reply(ErrorResponse(InvalidArgument("field 'query' is required")));
        return std::nullopt;
    }
    o.max_tokens = static_cast<int>(max_tokens);
    return o;
}

std::string EventJson(const EngineEvent& e) {
    Json j;
    switch (e.kind) {
        case EngineEvent::Kind::kFlash:
            j["flash_id"] = IdText(e.flash.id);
            j["query"] = e.flash.question;
            j["answer"] = e.flash.answer;
            j["confidence"] = e.flash.confidence;
            j["version"] = e.version;
            j["changed"] = e.flash.changed;
            j["eval_ms"] = e.ms;
            break;
        case EngineEvent::Kind::kMissed:
            j["count"] = e.n_missed;
            break;
        case EngineEvent::Kind::kParked:
        case EngineEvent::Kind::kRestored:
            j["version"] = e.version;
            j["ms"] = e.ms;
            break;
        default:
            j["version"] = e.version;
    }
    j["session"] = IdText(e.session);
    return DumpJson(j);
}

// A registered question's own max_tokens, so its cached answer can serve; else 64.
int RegisteredMaxTokens(Runtime& rt, TenantId tenant, SessionId id, std::string_view question) {
    if (auto flash = rt.ListFlash(tenant, id); flash.ok()) {
        for (const FlashInfo& f : *flash) {
            if (TrimQuestion(f.options.question) == TrimQuestion(question)) {
                return f.options.max_tokens;
            }
        }
    }
    return 64;
}

}  // namespace

bool ReadSampling(const Api::Call& c, const Json& body, SamplingParams& s) {
    double temperature = s.temperature;
    double top_p = s.top_p;
    std::int64_t top_k = s.top_k;
    std::int64_t seed = s.seed;
    if (!Read(c, OptNumber(body, "temperature", 0, 2), temperature) ||
        !Read(c, OptNumber(body, "top_p", 0, 1), top_p) ||
        !Read(c, OptInt(body, "top_k", 0, 1 << 20), top_k) ||
        !Read(c, OptInt(body, "seed", 0, 4294967294), seed)) {  // 2^32-1: llama.cpp's "random"
        return false;
    }
    if (top_p <= 0) {
        c.ex->Reply(ErrorResponse(InvalidArgument("field 'top_p' must be a number in (0, 1]")));
        return false;
    }
    s.temperature = static_cast<float>(temperature);
    s.top_p = static_cast<float>(top_p);
    s.top_k = static_cast<int>(top_k);
    s.seed = static_cast<std::uint32_t>(seed);
    return true;
}

Json AnswerJson(const Answer& a, std::chrono::steady_clock::time_point received) {
    Json j;
    j["answer"] = a.text;
    j["tokens"] = a.tokens.size();
    j["version"] = a.version;
    j["cached"] = a.cached;
    j["joined"] = a.joined;
    if (a.cached || a.joined) {
        j["flash_id"] = IdText(a.flash_id);
    }
    if (a.cached) {
        j["cached_age_ms"] = a.cached_age_ms;
    }
    j["confidence"] = a.confidence;
    j["stop_reason"] = StopReasonName(a.stop_reason);
    const QueryTimings& t = a.timings;
    j["timings"] = {{"context_tokens", t.n_context_tokens},
                    {"prompt_tokens", t.n_prompt_tokens},
                    {"answer_tokens", t.n_answer_tokens},
                    {"wait_ms", t.wait_ms},
                    {"queued_ms", t.queued_ms},
                    {"prefill_ms", t.prefill_ms},
                    {"decode_ms", t.decode_ms},
                    {"total_ms", t.total_ms},
                    {"drafted_tokens", t.n_drafted_tokens},
                    {"accepted_tokens", t.n_accepted_tokens}};
    if (received != std::chrono::steady_clock::time_point{}) {
        j["timings"]["server_ms"] =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - received)
                .count();
    }
    return j;
}

void Api::CreateSession(Call& c) {
    auto body = c.Body();
    if (!body || c.Failed(RejectUnknownFields(
                     *body, {"prefix", "flash", "max_context", "on_full", "template"}))) {
        return;
    }
    SessionOptions o;
    std::string on_full = "reject";
    std::int64_t max_context = 0;
    if (!Read(c, OptString(*body, "prefix", limits_.max_text_bytes), o.prefix) ||
        !Read(c, OptString(*body, "on_full", 16), on_full) ||
        !Read(c, OptInt(*body, "max_context", 1, 1 << 24), max_context)) {
        return;
    }
    if (on_full != "reject" && on_full != "roll") {
        return c.ex->Reply(
            ErrorResponse(InvalidArgument("field 'on_full' must be \"reject\" or \"roll\"")));
    }
    o.on_full = on_full == "roll" ? OnFull::kRoll : OnFull::kReject;
    o.max_context = static_cast<int>(max_context);
    RecordTemplate tmpl;
    if (const Json* t = FindField(*body, "template")) {
        auto parsed = ParseRecordTemplate(*t);
        if (c.Failed(parsed.status())) {
            return;
        }
        tmpl = *parsed;
        o.settings = DumpJson(Json{{"template", RecordTemplateJson(tmpl)}});  // stored with it
    }
    if (const Json* flash = FindField(*body, "flash")) {
        if (!flash->is_array()) {
            return c.ex->Reply(
                ErrorResponse(InvalidArgument("field 'flash' must be an array of questions")));
        }
        for (const Json& f : *flash) {
            auto fo = ReadFlash(c, f);
            if (!fo) {
                return;
            }
            o.flash.push_back(std::move(*fo));
        }
    }
    c.rt->CreateSession(
        c.tenant.id, std::move(o),
        OnIo(c.ex, [ex = c.ex, rt = c.rt, tenant = c.tenant.id, api = this,
                    tmpl](Result<SessionId> id) {
            if (!id.ok()) {
                return ex->Reply(ErrorResponse(id.status()));
            }
            {
                std::lock_guard lock(api->mu_);
                api->templates_[*id] = tmpl;
            }
            rt->Info(
                tenant, *id, OnIo(ex, [ex, rt, tenant, id = *id](Result<SessionInfo> info) {
                    if (!info.ok()) {  // created all the same: say so, with its id
                        return ex->Reply(JsonResponse(201, DumpJson(Json{{"id", IdText(id)}})));
                    }
                    auto flash = rt->ListFlash(tenant, id);
                    ex->Reply(JsonResponse(
                        201, DumpJson(SessionJson(
                                 *info, flash.ok() ? *flash : std::vector<FlashInfo>{}))));
                }));
        }));
}

void Api::ListSessions(Call& c) {
    c.rt->ListSessions(c.tenant.id, OnIo(c.ex, [ex = c.ex, rt = c.rt, tenant = c.tenant.id](
                                                   Result<std::vector<SessionInfo>> sessions) {
                           if (!sessions.ok()) {
                               return ex->Reply(ErrorResponse(sessions.status()));
                           }
                           Json j;
                           j["sessions"] = Json::array();
                           for (const SessionInfo& i : *sessions) {
                               auto flash = rt->ListFlash(tenant, i.id);
                               j["sessions"].push_back(
                                   SessionJson(i, flash.ok() ? *flash : std::vector<FlashInfo>{}));
                           }
                           ex->Reply(JsonResponse(200, DumpJson(j)));
                       }));
}

void Api::GetSession(Call& c, SessionId id) {
    c.rt->Info(
        c.tenant.id, id,
        OnIo(c.ex, [ex = c.ex, rt = c.rt, tenant = c.tenant.id, id](Result<SessionInfo> info) {
            if (!info.ok()) {
                return ex->Reply(ErrorResponse(info.status()));
            }
            auto flash = rt->ListFlash(tenant, id);
            ex->Reply(JsonResponse(
                200, DumpJson(SessionJson(*info, flash.ok() ? *flash : std::vector<FlashInfo>{}))));
        }));
}

void Api::DeleteSession(Call& c, SessionId id) {
    c.rt->CloseSession(c.tenant.id, id, OnIo(c.ex, [ex = c.ex, api = this, id](const Status& st) {
                           if (!st.ok()) {
                               return ex->Reply(ErrorResponse(st));
                           }
                           {
                               std::lock_guard lock(api->mu_);
                               api->templates_.erase(id);
                           }
                           HttpResponse r;
                           r.status = 204;
                           r.content_type.clear();
                           ex->Reply(std::move(r));
                       }));
}

void Api::QuerySession(Call& c, SessionId id) {
    auto body = c.Body();
    if (!body ||
        c.Failed(RejectUnknownFields(
            *body, {"query", "max_tokens", "temperature", "top_p", "top_k", "seed", "stop",
                    "stream", "max_staleness", "max_staleness_ms", "cached", "ignore_eos"}))) {
        return;
    }
    QueryOptions q;
    q.received = std::chrono::steady_clock::now();
    std::int64_t max_tokens = -1;
    std::int64_t max_staleness = 0;
    bool stream = false;
    if (!Read(c, OptString(*body, "query", limits_.max_query_bytes), q.question) ||
        !Read(c, OptInt(*body, "max_tokens", 1, limits_.max_tokens), max_tokens) ||
        !ReadSampling(c, *body, q.sampling) ||
        !Read(c, OptStringOrList(*body, "stop", kMaxStopStrings, 256), q.stop) ||
        !Read(c, OptBool(*body, "stream"), stream) ||
        !Read(c, OptInt(*body, "max_staleness", 0, INT64_MAX), max_staleness) ||
        !Read(c, OptNumber(*body, "max_staleness_ms", 0, 1e12), q.max_staleness_ms) ||
        !Read(c, OptBool(*body, "cached"), q.allow_cached) ||
        !Read(c, OptBool(*body, "ignore_eos"), q.ignore_eog)) {
        return;
    }
    if (q.question.empty()) {
        return c.ex->Reply(ErrorResponse(InvalidArgument("field 'query' is required")));
    }
    q.max_staleness = static_cast<std::uint64_t>(max_staleness);
    q.max_tokens = max_tokens < 0 ? RegisteredMaxTokens(*c.rt, c.tenant.id, id, q.question)
                                  : static_cast<int>(max_tokens);
    // Each answer is recorded for the dashboard's chart (GET /v1/queries).
    auto record = [log = query_log_, tenant = c.tenant.id, id](const Answer& a) {
        const QueryTimings& t = a.timings;
        log->Record(tenant,
                    {id, t.n_context_tokens, t.n_prompt_tokens, t.n_answer_tokens, t.queued_ms,
                     a.cached || a.joined ? 0.0 : t.total_ms, a.cached, UnixMillis()});
    };
    const auto received = q.received;
    if (!stream) {
        return c.rt->Query(c.tenant.id, id, std::move(q),
                           OnIo(c.ex, [ex = c.ex, record, received](Result<Answer> a) {
                               if (a.ok()) {
                                   record(*a);
                               }
                               ex->Reply(a.ok()
                                             ? JsonResponse(200, DumpJson(AnswerJson(*a, received)))
                                             : ErrorResponse(a.status()));
                           }));
    }
    if (!c.rt->Owns(c.tenant.id, id)) {  // a plain 404 before the stream starts
        return c.ex->Reply(ErrorResponse(NotFound("unknown session " + std::to_string(id))));
    }
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    c.ex->BeginStream();
    c.ex->OnClose([cancel] { cancel->store(true); });
    q.cancel = cancel;
    q.on_text = [ex = c.ex](std::string_view piece) {  // on the engine thread: hand it over
        ex->Post([ex, text = std::string(piece)] {
            ex->Write(SseEvent("token", DumpJson(Json{{"text", text}})));
        });
    };
    c.rt->Query(c.tenant.id, id, std::move(q),
                OnIo(c.ex, [ex = c.ex, record, received](Result<Answer> a) {
                    if (a.ok()) {
                        record(*a);
                    }
                    ex->Write(a.ok() ? SseEvent("done", DumpJson(AnswerJson(*a, received)))
                                     : SseEvent("error", ErrorJson(a.status())));
                    ex->End();
                }));
}

void Api::RecentQueries(Call& c) {
    Json list = Json::array();
    for (const QueryRecord& r : query_log_->Recent(c.tenant.id)) {
        list.push_back({{"session", IdText(r.session)},
                        {"context_tokens", r.context_tokens},
                        {"prompt_tokens", r.prompt_tokens},
                        {"answer_tokens", r.answer_tokens},
                        {"queued_ms", r.queued_ms},
                        {"total_ms", r.total_ms},
                        {"cached", r.cached},
                        {"at_ms", r.at_ms}});
    }
    c.ex->Reply(JsonResponse(200, DumpJson(Json{{"queries", list}})));
}

void Api::AddFlash(Call& c, SessionId id) {
    auto body = c.Body();
    if (!body) {
        return;
    }
    auto o = ReadFlash(c, *body);
    if (!o) {
        return;
    }
    c.rt->AddFlash(c.tenant.id, id, std::move(*o), OnIo(c.ex, [ex = c.ex](Result<FlashId> f) {
                       ex->Reply(f.ok()
                                     ? JsonResponse(201, DumpJson(Json{{"flash_id", IdText(*f)}}))
                                     : ErrorResponse(f.status()));
                   }));
}

void Api::ListFlash(Call& c, SessionId id) {
    auto flash = c.rt->ListFlash(c.tenant.id, id);
    if (c.Failed(flash.status())) {
        return;
    }
    Json j;
    j["flash"] = Json::array();
    for (const FlashInfo& f : *flash) {
        j["flash"].push_back(FlashJson(f));
    }
    c.ex->Reply(JsonResponse(200, DumpJson(j)));
}

void Api::RemoveFlash(Call& c, SessionId id, FlashId flash) {
    c.rt->RemoveFlash(c.tenant.id, id, flash, OnIo(c.ex, [ex = c.ex](const Status& st) {
                          if (!st.ok()) {
                              return ex->Reply(ErrorResponse(st));
                          }
                          HttpResponse r;
                          r.status = 204;
                          r.content_type.clear();
                          ex->Reply(std::move(r));
                      }));
}

void Api::Events(Call& c, SessionId id) {
    const auto& every = c.request.query["every"];
    SubscribeOptions o;
    o.every_evaluation = every == "1" || every == "true";
    o.capacity = limits_.event_buffer;
    auto sub = c.rt->Subscribe(c.tenant.id, id, o);
    if (c.Failed(sub.status())) {
        return;
    }
    std::shared_ptr<Subscription> s = *sub;
    c.ex->BeginStream();
    ++event_streams_;
    c.ex->OnClose([api = this] { --api->event_streams_; });
    c.ex->Write(": subscribed to session " + IdText(id) + "\n\n");
    std::weak_ptr<Exchange> weak = c.ex;
    s->SetNotifier([weak] {
        if (auto ex = weak.lock()) {
            ex->Wake();
        }
    });
    // The connection pulls while it can write; a slow client leaves events in the bounded
    // subscription, which drops the oldest and says how many.
    c.ex->Pull([s, ex = c.ex.get(), ended = false]() mutable -> std::optional<std::string> {
        if (ended) {
            return std::nullopt;
        }
        auto e = s->TryNext();
        if (!e) {
            return std::nullopt;
        }
        if (e->kind == EngineEvent::Kind::kClosed) {
            ended = true;
            ex->End();
        }
        return SseEvent(EngineEventName(e->kind), EventJson(*e));
    });
}

}  // namespace kvs::http
