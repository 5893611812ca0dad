#pragma once

// A minimal SQL seam over the two databases DuctStream keeps state in: SQLite (the embedded
// default) and PostgreSQL (shared by many servers and workers). Stores that must behave the same
// on both (the control store) write their statements once, in the common subset: `$1`-style
// parameters, text values, INSERT ... ON CONFLICT, UPDATE ... RETURNING. Dialect differences
// (types in DDL, the database clock) are asked of the Database.
//
// Not an ORM and not a connection pool: one connection, used under the caller's lock.

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ductstream::store {

enum class SqlDialect { kSqlite, kPostgres };

/// One result row; std::nullopt is SQL NULL. Every value is text.
using SqlRow = std::vector<std::optional<std::string>>;
using SqlParams = std::span<const std::optional<std::string>>;

/// One versioned migration: applied once, in order, with the row recording it, in one
/// transaction.
struct SqlMigration {
  const char* version;
  const char* sqlite_sql;
  const char* postgres_sql;
};

/// One database connection. Thread-compatible: callers serialise access.
class SqlDatabase {
 public:
  virtual ~SqlDatabase() = default;

  virtual SqlDialect dialect() const = 0;
  /// For messages: the file path, or the conninfo with its password masked.
  virtual const std::string& description() const = 0;

  /// Runs one statement with `$1`.. parameters and returns its rows (none for commands).
  /// kUnavailable when the database is unreachable or busy (retriable), kAlreadyExists for a
  /// unique violation, otherwise the database's message.
  virtual absl::StatusOr<std::vector<SqlRow>> Query(absl::string_view sql,
                                                    SqlParams params = {}) = 0;
  /// Runs statements without parameters (may be several, separated by ';').
  virtual absl::Status Execute(absl::string_view sql) = 0;

  /// Starts a transaction that holds the database's write lock from its first statement, so a
  /// read followed by a write is atomic against other processes (SQLite BEGIN IMMEDIATE,
  /// PostgreSQL rows locked with FOR UPDATE by the caller or a conditional write).
  virtual absl::Status Begin() = 0;
  virtual absl::Status Commit() = 0;
  /// Best effort; errors are ignored (the transaction is gone either way).
  virtual void Rollback() = 0;

  /// An SQL expression for the database's current time in Unix milliseconds (an integer).
  /// Using the database clock keeps leases consistent across machines.
  virtual const char* NowMillisSql() const = 0;

  /// Applies `migrations` not yet recorded in `tracking_table`, under a lock that serialises
  /// every process migrating the same database (PostgreSQL advisory lock, SQLite write lock).
  /// Refuses a database migrated by a newer build (a recorded version this build does not know).
  absl::Status Migrate(absl::string_view tracking_table, std::span<const SqlMigration> migrations);
};

/// Opens (creating it and its directory when missing) a SQLite database in WAL mode, with a busy
/// timeout so that several processes can share it.
absl::StatusOr<std::unique_ptr<SqlDatabase>> OpenSqliteDatabase(const std::string& path);

/// Connects to PostgreSQL (conninfo or URI).
absl::StatusOr<std::unique_ptr<SqlDatabase>> OpenPostgresDatabase(const std::string& dsn);

/// Runs `body` in a transaction: Begin, body, Commit; Rollback when any step fails.
template <typename Fn>
absl::Status InTransaction(SqlDatabase& db, Fn&& body) {
  if (absl::Status s = db.Begin(); !s.ok()) return s;
  absl::Status s = body();
  if (s.ok()) s = db.Commit();
  if (!s.ok()) db.Rollback();
  return s;
}

}  // namespace ductstream::store
