#pragma once
// SQLite helpers shared by the store's files (store.cpp, store_read.cpp): internal to persist/.

#include "common/status.h"

#include <cstdint>
#include <sqlite3.h>
#include <string>

namespace kvs::sqlite {

// A prepared statement, finalized on scope exit.
class Stmt {
public:
    Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }

    ~Stmt() { sqlite3_finalize(stmt_); }

    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;

    bool ok() const { return rc_ == SQLITE_OK; }

    void Bind(int i, std::int64_t v) { sqlite3_bind_int64(stmt_, i, v); }

    void Bind(int i, double v) { sqlite3_bind_double(stmt_, i, v); }

    void Bind(int i, const std::string& v) {
        sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    }

    int Step() { return sqlite3_step(stmt_); }

    void Reset() {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }

    std::int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }

    std::size_t Bytes(int col) {
        return static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col));
    }

    double Real(int col) { return sqlite3_column_double(stmt_, col); }

    std::string Text(int col) {
        const auto* p = sqlite3_column_text(stmt_, col);
        return p == nullptr
                   ? std::string()
                   : std::string(reinterpret_cast<const char*>(p),
                                 static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
    }

private:
    sqlite3_stmt* stmt_ = nullptr;
    int rc_ = SQLITE_ERROR;
};

inline Status SqlError(sqlite3* db, const std::string& what) {
    return Internal("the session store cannot " + what + ": " + sqlite3_errmsg(db));
}

}  // namespace kvs::sqlite
