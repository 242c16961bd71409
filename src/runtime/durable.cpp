// Durable sessions, runtime side (the contract is in runtime.h; the data folder's layout in
// docs/architecture.md): opening the data folder, acknowledging creations and appends once the
// store has them, snapshots (due ones while serving, every changed one at shutdown, within the
// snapshot memory budget), and reading the data log. Restoring at start: restore.cpp.
//
//   <data_dir>/kvstream.db (+ -wal, -shm)   SQLite: sessions, flash questions, the data log
//   <data_dir>/snapshots/<id>.snap          one KV snapshot per session (persist/snapshot.h)
//   <data_dir>/park/                        spill files of parked sessions (unless --park-dir)
//   <data_dir>/.lock                        held (flock) by the one server using the folder

#include "runtime/runtime_state.h"

#include <cstdio>
#include <filesystem>

namespace kvs {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kSnapshotCheckEvery = std::chrono::milliseconds(200);

}  // namespace

Status StorageError(const std::string& what, const Status& why) {
    return Status(StatusCode::kStorage,
                  what + " (" + why.message() + "); nothing was acknowledged");
}

StoredFlash ToStored(FlashId id, const FlashOptions& o) {
    return {id,
            o.question,
            o.max_tokens,
            o.sampling.temperature,
            o.sampling.top_p,
            o.sampling.top_k,
            o.sampling.seed};
}

Status Runtime::OpenDurable(State& s, EngineOptions& engine_options) {
    const DurableOptions& d = options_.durable;
    engine_options.capture_on_park = true;
    if (engine_options.park_dir.empty()) {
        engine_options.park_dir = d.data_dir + "/park";
    }
    std::error_code ec;
    fs::create_directories(fs::path(d.data_dir) / "snapshots", ec);
    if (ec) {
        return Status(StatusCode::kStorage,
                      "cannot create the data folder " + d.data_dir + ": " + ec.message());
    }
    auto lock = FileLock::Take(fs::path(d.data_dir) / ".lock");
    if (!lock.ok()) {
        return Status(StatusCode::kStorage, lock.status().code() == StatusCode::kUnavailable
                                                ? "the data folder " + d.data_dir +
                                                      " is in use by another kvstream server"
                                                : lock.status().message());
    }
    s.folder_lock = std::move(lock).value();
    auto store = Store::Open({(fs::path(d.data_dir) / "kvstream.db").string(), d.sync,
                              d.max_store_pages, d.store_test_hooks});
    if (!store.ok()) {
        return Status(StatusCode::kStorage, store.status().message());
    }
    s.store = std::move(store).value();
    return Status::Ok();
}

void Runtime::StartSnapshots(State& s) {
    MetricsRegistry& m = s.engine->metrics();
    s.snapshots = std::make_unique<SnapshotWriter>(
        fs::path(options_.durable.data_dir) / "snapshots", s.engine->snapshot_identity(),
        options_.durable.snapshot_memory_bytes,
        [this, &m](const SnapshotWritten& w) { SnapshotDone(m, w); },
        options_.durable.snapshot_test_before_write);
    m.GetGauge("kvs_snapshot_memory_budget_bytes",
               "The budget for session state copied out for snapshots (--snapshot-memory-bytes)")
        .Set(static_cast<double>(options_.durable.snapshot_memory_bytes));
    s.engine->SetParkCaptureRoom(s.snapshots->room());
}

void Runtime::SnapshotDone(MetricsRegistry& m, const SnapshotWritten& w) {
    if (!w.status.ok()) {
        m.GetCounter("kvs_snapshot_failures_total", "Snapshot writes that failed").Add();
        std::fprintf(stderr,
                     "kvstream: snapshot of session %llu failed (%s); its data log still has "
                     "everything\n",
                     static_cast<unsigned long long>(w.session), w.status.ToString().c_str());
        return;  // the session's snapshot version stays: it is snapshotted at a later chance
    }
    m.GetCounter("kvs_snapshots_total", "Snapshot files written").Add();
    m.GetCounter("kvs_snapshot_bytes_total", "Bytes of snapshot files written").Add(w.n_bytes);
    m.GetHistogram("kvs_snapshot_ms", "Time to write one snapshot file", kMsBuckets).Observe(w.ms);
    EnqueueAlways([id = w.session, version = w.version](State& state) {
        state.engine->ConfirmSnapshot(id, version);
    });
}

void Runtime::FinishDurable(State& s) {
    desk_.Fence();  // an admission that queued its command also queues its log entry
    s.store->Flush();
    RunCommands(s, TakeCommands(), "a command at shutdown");  // the store's last outcomes
    WriteParkCaptures(s);                                     // then every change is saved
    SnapshotSessions(s, /*all=*/true);
    s.snapshots->Flush();
}

void Runtime::ForgetStored(State& s, SessionId id, Reply<Status> r) {
    s.snapshots->Remove(id);
    s.snapshot_marks.erase(id);
    s.store->DeleteSession(id, [r = std::move(r), id](const Status& stored) {
        r(stored.ok() ? stored
                      : Status(StatusCode::kStorage,
                               "session " + std::to_string(id) +
                                   " is closed, but its stored data could not be deleted (" +
                                   stored.message() + ")"));
    });
}

void Runtime::StoreCreated(State& s,
                           SessionId id,
                           const SessionOptions& o,
                           const Reply<Result<SessionId>>& r) {
    StoredSession stored;
    stored.id = id;
    const auto name = options_.durable.tenant_names.find(o.tenant);
    stored.tenant =
        name != options_.durable.tenant_names.end() ? name->second : std::to_string(o.tenant);
    stored.prefix = o.prefix;
    stored.roll = o.on_full == OnFull::kRoll;
    stored.max_context = o.max_context;
    stored.settings = o.settings;
    if (auto flash = s.engine->ListFlash(id); flash.ok()) {
        for (const FlashInfo& f : *flash) {
            stored.flash.push_back(ToStored(f.id, f.options));
        }
    }
    s.store->PutSession(std::move(stored), [this, id, tenant = o.tenant, r](const Status& st) {
        if (st.ok()) {
            r(id);
            return;
        }
        desk_.Remove(id);
        EnqueueAlways([id, tenant](State& state) {
            if (state.engine->CloseSession(id).ok()) {
                state.n_sessions[tenant] -= 1;
                state.hub->CloseSession(id);
            }
        });
        r(StorageError("the session could not be stored", st));
    });
}

std::function<void(Status)> Runtime::AppendOutcome(
    SessionId id,
    AppendResult accepted,
    bool wait,
    std::shared_ptr<Reply<Result<AppendResult>>> reply) {
    return [this, id, accepted, wait, reply](const Status& st) {
        // On the store's writer thread: the engine learns the outcome before the client does,
        // so a query sent after the acknowledgement sees the data.
        const std::uint64_t v = accepted.version;
        if (!st.ok()) {
            desk_.Revoke(id, v);
        }
        const bool queued =
            EnqueueAlways([id, v, ok = st.ok(), accepted, wait, reply](State& state) {
                if (!ok) {
                    (void)state.engine->RevokeAppend(id, v);
                    return;
                }
                if (!state.engine->ConfirmAppend(id, v).ok()) {  // the session was closed meanwhile
                    if (wait) {
                        (*reply)(SessionClosed(id));
                    }
                    return;
                }
                if (wait) {
                    state.append_waits.push_back({id, v, accepted, std::move(*reply), true});
                }
            });
        if (!st.ok()) {
            (*reply)(StorageError("the data could not be stored", st));
        } else if (!wait || !queued) {
            // Stored, so acknowledged: without a wait now; with one that the engine will not
            // see (it has stopped), as stored and not ingested: it is, after the restart.
            (*reply)(accepted);
        }
    };
}

void Runtime::WriteParkCaptures(State& s) {
    for (SessionCapture& c : s.engine->TakeParkCaptures()) {
        if (!s.engine->Info(c.id).ok()) {
            continue;  // closed since it was parked (same batch): its snapshot is deleted
        }
        s.Mark(c.id, Clock::now());
        s.snapshots->Write(std::move(c));
    }
    s.engine->SetParkCaptureRoom(s.snapshots->room());  // what the next parks may copy
    s.engine->metrics()
        .GetGauge("kvs_snapshot_memory_peak_bytes",
                  "The most bytes of session state held for snapshot writes at once")
        .Set(static_cast<double>(s.snapshots->peak_held_bytes()));
}

void Runtime::SnapshotSessions(State& s, bool all) {
    const auto now = Clock::now();
    if (!all && now < s.next_snapshot_check) {
        return;
    }
    s.next_snapshot_check = now + kSnapshotCheckEvery;
    const DurableOptions& d = options_.durable;
    const auto interval = std::chrono::duration<double>(d.snapshot_interval_s);
    for (SessionId id : s.engine->SessionIds()) {
        auto info = s.engine->Info(id);
        if (!info.ok() || info->version <= info->snapshot_version || !info->resident) {
            continue;
        }
        if (!all) {
            // The clock and the count start when a session is first seen (made, or restored);
            // tokens count what rolled out too.
            const std::uint64_t n_seen = info->n_tokens + info->n_dropped_tokens;
            auto [mark, fresh] = s.snapshot_marks.try_emplace(id, State::SnapshotMark{now, n_seen});
            if ((fresh && d.snapshot_interval_s > 0) || now - mark->second.at < interval ||
                n_seen <
                    mark->second.n_tokens + static_cast<std::uint64_t>(d.snapshot_min_tokens)) {
                continue;
            }
        }
        // Within the snapshot budget: while serving, a state that does not fit now waits for a
        // later check; at shutdown it waits for the writer (alone if it exceeds the budget).
        auto capture = s.engine->Capture(id, s.snapshots->room());
        if (!capture && all) {
            s.snapshots->Flush();
            capture = s.engine->Capture(id);
        }
        if (!capture) {
            continue;  // busy now, or no room; the next check tries again
        }
        s.Mark(id, now);
        s.snapshots->Write(std::move(*capture));
        s.engine->SetParkCaptureRoom(s.snapshots->room());
        if (!all) {
            return;  // one state copy per check keeps the engine thread's share small
        }
    }
}

void Runtime::ReadLog(TenantId tenant,
                      SessionId id,
                      std::uint64_t after_version,
                      LogPageLimits limits,
                      Reply<Result<LogPage>> reply) const {
    if (store_ == nullptr) {
        return reply(Status(StatusCode::kUnavailable,
                            "this server keeps no data log (it runs without a data folder)"));
    }
    if (!board_->Owns(tenant, id)) {
        return reply(NotFound("unknown session " + std::to_string(id)));
    }
    store_->ReadLogPage(id, after_version, limits, std::move(reply));
}

std::future<Result<LogPage>> Runtime::ReadLog(TenantId tenant,
                                              SessionId id,
                                              std::uint64_t after_version,
                                              LogPageLimits limits) const {
    auto done = std::make_shared<std::promise<Result<LogPage>>>();
    auto future = done->get_future();
    ReadLog(tenant, id, after_version, limits,
            [done](Result<LogPage> page) { done->set_value(std::move(page)); });
    return future;
}

}  // namespace kvs
