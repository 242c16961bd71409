// The store's reads (the contract is in store.h): sessions and ids at start, and the data log,
// on the read-only connection and its reader thread.

#include "common/guard.h"
#include "persist/sqlite_stmt.h"
#include "persist/store.h"

#include <climits>

#include <algorithm>
#include <map>

namespace kvs {

using sqlite::SqlError;
using sqlite::Stmt;

Status Store::OpenReader(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &reader_, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK) {
        const std::string why = reader_ != nullptr ? sqlite3_errmsg(reader_) : "out of memory";
        return Internal("cannot open the session store " + path + " for reading: " + why);
    }
    sqlite3_busy_timeout(reader_, 5000);  // a checkpoint's brief lock: wait, then an error
    return Status::Ok();
}

Result<HighestIds> Store::LoadHighestIds() {
    std::lock_guard lock(db_mu_);
    Stmt st(db_, "SELECT key, value FROM meta");
    if (!st.ok()) {
        return SqlError(db_, "read the highest ids");
    }
    HighestIds ids;
    int rc = SQLITE_ROW;
    while ((rc = st.Step()) == SQLITE_ROW) {
        const std::string key = st.Text(0);
        const auto value = static_cast<std::uint64_t>(st.Int(1));
        if (key == "highest_session") {
            ids.session = value;
        } else if (key == "highest_flash") {
            ids.flash = value;
        }
    }
    if (rc != SQLITE_DONE) {
        return SqlError(db_, "read the highest ids");
    }
    return ids;
}

Result<std::vector<StoredSession>> Store::LoadSessions() {
    std::lock_guard lock(db_mu_);
    std::vector<StoredSession> out;
    std::map<SessionId, std::size_t> index;
    Stmt st(db_,
            "SELECT id, tenant, prefix, roll, max_context, settings FROM sessions ORDER BY id");
    if (!st.ok()) {
        return SqlError(db_, "read sessions");
    }
    int rc = SQLITE_ROW;
    while ((rc = st.Step()) == SQLITE_ROW) {
        StoredSession s;
        s.id = static_cast<SessionId>(st.Int(0));
        s.tenant = st.Text(1);
        s.prefix = st.Text(2);
        s.roll = st.Int(3) != 0;
        s.max_context = static_cast<int>(st.Int(4));
        s.settings = st.Text(5);
        index[s.id] = out.size();
        out.push_back(std::move(s));
    }
    if (rc != SQLITE_DONE) {
        return SqlError(db_, "read sessions");
    }
    Stmt fl(db_,
            "SELECT session, id, question, max_tokens, temperature, top_p, top_k, seed FROM flash "
            "ORDER BY session, id");
    if (!fl.ok()) {
        return SqlError(db_, "read flash questions");
    }
    while ((rc = fl.Step()) == SQLITE_ROW) {
        auto it = index.find(static_cast<SessionId>(fl.Int(0)));
        if (it == index.end()) {
            continue;  // an orphan: its session is gone
        }
        StoredFlash f;
        f.id = static_cast<std::uint64_t>(fl.Int(1));
        f.question = fl.Text(2);
        f.max_tokens = static_cast<int>(fl.Int(3));
        f.temperature = fl.Real(4);
        f.top_p = fl.Real(5);
        f.top_k = static_cast<int>(fl.Int(6));
        f.seed = static_cast<std::uint32_t>(fl.Int(7));
        out[it->second].flash.push_back(std::move(f));
    }
    if (rc != SQLITE_DONE) {
        return SqlError(db_, "read flash questions");
    }
    return out;
}

Result<std::vector<LogEntry>> Store::LoadLog(SessionId session, std::uint64_t after_version) {
    auto page =
        ReadLogPage(session, after_version, {.max_entries = SIZE_MAX, .max_bytes = SIZE_MAX});
    if (!page.ok()) {
        return page.status();
    }
    return std::move(page->entries);
}

Result<LogPage> Store::ReadLogPage(SessionId session,
                                   std::uint64_t after_version,
                                   const LogPageLimits& limits) {
    std::lock_guard lock(read_mu_);
    Stmt st(reader_,
            "SELECT version, text FROM log WHERE session = ? AND version > ? ORDER BY version "
            "LIMIT ?");
    if (!st.ok()) {
        return SqlError(reader_, "read the data log");
    }
    st.Bind(1, static_cast<std::int64_t>(session));
    st.Bind(2, static_cast<std::int64_t>(after_version));
    st.Bind(3, limits.max_entries >= static_cast<std::size_t>(INT64_MAX)
                   ? std::int64_t{-1}
                   : static_cast<std::int64_t>(limits.max_entries) + 1);
    LogPage page;
    std::size_t n_bytes = 0;
    int rc = SQLITE_ROW;
    while ((rc = st.Step()) == SQLITE_ROW) {
        const std::size_t size = st.Bytes(1);
        if (page.entries.size() == limits.max_entries ||
            (!page.entries.empty() && size > limits.max_bytes - n_bytes)) {
            page.more = true;
            return page;
        }
        n_bytes += std::min(size, limits.max_bytes);
        page.entries.push_back({session, static_cast<std::uint64_t>(st.Int(0)), st.Text(1)});
    }
    if (rc != SQLITE_DONE) {  // IOERR, CORRUPT, BUSY: never a short log taken for the whole
        return SqlError(reader_, "read the data log of session " + std::to_string(session));
    }
    return page;
}

void Store::ReadLogPage(SessionId session,
                        std::uint64_t after_version,
                        LogPageLimits limits,
                        std::function<void(Result<LogPage>)> done) {
    {
        std::lock_guard lock(reads_mu_);
        reads_.emplace_back([this, session, after_version, limits, done = std::move(done)] {
            // A read that throws (an allocation) is answered as an error; a reply that throws
            // is reported: either way the reader goes on with the next read.
            Result<LogPage> page =
                Internal("reading the data log of session " + std::to_string(session) + " failed");
            Guarded("a data log read", [&] { page = ReadLogPage(session, after_version, limits); });
            Guarded("a data log read's reply", [&] { done(std::move(page)); });
        });
    }
    reads_cv_.notify_one();
}

void Store::ReaderLoop() {
    while (true) {
        std::function<void()> read;
        {
            std::unique_lock lock(reads_mu_);
            reads_cv_.wait(lock, [&] { return reads_stopping_ || !reads_.empty(); });
            if (reads_.empty()) {
                return;  // stopping, nothing left
            }
            read = std::move(reads_.front());
            reads_.pop_front();
        }
        Guarded("a store read", read);
    }
}

}  // namespace kvs
