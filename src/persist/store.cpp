#include "persist/store.h"

#include "common/guard.h"
#include "common/thread_role.h"
#include "persist/sqlite_stmt.h"

#include <map>
#include <sqlite3.h>

namespace kvs {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    prefix TEXT NOT NULL,
    roll INTEGER NOT NULL,
    max_context INTEGER NOT NULL,
    settings TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS flash (
    session INTEGER NOT NULL,
    id INTEGER NOT NULL,
    question TEXT NOT NULL,
    max_tokens INTEGER NOT NULL,
    temperature REAL NOT NULL,
    top_p REAL NOT NULL,
    top_k INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    PRIMARY KEY (session, id)
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS log (
    session INTEGER NOT NULL,
    version INTEGER NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (session, version)
) WITHOUT ROWID;
)sql";

}  // namespace

using sqlite::SqlError;
using sqlite::Stmt;

Result<SyncPolicy> ParseSyncPolicy(const std::string& text) {
    if (text == "full") {
        return SyncPolicy::kFull;
    }
    if (text == "normal") {
        return SyncPolicy::kNormal;
    }
    if (text == "off") {
        return SyncPolicy::kOff;
    }
    return InvalidArgument("the sync policy must be full, normal or off, got '" + text + "'");
}

Result<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(options.path.c_str(), &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK) {
        const std::string why = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
        sqlite3_close(db);
        return Internal("cannot open the session store " + options.path + ": " + why);
    }
    std::unique_ptr<Store> store(new Store(db, options.test_hooks));
    const char* sync = options.sync == SyncPolicy::kFull     ? "PRAGMA synchronous=FULL"
                       : options.sync == SyncPolicy::kNormal ? "PRAGMA synchronous=NORMAL"
                                                             : "PRAGMA synchronous=OFF";
    for (const char* sql : {"PRAGMA journal_mode=WAL", sync, "PRAGMA foreign_keys=OFF", kSchema}) {
        KV_RETURN_IF_ERROR(store->Exec(sql));
    }
    if (options.max_pages > 0) {
        const std::string sql = "PRAGMA max_page_count=" + std::to_string(options.max_pages);
        KV_RETURN_IF_ERROR(store->Exec(sql.c_str()));
    }
    KV_RETURN_IF_ERROR(store->OpenReader(options.path));
    store->writer_ = std::thread(&Store::WriterLoop, store.get());
    store->reader_thread_ = std::thread(&Store::ReaderLoop, store.get());
    return store;
}

Store::Store(sqlite3* db, StoreTestHooks hooks) : db_(db), hooks_(std::move(hooks)) {}

Store::~Store() {
    {
        std::lock_guard lock(reads_mu_);
        reads_stopping_ = true;
    }
    reads_cv_.notify_all();
    if (reader_thread_.joinable()) {
        reader_thread_.join();
    }
    sqlite3_close(reader_);
    {
        std::lock_guard lock(queue_mu_);
        stopping_ = true;
    }
    queue_cv_.notify_all();
    if (writer_.joinable()) {
        writer_.join();
    }
    if (hooks_.before_close) {
        hooks_.before_close();
    }
    sqlite3_close(db_);
}

Status Store::Exec(const char* sql) {
    std::lock_guard lock(db_mu_);
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        const std::string why = err != nullptr ? err : sqlite3_errmsg(db_);
        sqlite3_free(err);
        return Internal("the session store failed (" + why + ")");
    }
    return Status::Ok();
}

Status Store::PutSession(const StoredSession& s) {
    std::lock_guard lock(db_mu_);
    return WriteSession(s);
}

Status Store::DeleteSession(SessionId id) {
    std::lock_guard lock(db_mu_);
    return EraseSession(id);
}

Status Store::PutFlash(SessionId session, const StoredFlash& f) {
    std::lock_guard lock(db_mu_);
    return WriteFlash(session, f);
}

Status Store::DeleteFlash(SessionId session, std::uint64_t flash) {
    std::lock_guard lock(db_mu_);
    return EraseFlash(session, flash);
}

void Store::PutSession(StoredSession s, std::function<void(Status)> done) {
    Queue([this, s = std::move(s)] { return WriteSession(s); }, std::move(done));
}

void Store::DeleteSession(SessionId id, std::function<void(Status)> done) {
    Queue([this, id] { return EraseSession(id); }, std::move(done));
}

void Store::PutFlash(SessionId session, StoredFlash f, std::function<void(Status)> done) {
    Queue([this, session, f = std::move(f)] { return WriteFlash(session, f); }, std::move(done));
}

void Store::DeleteFlash(SessionId session, std::uint64_t flash, std::function<void(Status)> done) {
    Queue([this, session, flash] { return EraseFlash(session, flash); }, std::move(done));
}

void Store::Append(LogEntry entry, std::function<void(Status)> done) {
    Queue([this, e = std::move(entry)] { return WriteEntry(e); }, std::move(done));
}

Status Store::WriteSession(const StoredSession& s) {
    Stmt st(db_,
            "INSERT INTO sessions (id, tenant, prefix, roll, max_context, settings) "
            "VALUES (?, ?, ?, ?, ?, ?)");
    if (!st.ok()) {
        return SqlError(db_, "prepare a session write");
    }
    st.Bind(1, static_cast<std::int64_t>(s.id));
    st.Bind(2, s.tenant);
    st.Bind(3, s.prefix);
    st.Bind(4, std::int64_t{s.roll ? 1 : 0});
    st.Bind(5, std::int64_t{s.max_context});
    st.Bind(6, s.settings);
    if (st.Step() != SQLITE_DONE) {  // a stored session with this id: never overwritten
        return SqlError(db_, "write session " + std::to_string(s.id));
    }
    KV_RETURN_IF_ERROR(RaiseHighest("session", s.id));
    for (const StoredFlash& f : s.flash) {
        KV_RETURN_IF_ERROR(WriteFlash(s.id, f));
    }
    return Status::Ok();
}

Status Store::RaiseHighest(const char* what, std::uint64_t id) {
    Stmt st(db_,
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)");
    st.Bind(1, std::string("highest_") + what);
    st.Bind(2, static_cast<std::int64_t>(id));
    return st.ok() && st.Step() == SQLITE_DONE ? Status::Ok() : SqlError(db_, "write an id");
}

Status Store::EraseSession(SessionId id) {
    for (const char* sql :
         {"DELETE FROM log WHERE session = ?", "DELETE FROM flash WHERE session = ?",
          "DELETE FROM sessions WHERE id = ?"}) {
        Stmt st(db_, sql);
        st.Bind(1, static_cast<std::int64_t>(id));
        if (!st.ok() || st.Step() != SQLITE_DONE) {
            return SqlError(db_, "delete a session");
        }
    }
    return Status::Ok();
}

Status Store::WriteFlash(SessionId session, const StoredFlash& f) {
    Stmt st(db_,
            "INSERT INTO flash (session, id, question, max_tokens, temperature, top_p, "
            "top_k, seed) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    st.Bind(1, static_cast<std::int64_t>(session));
    st.Bind(2, static_cast<std::int64_t>(f.id));
    st.Bind(3, f.question);
    st.Bind(4, std::int64_t{f.max_tokens});
    st.Bind(5, f.temperature);
    st.Bind(6, f.top_p);
    st.Bind(7, std::int64_t{f.top_k});
    st.Bind(8, static_cast<std::int64_t>(f.seed));
    if (!st.ok() || st.Step() != SQLITE_DONE) {
        return SqlError(db_, "write question " + std::to_string(f.id));  // never overwritten
    }
    return RaiseHighest("flash", f.id);
}

Status Store::EraseFlash(SessionId session, std::uint64_t flash) {
    Stmt st(db_, "DELETE FROM flash WHERE session = ? AND id = ?");
    st.Bind(1, static_cast<std::int64_t>(session));
    st.Bind(2, static_cast<std::int64_t>(flash));
    return st.ok() && st.Step() == SQLITE_DONE ? Status::Ok() : SqlError(db_, "delete a question");
}

Status Store::WriteEntry(const LogEntry& e) {
    Stmt st(db_, "INSERT INTO log (session, version, text) VALUES (?, ?, ?)");
    st.Bind(1, static_cast<std::int64_t>(e.session));
    st.Bind(2, static_cast<std::int64_t>(e.version));
    st.Bind(3, e.text);
    return st.ok() && st.Step() == SQLITE_DONE ? Status::Ok()
                                               : SqlError(db_, "write to the data log");
}

void Store::Queue(std::function<Status()> write, std::function<void(Status)> done) {
    {
        std::lock_guard lock(queue_mu_);
        queue_.push_back({std::move(write), std::move(done)});
    }
    queue_cv_.notify_one();
}

void Store::Flush() {
    std::unique_lock lock(queue_mu_);
    flushed_cv_.wait(lock, [&] { return queue_.empty() && !writing_; });
}

void Store::WriterLoop() {
    SetThreadRole(ThreadRole::kStoreWriter);
    while (true) {
        std::deque<Pending> batch;
        {
            std::unique_lock lock(queue_mu_);
            queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) {
                return;  // stopping, nothing left
            }
            batch.swap(queue_);
            writing_ = true;
        }
        const Status st = CommitBatch(batch);
        for (Pending& p : batch) {
            if (p.done) {
                Guarded("a store write's callback", [&] { p.done(st); });
            }
        }
        {
            std::lock_guard lock(queue_mu_);
            writing_ = false;
        }
        flushed_cv_.notify_all();
    }
}

Status Store::CommitBatch(const std::deque<Pending>& batch) {
    std::lock_guard lock(db_mu_);
    auto fail = [&](const std::string& what) {
        Status st = SqlError(db_, what);
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        stats_.n_failed += batch.size();
        return st;
    };
    if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
        return fail("begin a transaction");
    }
    for (const Pending& p : batch) {
        if (Status st = p.write(); !st.ok()) {
            sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
            stats_.n_failed += batch.size();
            return st;
        }
    }
    if (hooks_.before_commit) {
        hooks_.before_commit();
    }
    if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
        return fail("commit the data log");
    }
    stats_.n_commits += 1;
    stats_.n_entries += batch.size();
    return Status::Ok();
}

StoreStats Store::stats() const {
    std::lock_guard lock(db_mu_);
    return stats_;
}

}  // namespace kvs
