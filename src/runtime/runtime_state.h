#pragma once
// The engine thread's state behind a Runtime (runtime.cpp, durable.cpp): internal to runtime/.

#include "common/file_lock.h"
#include "common/guard.h"
#include "persist/snapshot_writer.h"
#include "persist/store.h"
#include "runtime/runtime.h"

#include <chrono>
#include <map>
#include <memory>
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
        bool stored = false;  // the data log holds it: it is acknowledged, whatever happens
    };

    // The data folder's lock (durable.cpp): declared first, so destroyed last, after the engine
    // (its park spill files), the snapshot writer and the store have finished their last writes.
    FileLock folder_lock;
    std::unique_ptr<Engine> engine;
    Runtime* runtime = nullptr;
    EventHub* hub = nullptr;
    TenantLimits limits;
    bool stopping = false;
    std::map<TenantId, int> n_sessions;
    std::map<TenantId, int> n_queries;
    std::map<QueryId, PendingQuery> queries;
    std::vector<AppendWait> append_waits;

    // Durable sessions (runtime/durable.cpp); both null without a data folder.
    std::unique_ptr<Store> store;
    std::unique_ptr<SnapshotWriter> snapshots;

    struct SnapshotMark {
        std::chrono::steady_clock::time_point at;  // the last capture
        std::uint64_t n_tokens = 0;                // tokens seen then (rolled-out ones included)
    };

    std::map<SessionId, SnapshotMark> snapshot_marks;
    std::chrono::steady_clock::time_point next_snapshot_check;

    // Opens a session just made or restored for appends (runtime/append_desk.h).
    void OpenDesk(SessionId id) {
        auto info = engine->Info(id);
        if (!info.ok()) {
            return;
        }
        const int backlog = runtime->options_.max_ingest_backlog_tokens;
        runtime->desk_.Add(id,
                           {.tenant = info->tenant,
                            .on_full = info->on_full,
                            .n_ctx = info->n_ctx,
                            .n_prefix_tokens = info->n_prefix_tokens,
                            .n_tokens = info->n_tokens + info->n_pending_tokens,
                            .accepted_version = info->accepted_version,
                            .max_behind_tokens = backlog > 0 ? backlog : 2 * info->n_ctx},
                           info->n_pending_tokens);
    }

    void Mark(SessionId id, std::chrono::steady_clock::time_point now) {
        auto info = engine->Info(id);
        snapshot_marks[id] = {now, info.ok() ? info->n_tokens + info->n_dropped_tokens : 0};
    }

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

    // Hands finished queries and ingested appends to their waiters. Each reply and each event
    // on its own: one that throws is reported and the rest of the step is still delivered.
    void Deliver() {
        for (FinishedQuery& f : engine->TakeFinished()) {
            auto it = queries.find(f.id);
            if (it == queries.end()) {
                continue;
            }
            n_queries[it->second.tenant] -= 1;
            auto reply = std::move(it->second.reply);
            queries.erase(it);
            Guarded("a query's reply", [&] { reply(std::move(f.answer)); });
        }
        for (const EngineEvent& e : engine->TakeEvents()) {
            if (e.kind == EngineEvent::Kind::kIngested) {
                runtime->desk_.Ingested(e.session, e.version);
                ResolveAppendWaits(e.session, e.version, Status::Ok());
            }
            Guarded("publishing an event", [&] { hub->Publish(e); });
        }
    }

    // Shutdown: whatever still waits is told so. Queries and in-memory appends were not
    // recorded: kAborted (retryable). An append the data log holds is acknowledged as stored,
    // not ingested (it is ingested after the restart): a retry would store it twice.
    void AbortWaiters() {
        const Status aborted(StatusCode::kAborted, "the server is shutting down");
        for (auto& entry : queries) {
            Guarded("a query's last reply", [&] { entry.second.reply(aborted); });
        }
        for (auto& w : append_waits) {
            if (w.stored) {
                w.result.ingested = false;
                Guarded("an append's last reply", [&] { w.reply(w.result); });
            } else {
                Guarded("an append's last reply", [&] { w.reply(aborted); });
            }
        }
        append_waits.clear();
    }

    void ResolveAppendWaits(SessionId session, std::uint64_t version, const Status& status) {
        std::erase_if(append_waits, [&](AppendWait& w) {
            if (w.session != session || w.version > version) {
                return false;
            }
            if (status.ok()) {
                w.result.ingested = true;
                Guarded("an append's reply", [&] { w.reply(w.result); });
            } else {
                Guarded("an append's reply", [&] { w.reply(status); });
            }
            return true;
        });
    }
};

// kStorage: "<what> (<why>); nothing was acknowledged".
Status StorageError(const std::string& what, const Status& why);

// A question as the store keeps it.
StoredFlash ToStored(FlashId id, const FlashOptions& options);

}  // namespace kvs
