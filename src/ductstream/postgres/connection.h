#pragma once

// RAII over libpq: connections (regular and replication) and results, with errors mapped to
// absl::Status codes that IsRetriable() understands.

#include <memory>
#include <optional>
#include <span>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "ductstream/base/lsn.h"

// libpq's own opaque types; libpq-fe.h stays out of our headers.
typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

namespace ductstream::postgres {

struct ResultDeleter {
  void operator()(PGresult* result) const;
};
/// An owned query result.
using Result = std::unique_ptr<PGresult, ResultDeleter>;

/// Maps a SQLSTATE (e.g. "08006") to a status code: connection and shutdown classes are
/// kUnavailable (retriable), serialization failures and deadlocks kAborted, missing objects
/// kNotFound, "object in use" (a replication slot held elsewhere) kFailedPrecondition, ...
absl::StatusCode StatusCodeForSqlState(absl::string_view sqlstate);

/// One libpq connection. Lifecycle: Connect → Exec* → destruction closes it.
/// Thread-compatible: use from one thread at a time.
class Connection {
 public:
  enum class Mode { kRegular, kReplication };

  /// Connects with a libpq conninfo string or URI. kReplication adds `replication=database`
  /// (walsender with SQL access to one database). The password never appears in errors.
  static absl::StatusOr<std::unique_ptr<Connection>> Connect(absl::string_view conninfo,
                                                             Mode mode = Mode::kRegular);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Runs one statement (simple query protocol; also for replication commands). Succeeds for
  /// commands and row-returning queries; otherwise the server's message and SQLSTATE.
  absl::StatusOr<Result> Exec(absl::string_view sql);
  /// Runs one statement with text parameters ($1, $2, ...); std::nullopt is SQL NULL. With
  /// `binary_results` the values come back in each type's binary send format (as pgoutput sends
  /// them with `binary 'true'` and COPY BINARY does), otherwise as text.
  absl::StatusOr<Result> ExecParams(absl::string_view sql,
                                    std::span<const std::optional<std::string>> params,
                                    bool binary_results = false);
  /// Runs a query returning exactly one row and column; NULL is an error.
  absl::StatusOr<std::string> QueryValue(absl::string_view sql);

  /// Server version as libpq reports it, e.g. 150020 for 15.20.
  int server_version() const;
  /// The conninfo with the password masked, for messages.
  const std::string& redacted_conninfo() const { return redacted_conninfo_; }
  PGconn* raw() const { return conn_; }

 private:
  Connection(PGconn* conn, std::string redacted)
      : conn_(conn), redacted_conninfo_(std::move(redacted)) {}
  absl::StatusOr<Result> CheckResult(PGresult* result, absl::string_view sql);

  PGconn* conn_;
  std::string redacted_conninfo_;
};

/// The answer to IDENTIFY_SYSTEM on a replication connection.
struct SystemIdentity {
  std::string system_id;
  int timeline = 0;
  Lsn xlogpos;
  std::string dbname;
};

/// Runs IDENTIFY_SYSTEM; requires a kReplication connection.
absl::StatusOr<SystemIdentity> IdentifySystem(Connection& conn);

/// Cell accessors for a result: value of (row, col) as text, or nullopt for NULL.
std::optional<absl::string_view> GetValue(const Result& result, int row, int col);
int RowCount(const Result& result);

}  // namespace ductstream::postgres
