#pragma once
// The durable store of sessions: one SQLite database in WAL mode holding session settings and
// ownership, registered flash questions, and the data log (every acknowledged append, in version
// order).
//
// Group commit: Append (and the queued forms of the session and question writes) queue a write
// and return; one writer thread commits whatever is queued in a single transaction (one sync for
// the batch), in queue order, and then calls each write's `done` with the outcome, in queue
// order. A write is acknowledged (done(Ok)) only after its transaction is durable under the sync
// policy. A failed write or commit (disk full, I/O error, read-only file) fails every write of
// the batch with the same clear error and keeps none of them.
//
// Reads of the data log (LoadLog, ReadLogPage) use a second, read-only connection: in WAL mode a
// reader sees the last committed transaction and never waits for a commit or its sync.
//
// Thread-safety: every method may be called from any thread (the writer connection has one
// mutex, which the writer thread takes per batch; the reader connection has its own). `done`
// runs on the writer thread (writes) or on the reader thread (ReadLogPage): keep it quick.

#include "common/status.h"
#include "session/session.h"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

struct sqlite3;

namespace kvs {

enum class SyncPolicy : std::uint8_t {
    kFull,    // fsync at every commit: an acknowledged append survives power loss (default)
    kNormal,  // WAL's NORMAL: survives a process crash, may lose the last commits on power loss
    kOff,     // no syncs: benchmarks only
};

// "full", "normal", "off".
Result<SyncPolicy> ParseSyncPolicy(const std::string& text);

// Fault-injection seams for tests; empty in production. Each runs on the thread named.
struct StoreTestHooks {
    std::function<void()> before_commit;  // writer thread, inside a batch's transaction
    std::function<void()> before_close;   // the destroying thread, after the last commit
};

struct StoreOptions {
    std::string path;  // the database file (its folder must exist)
    SyncPolicy sync = SyncPolicy::kFull;
    std::int64_t max_pages = 0;  // > 0: PRAGMA max_page_count (tests simulate a full disk)
    StoreTestHooks test_hooks{};
};

struct StoredFlash {
    std::uint64_t id = 0;
    std::string question;
    int max_tokens = 32;
    double temperature = 0;
    double top_p = 1;
    int top_k = 0;
    std::uint32_t seed = 0;
};

struct StoredSession {
    SessionId id = 0;
    std::string tenant;
    std::string prefix;
    bool roll = false;  // on_full = roll
    int max_context = 0;
    std::string settings;  // the HTTP layer's own settings (its record template), opaque here
    std::vector<StoredFlash> flash;
};

struct LogEntry {
    SessionId session = 0;
    std::uint64_t version = 0;
    std::string text;
};

// How much one page of the data log may hold.
struct LogPageLimits {
    std::size_t max_entries = 1000;
    std::size_t max_bytes = std::size_t{1} << 20;  // of text; an entry larger than this comes alone
};

struct LogPage {
    std::vector<LogEntry> entries;  // in version order
    bool more = false;              // a limit cut the page: ask again after entries.back().version
};

// The highest ids ever stored (deleted sessions and questions included), so that a restarted
// server never gives a deleted session's id to a new one.
struct HighestIds {
    std::uint64_t session = 0;
    std::uint64_t flash = 0;
};

struct StoreStats {
    std::uint64_t n_commits = 0;  // log transactions
    std::uint64_t n_entries = 0;  // log entries committed
    std::uint64_t n_failed = 0;   // entries whose commit failed
};

class Store {
public:
    // Opens (creating if needed) the database, in WAL mode, with the schema. kInternal with
    // SQLite's message when the file cannot be opened or is not a kvstream store.
    static Result<std::unique_ptr<Store>> Open(const StoreOptions& options);

    ~Store();  // commits what is queued, then closes
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // Sessions and flash questions, synchronously: each call is one transaction.
    // Inserts, never replaces: a session or question whose id is stored already is an error
    // (ids are never reused, LoadHighestIds); the questions in `session.flash` are written too.
    Status PutSession(const StoredSession& session);
    Status DeleteSession(SessionId id);  // the session, its log and its questions
    Status PutFlash(SessionId session, const StoredFlash& flash);
    Status DeleteFlash(SessionId session, std::uint64_t flash);

    // The same, queued with the log (group commit, in order with appends).
    void PutSession(StoredSession session, std::function<void(Status)> done);
    void DeleteSession(SessionId id, std::function<void(Status)> done);
    void PutFlash(SessionId session, StoredFlash flash, std::function<void(Status)> done);
    void DeleteFlash(SessionId session, std::uint64_t flash, std::function<void(Status)> done);

    // The data log, group-committed (see above). `version` must grow per session.
    void Append(LogEntry entry, std::function<void(Status)> done);

    // Blocks until everything queued so far is committed or failed.
    void Flush();

    // Reading at start: every session with its flash questions, and a session's log entries
    // after `after_version`, in version order.
    Result<std::vector<StoredSession>> LoadSessions();
    // Every entry, on the reader connection. A read error (IOERR, CORRUPT, BUSY) is kInternal
    // with SQLite's message, never a shorter log.
    Result<std::vector<LogEntry>> LoadLog(SessionId session, std::uint64_t after_version);

    // One page of a session's log after `after_version`, in version order, within `limits` (the
    // first entry always comes, however large), on the reader connection. Errors as LoadLog.
    Result<LogPage> ReadLogPage(SessionId session,
                                std::uint64_t after_version,
                                const LogPageLimits& limits);
    // The same on the store's reader thread (never an HTTP I/O thread): `done` runs there.
    void ReadLogPage(SessionId session,
                     std::uint64_t after_version,
                     LogPageLimits limits,
                     std::function<void(Result<LogPage>)> done);

    Result<HighestIds> LoadHighestIds();

    StoreStats stats() const;

private:
    struct Pending {
        std::function<Status()> write;  // runs inside the batch's transaction, db_mu_ held
        std::function<void(Status)> done;
    };

    Store(sqlite3* db, StoreTestHooks hooks);
    void WriterLoop();
    void ReaderLoop();
    Status OpenReader(const std::string& path);
    Status CommitBatch(const std::deque<Pending>& batch);
    void Queue(std::function<Status()> write, std::function<void(Status)> done);
    // The writes themselves; db_mu_ held.
    Status WriteSession(const StoredSession& s);
    Status EraseSession(SessionId id);
    Status WriteFlash(SessionId session, const StoredFlash& f);
    Status EraseFlash(SessionId session, std::uint64_t flash);
    Status WriteEntry(const LogEntry& e);
    Status RaiseHighest(const char* what, std::uint64_t id);
    Status Exec(const char* sql);

    sqlite3* db_;
    StoreTestHooks hooks_;
    mutable std::mutex db_mu_;  // the connection
    std::mutex queue_mu_;
    std::condition_variable queue_cv_;
    std::condition_variable flushed_cv_;
    std::deque<Pending> queue_;  // guarded by queue_mu_
    bool writing_ = false;       // guarded by queue_mu_: a batch is being committed
    bool stopping_ = false;      // guarded by queue_mu_
    StoreStats stats_;           // guarded by db_mu_
    std::thread writer_;
    sqlite3* reader_ = nullptr;  // read-only connection: the data log's reads
    std::mutex read_mu_;         // the reader connection
    std::mutex reads_mu_;
    std::condition_variable reads_cv_;
    std::deque<std::function<void()>> reads_;  // guarded by reads_mu_
    bool reads_stopping_ = false;              // guarded by reads_mu_
    std::thread reader_thread_;
};

}  // namespace kvs
