#include "runtime/runtime.h"

#include "common/guard.h"
#include "common/thread_role.h"
#include "runtime/runtime_state.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <vector>

namespace kvs {

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
    SetThreadRole(ThreadRole::kEngine);
    State state;
    if (Status st = OpenEngine(state); !st.ok()) {
        ready.set_value(st);
        return;
    }
    ready.set_value(Status::Ok());
    ServeUntilStopped(state);
    if (store_ != nullptr) {
        FinishDurable(state);
    }
    {
        std::lock_guard lock(mu_);
        engine_done_ = true;
    }
    state.AbortWaiters();  // shutdown: whatever still waits is told so
    hub_.CloseAll();
}

Status Runtime::OpenEngine(State& state) {
    state.runtime = this;
    state.hub = &hub_;
    state.limits = options_.tenant_limits;
    EngineOptions engine_options = options_.engine;
    const bool durable = !options_.durable.data_dir.empty();
    if (durable) {
        KV_RETURN_IF_ERROR(OpenDurable(state, engine_options));
    }
    auto engine = Engine::Open(engine_options);
    if (!engine.ok()) {
        return engine.status();
    }
    state.engine = std::move(engine).value();
    if (durable) {
        StartSnapshots(state);
        KV_RETURN_IF_ERROR(RestoreSessions(state));
        store_ = state.store.get();
    }
    metrics_ = &state.engine->metrics();
    board_ = &state.engine->flash_board();
    model_ = &state.engine->model();
    fast_hits_ = &metrics_->GetCounter("kvs_flash_hits_total", "");
    return Status::Ok();
}

void Runtime::ServeUntilStopped(State& state) {
    const bool durable = store_ != nullptr;
    bool stalled = false;  // the last step found work but could not run any of it
    while (true) {
        // HasWork() reads the engine's state: asked here, on the engine thread, not under mu_.
        const bool has_work = state.engine->HasWork() && !stalled;
        std::deque<Command> batch;
        {
            std::unique_lock lock(mu_);
            auto can_go = [&] { return stopping_ || !commands_.empty() || has_work; };
            if (stalled) {  // e.g. data for a session that cannot get a slot yet: poll, not spin
                cv_.wait_for(lock, std::chrono::milliseconds(10), can_go);
            } else if (durable) {  // idle time is when due snapshots are taken
                cv_.wait_for(lock, std::chrono::milliseconds(250), can_go);
            } else {
                cv_.wait(lock, can_go);
            }
            batch.swap(commands_);
            state.stopping = stopping_;
        }
        RunCommands(state, std::move(batch), "a command");  // while stopping: kAborted
        if (state.stopping) {
            return;
        }
        // A step that throws is reported and counted as stalled: the loop polls, never spins.
        stalled = state.engine->HasWork();
        Guarded("an engine step", [&] { stalled = stalled && state.engine->Step().n_tokens == 0; });
        Guarded("delivering results", [&] { state.Deliver(); });
        if (durable) {
            WriteParkCaptures(state);
            SnapshotSessions(state, /*all=*/false);
        }
    }
}

std::deque<Runtime::Command> Runtime::TakeCommands() {
    std::lock_guard lock(mu_);
    return std::exchange(commands_, {});
}

void Runtime::RunCommands(State& state, std::deque<Command> batch, const char* what) {
    for (Command& c : batch) {
        Guarded(what, [&] { c(state); });
    }
}

bool Runtime::EnqueueAlways(Command command) {
    {
        std::lock_guard lock(mu_);
        if (engine_done_) {
            return false;
        }
        commands_.push_back(std::move(command));
    }
    cv_.notify_one();
    return true;
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

namespace {

// `reply` run at most once, on whichever thread answers first: a command that throws is answered
// by its caller, unless it answered (or handed its reply on and it answered) before.
template <typename T>
Runtime::Reply<T> AtMostOnce(std::shared_ptr<Runtime::Reply<T>> reply) {
    auto answered = std::make_shared<std::atomic<bool>>(false);
    return [reply = std::move(reply), answered](T value) {
        if (!answered->exchange(true)) {
            (*reply)(std::move(value));
        }
    };
}

}  // namespace

template <typename T>
void Runtime::Submit(Reply<T> reply,
                     std::function<void(State&, Reply<T>&)> work,
                     T busy_value,
                     const std::function<void()>& settled) {
    auto shared =
        std::make_shared<Reply<T>>(AtMostOnce(std::make_shared<Reply<T>>(std::move(reply))));
    const bool queued = Enqueue([work = std::move(work), shared, settled](State& state) {
        if (Status st = state.Stopping(); !st.ok()) {
            (*shared)(T(st));
        } else {
            // A copy of the once-reply: the work may move its own away (to a store callback).
            Reply<T> own = *shared;
            if (!Guarded("a command", [&] { work(state, own); })) {
                (*shared)(T(Internal("the request failed inside the server (see its log)")));
            }
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
            if (!id.ok()) {
                r(std::move(id));
                return;
            }
            s.n_sessions[options.tenant] += 1;
            s.OpenDesk(*id);
            if (s.store) {  // acknowledged once stored
                s.runtime->StoreCreated(s, *id, options, r);
                return;
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
                s.runtime->desk_.Remove(id);
                s.n_sessions[tenant] -= 1;
                s.ResolveAppendWaits(id, UINT64_MAX, SessionClosed(id));
                s.hub->CloseSession(id);
            }
            if (st.ok() && s.store) {
                return s.runtime->ForgetStored(s, id, std::move(r));
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
    // Validated, tokenized and admitted here, on the caller's thread, so the acknowledgement
    // never waits for an engine step (DESIGN.md: validate and tokenize -> log -> ack -> engine).
    auto tokens = TokenizeAppend(*model_, text, options_.engine.max_text_bytes);
    if (!tokens.ok()) {
        reply(tokens.status());
        return;
    }
    const int n_tokens = static_cast<int>(tokens->size());
    auto shared = std::make_shared<Reply<Result<AppendResult>>>(std::move(reply));
    AppendResult accepted;
    const auto acknowledged = std::chrono::steady_clock::now();  // admitted: the ingest lag starts
    auto admitted = desk_.Admit(tenant, id, n_tokens, [&](std::uint64_t version, int n_after) {
        accepted = {n_tokens, n_after, version};
        board_->BeginAppend(id);  // cached answers wait until the engine has this version
        const bool durable = store_ != nullptr;
        const bool queued =
            Enqueue([this, id, version, wait, durable, accepted, shared, acknowledged,
                     tokens = std::move(tokens).value()](State& s) mutable {
                // Guarded here, not only at the loop: a throw must still end the append on the
                // board (or cached answers stay off for the session) and give the room back.
                Result<AppendResult> queued_here = Internal("the append failed inside the server");
                Guarded("queueing an append", [&] {
                    queued_here = s.engine->SubmitAppendTokens(
                        id, std::move(tokens),
                        {.held = durable, .version = version, .accepted = acknowledged});
                });
                board_->EndAppend(id);
                if (!queued_here.ok()) {  // closed meanwhile (the desk had admitted it first)
                    if (queued_here.status().code() != StatusCode::kNotFound) {
                        std::fprintf(stderr,
                                     "kvstream: session %llu: admitted append %llu refused: %s\n",
                                     static_cast<unsigned long long>(id),
                                     static_cast<unsigned long long>(version),
                                     queued_here.status().ToString().c_str());
                    }
                    desk_.Revoke(id, version);
                    if (wait && !durable) {
                        (*shared)(queued_here.status());
                    }
                    return;
                }
                if (wait && !durable) {
                    s.append_waits.push_back({id, version, accepted, std::move(*shared)});
                }
            });
        if (!queued) {
            board_->EndAppend(id);
        } else if (durable) {  // acknowledged once the data log has it
            store_->Append({id, version, text}, AppendOutcome(id, accepted, wait, shared));
        }
        return queued;
    });
    if (!admitted.ok()) {
        (*shared)(admitted.status());
    } else if (store_ == nullptr && !wait) {
        (*shared)(accepted);
    }
}

void Runtime::Query(TenantId tenant,
                    SessionId id,
                    QueryOptions options,
                    Reply<Result<Answer>> reply) {
    if (options.received == std::chrono::steady_clock::time_point{}) {
        options.received = std::chrono::steady_clock::now();  // QueryTimings::wait_ms from here
    }
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
            auto added = st.ok() ? s.engine->AddFlash(id, options) : Result<FlashId>(st);
            if (!added.ok() || !s.store) {
                r(std::move(added));
                return;
            }
            s.store->PutFlash(
                id, ToStored(*added, options),
                [rt = s.runtime, id, flash = *added, r = std::move(r)](const Status& stored) {
                    if (stored.ok()) {
                        r(flash);
                        return;
                    }
                    rt->EnqueueAlways(
                        [id, flash](State& state) { (void)state.engine->RemoveFlash(id, flash); });
                    r(StorageError("the question could not be stored", stored));
                });
        },
        QueueFull());
}

void Runtime::RemoveFlash(TenantId tenant, SessionId id, FlashId flash, Reply<Status> reply) {
    Submit<Status>(
        std::move(reply),
        [tenant, id, flash](State& s, Reply<Status>& r) {
            Status st = s.Owns(tenant, id);
            if (st.ok()) {
                st = s.engine->RemoveFlash(id, flash);
            }
            if (!st.ok() || !s.store) {
                r(st);
                return;
            }
            s.store->DeleteFlash(id, flash, [r = std::move(r)](const Status& stored) {
                r(stored.ok() ? stored
                              : Status(StatusCode::kStorage,
                                       "the question is removed, but its stored copy could not "
                                       "be deleted (" +
                                           stored.message() + ")"));
            });
        },
        QueueFull());
}

}  // namespace kvs
