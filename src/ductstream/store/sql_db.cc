#include "ductstream/store/sql_db.h"

#include <libpq-fe.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ductstream/base/status.h"
#include "ductstream/postgres/connection.h"

namespace ductstream::store {
namespace {

// Every DuctStream build uses this key for migrations of every subsystem: one lock, so the
// subsystems' migrations never interleave either.
constexpr const char* kPostgresMigrationLock = "SELECT pg_advisory_xact_lock(7277632145961402482)";

// SQLite numbers `?NNN` parameters explicitly; `$1` would be a *named* parameter there. The
// statements we run contain no string literals with '$', so a plain rewrite is exact.
std::string ToSqliteParameters(absl::string_view sql) {
  std::string out;
  out.reserve(sql.size());
  for (size_t i = 0; i < sql.size(); ++i) {
    if (sql[i] == '$' && i + 1 < sql.size() && absl::ascii_isdigit(sql[i + 1])) {
      out.push_back('?');
    } else {
      out.push_back(sql[i]);
    }
  }
  return out;
}

class SqliteDatabase final : public SqlDatabase {
 public:
  static absl::StatusOr<std::unique_ptr<SqlDatabase>> Open(const std::string& path) {
    std::error_code ec;
    const auto dir = std::filesystem::path(path).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK) {
      absl::Status s = absl::UnavailableError(absl::StrCat(
          "opening SQLite database ", path, ": ", db ? sqlite3_errmsg(db) : "out of memory"));
      sqlite3_close(db);
      return s;
    }
    auto out = std::unique_ptr<SqliteDatabase>(new SqliteDatabase(db, path));
    // WAL lets readers in other processes proceed while one writes; FULL makes every committed
    // transition and lease survive power loss.
    DS_RETURN_IF_ERROR(out->Execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL"));
    return out;
  }

  ~SqliteDatabase() override { sqlite3_close(db_); }

  SqlDialect dialect() const override { return SqlDialect::kSqlite; }
  const std::string& description() const override { return description_; }

  absl::StatusOr<std::vector<SqlRow>> Query(absl::string_view sql, SqlParams params) override {
    const std::string text = ToSqliteParameters(sql);
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db_, text.c_str(), static_cast<int>(text.size()), &raw, nullptr) !=
        SQLITE_OK) {
      return Error(sql);
    }
    std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> stmt(raw, &sqlite3_finalize);
    for (size_t i = 0; i < params.size(); ++i) {
      const int index = static_cast<int>(i) + 1;
      if (params[i].has_value()) {
        sqlite3_bind_text(raw, index, params[i]->data(), static_cast<int>(params[i]->size()),
                          SQLITE_TRANSIENT);
      } else {
        sqlite3_bind_null(raw, index);
      }
    }
    std::vector<SqlRow> rows;
    int rc;
    while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
      const int cols = sqlite3_column_count(raw);
      SqlRow row(cols);
      for (int c = 0; c < cols; ++c) {
        if (sqlite3_column_type(raw, c) == SQLITE_NULL) continue;
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(raw, c));
        row[c] = std::string(p, sqlite3_column_bytes(raw, c));
      }
      rows.push_back(std::move(row));
    }
    if (rc != SQLITE_DONE) return Error(sql);
    return rows;
  }

  absl::Status Execute(absl::string_view sql) override {
    const std::string text(sql);
    char* message = nullptr;
    if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
      absl::Status s = Error(sql);
      sqlite3_free(message);
      return s;
    }
    return absl::OkStatus();
  }

  absl::Status Begin() override { return Execute("BEGIN IMMEDIATE"); }
  absl::Status Commit() override { return Execute("COMMIT"); }
  void Rollback() override { (void)Execute("ROLLBACK"); }

  const char* NowMillisSql() const override {
    // julianday('now') has millisecond resolution; unixepoch('subsec') needs SQLite 3.42.
    return "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)";
  }

 private:
  SqliteDatabase(sqlite3* db, std::string path) : db_(db), description_(std::move(path)) {
    // Other processes (server, workers) share the file; wait for their write locks.
    sqlite3_busy_timeout(db_, 10000);
  }

  absl::Status Error(absl::string_view sql) const {
    const int code = sqlite3_extended_errcode(db_);
    absl::StatusCode status_code = absl::StatusCode::kInternal;
    if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED) {
      status_code = absl::StatusCode::kUnavailable;
    } else if (code == SQLITE_CONSTRAINT_PRIMARYKEY || code == SQLITE_CONSTRAINT_UNIQUE) {
      status_code = absl::StatusCode::kAlreadyExists;
    }
    return absl::Status(status_code, absl::StrCat("SQLite ", description_, ": running '",
                                                  sql.substr(0, 120), "': ", sqlite3_errmsg(db_)));
  }

  sqlite3* db_;
  const std::string description_;
};

class PostgresDatabase final : public SqlDatabase {
 public:
  static absl::StatusOr<std::unique_ptr<SqlDatabase>> Open(const std::string& dsn) {
    auto out = std::unique_ptr<PostgresDatabase>(new PostgresDatabase(dsn));
    DS_RETURN_IF_ERROR(out->EnsureConnected());
    return out;
  }

  SqlDialect dialect() const override { return SqlDialect::kPostgres; }
  const std::string& description() const override { return description_; }

  absl::StatusOr<std::vector<SqlRow>> Query(absl::string_view sql, SqlParams params) override {
    DS_RETURN_IF_ERROR(EnsureConnected());
    auto result = conn_->ExecParams(sql, params);
    if (!result.ok()) return Classify(result.status());
    const int rows = postgres::RowCount(*result);
    const int cols = PQnfields(result->get());
    std::vector<SqlRow> out;
    out.reserve(rows);
    for (int r = 0; r < rows; ++r) {
      SqlRow row(cols);
      for (int c = 0; c < cols; ++c) {
        if (auto v = postgres::GetValue(*result, r, c)) row[c] = std::string(*v);
      }
      out.push_back(std::move(row));
    }
    return out;
  }

  absl::Status Execute(absl::string_view sql) override {
    DS_RETURN_IF_ERROR(EnsureConnected());
    auto result = conn_->Exec(sql);
    return result.ok() ? absl::OkStatus() : Classify(result.status());
  }

  absl::Status Begin() override { return Execute("BEGIN"); }
  absl::Status Commit() override { return Execute("COMMIT"); }
  void Rollback() override {
    if (conn_ != nullptr) (void)conn_->Exec("ROLLBACK");
  }

  const char* NowMillisSql() const override {
    return "(floor(extract(epoch FROM clock_timestamp()) * 1000))::bigint";
  }

 private:
  explicit PostgresDatabase(std::string dsn) : dsn_(std::move(dsn)) {}

  // The database outlives many network blips: a broken connection is replaced on the next call
  // (the failed call itself reports kUnavailable, which callers may retry).
  absl::Status EnsureConnected() {
    if (conn_ != nullptr && PQstatus(conn_->raw()) == CONNECTION_OK) return absl::OkStatus();
    conn_.reset();
    DS_ASSIGN_OR_RETURN(conn_, postgres::Connection::Connect(dsn_));
    description_ = conn_->redacted_conninfo();
    return absl::OkStatus();
  }

  // A unique violation (SQLSTATE 23505) is AlreadyExists for callers; the connection layer
  // reports the class 23 as InvalidArgument.
  static absl::Status Classify(const absl::Status& s) {
    if (absl::StrContains(s.message(), "(SQLSTATE 23505)")) {
      return absl::AlreadyExistsError(s.message());
    }
    return s;
  }

  const std::string dsn_;
  std::string description_ = "postgres";
  std::unique_ptr<postgres::Connection> conn_;
};

}  // namespace

absl::Status SqlDatabase::Migrate(absl::string_view tracking_table,
                                  std::span<const SqlMigration> migrations) {
  const bool pg = dialect() == SqlDialect::kPostgres;
  return InTransaction(*this, [&]() -> absl::Status {
    // The lock comes first: CREATE TABLE IF NOT EXISTS is not safe against a concurrent creator
    // in PostgreSQL. In SQLite, Begin() already holds the database's write lock.
    if (pg) DS_RETURN_IF_ERROR(Execute(kPostgresMigrationLock));
    DS_RETURN_IF_ERROR(Execute(absl::StrCat(
        "CREATE TABLE IF NOT EXISTS ", tracking_table, " (version TEXT PRIMARY KEY, applied_at ",
        pg ? "TIMESTAMPTZ NOT NULL DEFAULT now())" : "TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)")));
    DS_ASSIGN_OR_RETURN(auto applied, Query(absl::StrCat("SELECT version FROM ", tracking_table)));
    std::vector<std::string> done;
    for (const SqlRow& row : applied) done.push_back(row[0].value_or(""));
    const std::string latest_known = migrations.empty() ? "" : migrations.back().version;
    for (const std::string& version : done) {
      if (version > latest_known) {
        return absl::FailedPreconditionError(absl::StrCat(
            "database ", description(), " has migration ", version, " in ", tracking_table,
            " but this build knows only up to ", latest_known, ": upgrade DuctStream"));
      }
    }
    for (const SqlMigration& m : migrations) {
      if (std::find(done.begin(), done.end(), m.version) != done.end()) continue;
      absl::Status s = Execute(pg ? m.postgres_sql : m.sqlite_sql);
      if (!s.ok()) return base::Annotate(s, absl::StrCat("applying migration ", m.version));
      const std::array<std::optional<std::string>, 1> version = {std::string(m.version)};
      DS_RETURN_IF_ERROR(
          Query(absl::StrCat("INSERT INTO ", tracking_table, " (version) VALUES ($1)"), version)
              .status());
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::unique_ptr<SqlDatabase>> OpenSqliteDatabase(const std::string& path) {
  return SqliteDatabase::Open(path);
}

absl::StatusOr<std::unique_ptr<SqlDatabase>> OpenPostgresDatabase(const std::string& dsn) {
  return PostgresDatabase::Open(dsn);
}

}  // namespace ductstream::store
