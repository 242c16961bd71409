#include "runtime/runtime.h"

#include <chrono>
#include <cstdio>
#include <map>
#include <vector>

namespace kvs {

// Everything below is touched only by the engine thread.
struct Runtime::State {
    struct PendingQuery {
        TenantId tenant = 0;
        Reply<Result<Answer>> reply;
    };

    struct AppendWait {
        SessionId session = 0;
        std::uint64_t version = 0;
        AppendResult result;
        Reply<Result<AppendResult>> reply;
    };

    std::unique_ptr<Engine> engine;
    EventHub* hub = nullptr;
    TenantLimits limits;
    bool stopping = false;
    std::map<TenantId, int> n_sessions;
    std::map<TenantId, int> n_queries;
    std::map<QueryId, PendingQuery> queries;
    std::vector<AppendWait> append_waits;

    // kNotFound for an unknown session and for another tenant's: the two are indistinguishable.
    Status Owns(TenantId tenant, SessionId id) const {
        auto info = engine->Info(id);
        if (!info.ok() || info->tenant != tenant) {
            return NotFound("unknown session " + std::to_string(id));
        }
        return Status::Ok();
    }

    Status Stopping() const {
        return stopping ? Status(StatusCode::kAborted, "the server is shutting down")
                        : Status::Ok();
    }

    // Keeps the reply of a queued query until it finishes, or answers a refusal at once.
    void Track(TenantId tenant, const Result<QueryId>& qid, Reply<Result<Answer>>& reply) {
        if (!qid.ok()) {
            reply(qid.status());
            return;
        }
        n_queries[tenant] += 1;
        queries.emplace(*qid, PendingQuery{tenant, std::move(reply)});
    }

    // Hands finished queries and ingested appends to their waiters.
    void Deliver() {
        for (FinishedQuery& f : engine->TakeFinished()) {
            auto it = queries.find(f.id);
            if (it != queries.end()) {
                n_queries[it->second.tenant] -= 1;
                auto reply = std::move(it->second.reply);
                queries.erase(it);
                reply(std::move(f.answer));
            }
        }
        for (const EngineEvent& e : engine->TakeEvents()) {
            if (e.kind == EngineEvent::Kind::kIngested) {
                ResolveAppendWaits(e.session, e.version, Status::Ok());
            }
            hub->Publish(e);
        }
    }

    void ResolveAppendWaits(SessionId session, std::uint64_t version, const Status& status) {
        std::erase_if(append_waits, [&](AppendWait& w) {
            if (w.session != session || w.version > version) {
                return false;
            }
            if (status.ok()) {
                w.reply(w.result);
            } else {
                w.reply(status);
            }
            return true;
        });
    }
};

Runtime::Runtime(const RuntimeOptions& options) : options_(options) {}

Result<std::unique_ptr<Runtime>> Runtime::Start(const RuntimeOptions& options) {
    std::unique_ptr<Runtime> rt(new Runtime(options));
    std::promise<Status> ready;
    std::future<Status> started = ready.get_future();
    rt->thread_ = std::thread(&Runtime::EngineThread, rt.get(), std::move(ready));
    Status st = started.get();
    if (!st.ok()) {
        rt->thread_.join();
        return st;
    }
    return rt;
}

Runtime::~Runtime() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
    }
}

void Runtime::EngineThread(std::promise<Status> ready) {
    State state;
    state.hub = &hub_;
    state.limits = options_.tenant_limits;
    auto engine = Engine::Open(options_.engine);
    if (!engine.ok()) {
        ready.set_value(engine.status());
        return;
    }
    state.engine = std::move(engine).value();
    metrics_ = &state.engine->metrics();
    board_ = &state.engine->flash_board();
    model_ = &state.engine->model();
    fast_hits_ = &metrics_->GetCounter("kvs_flash_hits_total", "");
    ready.set_value(Status::Ok());

    bool stalled = false;  // the last step found work but could not run any of it
    while (true) {
        std::deque<Command> batch;
        {
            std::unique_lock lock(mu_);
            auto can_go = [&] {
                return stopping_ || !commands_.empty() || (state.engine->HasWork() && !stalled);
            };
            if (stalled) {  // e.g. data for a session that cannot get a slot yet: poll, not spin
                cv_.wait_for(lock, std::chrono::milliseconds(10), can_go);
            } else {
                cv_.wait(lock, can_go);
            }
            batch.swap(commands_);
            state.stopping = stopping_;
        }
        for (Command& c : batch) {
            try {
                c(state);                        // while stopping, commands answer kAborted
            } catch (const std::exception& e) {  // a bug in a reply must not stop the engine
                std::fprintf(stderr, "kvstream: a command failed: %s\n", e.what());
            }
        }
        if (state.stopping) {
            break;
        }
        stalled = state.engine->HasWork() && state.engine->Step().n_tokens == 0;
        try {
            state.Deliver();
        } catch (const std::exception& e) {
            std::fprintf(stderr, "kvstream: delivering results failed: %s\n", e.what());
        }
    }
    // Shutdown: whatever still waits is told so.
    const Status aborted(StatusCode::kAborted, "the server is shutting down");
    for (auto& [id, q] : state.queries) {
        q.reply(aborted);
    }
    for (auto& w : state.append_waits) {
        w.reply(aborted);
    }
    hub_.CloseAll();
}

bool Runtime::Enqueue(Command command) {
    {
        std::lock_guard lock(mu_);
        if (stopping_ || commands_.size() >= options_.max_queued_commands) {
            return false;
        }
        commands_.push_back(std::move(command));
    }
    cv_.notify_one();
    return true;
}

template <typename T>
void Runtime::Submit(Reply<T> reply,
                     std::function<void(State&, Reply<T>&)> work,
                     T busy_value,
                     std::function<void()> settled) {
    auto shared = std::make_shared<Reply<T>>(std::move(reply));
    const bool queued = Enqueue([work = std::move(work), shared, settled](State& state) {
        if (Status st = state.Stopping(); !st.ok()) {
            (*shared)(T(st));
        } else {
            work(state, *shared);
        }
        if (settled) {
            settled();
        }
    });
    if (!queued) {
        (*shared)(std::move(busy_value));
        if (settled) {
            settled();
        }
    }
}

namespace {

Status QueueFull() {
    return Status(StatusCode::kResourceExhausted,
                  "the engine's command queue is full or stopping; retry shortly");
}

// The future form of a callback call: `call` receives the reply that fulfils the future.
template <typename T, typename Call>
std::future<T> ToFuture(Call call) {
    auto promise = std::make_shared<std::promise<T>>();
    std::future<T> future = promise->get_future();
    call([promise](T value) { promise->set_value(std::move(value)); });
    return future;
}

}  // namespace

void Runtime::CreateSession(TenantId tenant,
                            SessionOptions options,
                            Reply<Result<SessionId>> reply) {
    options.tenant = tenant;
    Submit<Result<SessionId>>(
        std::move(reply),
        [options](State& s, Reply<Result<SessionId>>& r) {
            if (s.n_sessions[options.tenant] >= s.limits.max_sessions) {
                r(Status(StatusCode::kResourceExhausted,
                         "tenant " + std::to_string(options.tenant) + " has its maximum of " +
                             std::to_string(s.limits.max_sessions) + " sessions"));
                return;
            }
            auto id = s.engine->CreateSession(options);
            if (id.ok()) {
                s.n_sessions[options.tenant] += 1;
            }
            r(std::move(id));
        },
        QueueFull());
}

void Runtime::CloseSession(TenantId tenant, SessionId id, Reply<Status> reply) {
    Submit<Status>(
        std::move(reply),
        [tenant, id](State& s, Reply<Status>& r) {
            Status st = s.Owns(tenant, id);
            if (st.ok()) {
                st = s.engine->CloseSession(id);
            }
            if (st.ok()) {
                s.n_sessions[tenant] -= 1;
                s.ResolveAppendWaits(id, UINT64_MAX,
                                     Status(StatusCode::kAborted, "the session was closed"));
                s.hub->CloseSession(id);
            }
            r(st);
        },
        QueueFull());
}

void Runtime::Info(TenantId tenant, SessionId id, Reply<Result<SessionInfo>> reply) {
    Submit<Result<SessionInfo>>(
        std::move(reply),
        [tenant, id](State& s, Reply<Result<SessionInfo>>& r) {
            const Status st = s.Owns(tenant, id);
            r(st.ok() ? s.engine->Info(id) : Result<SessionInfo>(st));
        },
        QueueFull());
}

void Runtime::ListSessions(TenantId tenant, Reply<Result<std::vector<SessionInfo>>> reply) {
    Submit<Result<std::vector<SessionInfo>>>(
        std::move(reply),
        [tenant](State& s, Reply<Result<std::vector<SessionInfo>>>& r) {
            std::vector<SessionInfo> out;
            for (SessionId id : s.engine->SessionIds()) {
                if (auto info = s.engine->Info(id); info.ok() && info->tenant == tenant) {
                    out.push_back(*info);
                }
            }
            r(std::move(out));
        },
        QueueFull());
}

void Runtime::Append(
    TenantId tenant, SessionId id, std::string text, bool wait, Reply<Result<AppendResult>> reply) {
    if (!board_->Owns(tenant, id)) {  // another tenant must not hold this session's hits back
        reply(NotFound("unknown session " + std::to_string(id)));
        return;
    }
    board_->BeginAppend(id);  // until accepted, cached answers wait for this data
    Submit<Result<AppendResult>>(
        std::move(reply),
        [tenant, id, wait, text = std::move(text)](State& s, Reply<Result<AppendResult>>& r) {
            const Status st = s.Owns(tenant, id);
            auto result = st.ok() ? s.engine->SubmitAppend(id, text) : Result<AppendResult>(st);
            if (!result.ok() || !wait) {
                r(std::move(result));
                return;
            }
            s.append_waits.push_back({id, result->version, *result, std::move(r)});
        },
        QueueFull(), [this, id] { board_->EndAppend(id); });
}

void Runtime::Query(TenantId tenant,
                    SessionId id,
                    QueryOptions options,
                    Reply<Result<Answer>> reply) {
    // A cached flash answer needs no engine step: answered here, on the caller's thread.
    if (FlashLookup hit = board_->Lookup(tenant, id, options);
        hit.outcome == FlashLookup::Outcome::kHit && ValidateQuery(options).ok()) {
        fast_hits_->Add();
        if (options.on_text) {
            options.on_text(hit.answer.text);
        }
        reply(std::move(hit.answer));
        return;
    }
    Submit<Result<Answer>>(
        std::move(reply),
        [tenant, id, options = std::move(options)](State& s, Reply<Result<Answer>>& r) {
            Status st = s.Owns(tenant, id);
            if (st.ok() && s.n_queries[tenant] >= s.limits.max_queued_queries) {
                st = Status(StatusCode::kResourceExhausted,
                            "tenant " + std::to_string(tenant) + " has " +
                                std::to_string(s.limits.max_queued_queries) +
                                " queries queued or running; retry shortly");
            }
            s.Track(tenant, st.ok() ? s.engine->SubmitQuery(id, options) : Result<QueryId>(st), r);
        },
        QueueFull());
}

void Runtime::Stateless(TenantId tenant,
                        std::string prompt,
                        QueryOptions options,
                        bool parse_special,
                        Reply<Result<Answer>> reply) {
    Submit<Result<Answer>>(
        std::move(reply),
        [tenant, parse_special, prompt = std::move(prompt), options = std::move(options)](
            State& s, Reply<Result<Answer>>& r) {
            if (s.n_queries[tenant] >= s.limits.max_queued_queries) {
                r(Status(StatusCode::kResourceExhausted,
                         "too many queued queries for this tenant; retry shortly"));
                return;
            }
            auto context = s.engine->TokenizeContext(prompt, parse_special);
            s.Track(tenant,
                    context.ok() ? s.engine->SubmitStateless(std::move(context).value(), options)
                                 : Result<QueryId>(context.status()),
                    r);
        },
        QueueFull());
}

void Runtime::AddFlash(TenantId tenant,
                       SessionId id,
                       FlashOptions options,
                       Reply<Result<FlashId>> reply) {
    Submit<Result<FlashId>>(
        std::move(reply),
        [tenant, id, options = std::move(options)](State& s, Reply<Result<FlashId>>& r) {
            const Status st = s.Owns(tenant, id);
            r(st.ok() ? s.engine->AddFlash(id, options) : Result<FlashId>(st));
        },
        QueueFull());
}

void Runtime::RemoveFlash(TenantId tenant, SessionId id, FlashId flash, Reply<Status> reply) {
    Submit<Status>(
        std::move(reply),
        [tenant, id, flash](State& s, Reply<Status>& r) {
            const Status st = s.Owns(tenant, id);
            r(st.ok() ? s.engine->RemoveFlash(id, flash) : st);
        },
        QueueFull());
}

// ---- Future forms -----------------------------------------------------------------------------

std::future<Result<SessionId>> Runtime::CreateSession(TenantId tenant, SessionOptions options) {
    return ToFuture<Result<SessionId>>(
        [&](auto reply) { CreateSession(tenant, std::move(options), std::move(reply)); });
}

std::future<Status> Runtime::CloseSession(TenantId tenant, SessionId id) {
    return ToFuture<Status>([&](auto reply) { CloseSession(tenant, id, std::move(reply)); });
}

std::future<Result<SessionInfo>> Runtime::Info(TenantId tenant, SessionId id) {
    return ToFuture<Result<SessionInfo>>([&](auto reply) { Info(tenant, id, std::move(reply)); });
}

std::future<Result<AppendResult>> Runtime::Append(TenantId tenant, SessionId id, std::string text) {
    return ToFuture<Result<AppendResult>>(
        [&](auto reply) { Append(tenant, id, std::move(text), false, std::move(reply)); });
}

std::future<Result<AppendResult>> Runtime::AppendAndWait(TenantId tenant,
                                                         SessionId id,
                                                         std::string text) {
    return ToFuture<Result<AppendResult>>(
        [&](auto reply) { Append(tenant, id, std::move(text), true, std::move(reply)); });
}

std::future<Result<Answer>> Runtime::Query(TenantId tenant, SessionId id, QueryOptions options) {
    return ToFuture<Result<Answer>>(
        [&](auto reply) { Query(tenant, id, std::move(options), std::move(reply)); });
}

std::future<Result<Answer>> Runtime::Stateless(TenantId tenant,
                                               std::string prompt,
                                               QueryOptions options) {
    return ToFuture<Result<Answer>>([&](auto reply) {
        Stateless(tenant, std::move(prompt), std::move(options), false, std::move(reply));
    });
}

std::future<Result<FlashId>> Runtime::AddFlash(TenantId tenant,
                                               SessionId id,
                                               FlashOptions options) {
    return ToFuture<Result<FlashId>>(
        [&](auto reply) { AddFlash(tenant, id, std::move(options), std::move(reply)); });
}

std::future<Status> Runtime::RemoveFlash(TenantId tenant, SessionId id, FlashId flash) {
    return ToFuture<Status>([&](auto reply) { RemoveFlash(tenant, id, flash, std::move(reply)); });
}

Result<std::vector<FlashInfo>> Runtime::ListFlash(TenantId tenant, SessionId id) const {
    return board_->List(tenant, id);
}

Result<std::shared_ptr<Subscription>> Runtime::Subscribe(TenantId tenant,
                                                         SessionId id,
                                                         const SubscribeOptions& options) {
    if (options.capacity < 1) {
        return InvalidArgument("a subscription buffers at least one event");
    }
    const auto unknown = [id] { return NotFound("unknown session " + std::to_string(id)); };
    if (!board_->Owns(tenant, id)) {
        return unknown();
    }
    auto sub = hub_.Subscribe(id, options);
    if (!board_->Owns(tenant, id)) {  // closed meanwhile: it would never hear kClosed
        return unknown();
    }
    return sub;
}

std::string Runtime::MetricsTable() {
    return metrics_->RenderTable();
}

std::string Runtime::MetricsPrometheus() {
    return metrics_->RenderPrometheus();
}

}  // namespace kvs
