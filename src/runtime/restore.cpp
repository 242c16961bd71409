// Restoring every stored session at start (the contract is in runtime.h; docs/architecture.md
// "Durable sessions"): from its snapshot when that is intact and this engine's, else from its
// prefix; then its data log after the snapshot's version is queued for ingest. A session whose
// log cannot be read is not restored at all (never served half-restored); its stored data is
// left as it is.

#include "runtime/runtime_state.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace kvs {
namespace fs = std::filesystem;

namespace {

FlashOptions FromStored(const StoredFlash& f) {
    FlashOptions o;
    o.question = f.question;
    o.max_tokens = f.max_tokens;
    o.sampling.temperature = static_cast<float>(f.temperature);
    o.sampling.top_p = static_cast<float>(f.top_p);
    o.sampling.top_k = f.top_k;
    o.sampling.seed = f.seed;
    return o;
}

unsigned long long Ull(std::uint64_t v) {
    return static_cast<unsigned long long>(v);
}

// A store read that failed at start: the server does not start.
Status UnreadableStore(const std::string& what, const Status& why) {
    return Status(StatusCode::kStorage,
                  "cannot read " + what + " from the data folder's database (" + why.ToString() +
                      "); the server does not start rather than serve without them (check the "
                      "folder, or start with another --data-dir)");
}

}  // namespace

// Stored tenant names to this server's ids: a name --api-keys lists gets its id; a number no key
// lists keeps it; any other name gets an id no key maps to (unreachable until a key names it).
class Runtime::TenantIds {
public:
    explicit TenantIds(const std::map<TenantId, std::string>& names) : names_(names) {
        for (const auto& [id, name] : names) {
            ids_[name] = id;
        }
    }

    TenantId Of(const std::string& name) {
        auto it = ids_.find(name);
        if (it == ids_.end()) {
            char* end = nullptr;
            const long number = std::strtol(name.c_str(), &end, 10);
            const bool numeric = !name.empty() && *end == '\0' && number >= 0 &&
                                 !names_.contains(static_cast<int>(number));
            it = ids_.emplace(name, numeric ? static_cast<int>(number) : next_unknown_--).first;
        }
        return it->second;
    }

private:
    const std::map<TenantId, std::string>& names_;
    std::map<std::string, TenantId> ids_;
    TenantId next_unknown_ = -1;
};

struct Runtime::RestoreTally {
    explicit RestoreTally(MetricsRegistry& m)
        : from_snapshot(m.GetCounter("kvs_restored_from_snapshot_total",
                                     "Sessions restored at start from their snapshot")),
          from_log(m.GetCounter("kvs_restored_from_log_total",
                                "Sessions rebuilt at start from their data log alone")),
          rejected(m.GetCounter("kvs_snapshots_rejected_total",
                                "Snapshots found unusable at start (corrupt, truncated, another "
                                "model or KV settings)")),
          failed(m.GetCounter("kvs_restore_failures_total",
                              "Stored sessions not restored at start (e.g. an unreadable log)")) {}

    void Rejected(SessionId id, const fs::path& file, const Status& why) {
        rejected.Add();
        std::fprintf(stderr,
                     "kvstream: session %llu: snapshot %s is unusable (%s); rebuilding the "
                     "session from its data log\n",
                     Ull(id), file.c_str(), why.message().c_str());
    }

    Counter& from_snapshot;
    Counter& from_log;
    Counter& rejected;
    Counter& failed;
    int n_snapshots = 0;
    std::size_t n_replayed = 0;
};

Status Runtime::RestoreSessions(State& s) {
    // 1. What is stored, and the highest ids ever given out. A store that cannot be read stops
    // the start: serving as empty would give a stored session's id to a new one (another
    // tenant's, maybe) and later replay the old log into it.
    auto stored = s.store->LoadSessions();
    if (!stored.ok()) {
        return UnreadableStore("the stored sessions", stored.status());
    }
    auto highest = s.store->LoadHighestIds();
    if (!highest.ok()) {
        return UnreadableStore("the highest stored ids", highest.status());
    }
    s.engine->ReserveIds(highest->session, highest->flash);
    // 2. Each session, from its snapshot and log; one that cannot be restored is left stored.
    TenantIds tenants(options_.durable.tenant_names);
    RestoreTally tally(s.engine->metrics());
    for (const StoredSession& st : *stored) {
        if (RestoreSession(s, st, tenants.Of(st.tenant), tally)) {
            restored_.emplace_back(st.id, st.settings);
        } else {
            tally.failed.Add();
        }
    }
    for (const auto& [id, settings] : restored_) {
        s.OpenDesk(id);
    }
    if (!stored->empty()) {
        std::fprintf(stderr,
                     "kvstream: restored %zu of %zu sessions from %s (%d from snapshots); "
                     "replaying %zu log entries\n",
                     restored_.size(), stored->size(), options_.durable.data_dir.c_str(),
                     tally.n_snapshots, tally.n_replayed);
    }
    return Status::Ok();
}

bool Runtime::RestoreSession(State& s,
                             const StoredSession& st,
                             TenantId tenant,
                             RestoreTally& tally) {
    SessionOptions o;
    o.id = st.id;
    o.tenant = tenant;
    o.prefix = st.prefix;
    o.on_full = st.roll ? OnFull::kRoll : OnFull::kReject;
    o.max_context = st.max_context;
    o.settings = st.settings;
    // 1. The snapshot's header and tokens, when it is intact, this engine's and this session's.
    const fs::path file = s.snapshots->PathOf(st.id);
    Result<Snapshot> snap = NotFound("no snapshot");
    if (fs::exists(file)) {
        snap = ReadSnapshotFile(file, s.engine->snapshot_identity(), false);
        if (snap.ok() && snap->header.session != st.id) {
            snap = InvalidArgument("it belongs to session " + std::to_string(snap->header.session));
        }
        if (!snap.ok()) {
            tally.Rejected(st.id, file, snap.status());
        }
    }
    // 2. The log after it (all of it without one), read whole before anything is made: a log
    // that cannot be read fails the restore and changes nothing.
    std::uint64_t after = snap.ok() ? snap->header.log_version : 0;
    auto log = s.store->LoadLog(st.id, after);
    Result<SessionId> made = NotFound("no snapshot");
    if (log.ok() && snap.ok()) {
        made = s.engine->AdoptSession(o, {std::move(snap->tokens), after, file});
        if (!made.ok()) {
            tally.Rejected(st.id, file, made.status());
            after = 0;
            log = s.store->LoadLog(st.id, 0);
        }
    }
    if (!log.ok()) {
        std::fprintf(stderr,
                     "kvstream: session %llu cannot be restored: its data log cannot be read "
                     "(%s); the session is not served and its stored data is left as it is\n",
                     Ull(st.id), log.status().ToString().c_str());
        return false;
    }
    // 3. The session itself, its questions, and the log queued for ingest.
    const bool from_file = made.ok();
    if (!from_file) {
        made = s.engine->CreateSession(o);
    }
    if (!made.ok()) {
        std::fprintf(stderr, "kvstream: session %llu cannot be restored: %s\n", Ull(st.id),
                     made.status().ToString().c_str());
        return false;
    }
    (from_file ? tally.from_snapshot : tally.from_log).Add();
    tally.n_snapshots += from_file ? 1 : 0;
    tally.n_replayed += log->size();
    s.n_sessions[o.tenant] += 1;
    ReplayStored(s, st, *log);
    return true;
}

void Runtime::ReplayStored(State& s, const StoredSession& st, const std::vector<LogEntry>& log) {
    for (const StoredFlash& f : st.flash) {
        if (auto added = s.engine->AddFlash(st.id, FromStored(f), f.id); !added.ok()) {
            std::fprintf(stderr, "kvstream: session %llu: flash %llu not restored: %s\n",
                         Ull(st.id), Ull(f.id), added.status().ToString().c_str());
        }
    }
    for (const LogEntry& e : log) {
        auto queued = s.engine->SubmitAppend(st.id, e.text, {.version = e.version});
        if (!queued.ok()) {
            std::fprintf(stderr, "kvstream: session %llu: log entry %llu not replayed: %s\n",
                         Ull(st.id), Ull(e.version), queued.status().ToString().c_str());
        }
    }
}

}  // namespace kvs
