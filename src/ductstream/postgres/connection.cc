#include "ductstream/postgres/connection.h"

#include <libpq-fe.h>

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ductstream/base/redact.h"
#include "ductstream/base/status.h"

namespace ductstream::postgres {

void ResultDeleter::operator()(PGresult* result) const { PQclear(result); }

absl::StatusCode StatusCodeForSqlState(absl::string_view sqlstate) {
  if (sqlstate.size() != 5) return absl::StatusCode::kUnknown;
  const absl::string_view cls = sqlstate.substr(0, 2);
  if (cls == "08") return absl::StatusCode::kUnavailable;  // connection exception
  if (sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03") {
    return absl::StatusCode::kUnavailable;  // shutdown, crash, cannot connect now
  }
  if (sqlstate == "57014") return absl::StatusCode::kCancelled;  // query_canceled
  if (sqlstate == "40001" || sqlstate == "40P01") return absl::StatusCode::kAborted;
  if (cls == "53") return absl::StatusCode::kResourceExhausted;           // insufficient resources
  if (sqlstate == "55006") return absl::StatusCode::kFailedPrecondition;  // object_in_use
  if (sqlstate == "42704" || sqlstate == "42P01" || sqlstate == "3D000") {
    return absl::StatusCode::kNotFound;  // undefined object / table / database
  }
  if (sqlstate == "42710" || sqlstate == "42P07") return absl::StatusCode::kAlreadyExists;
  if (sqlstate == "42501" || cls == "28") return absl::StatusCode::kPermissionDenied;
  if (cls == "22" || cls == "23" || cls == "42") return absl::StatusCode::kInvalidArgument;
  if (cls == "55") return absl::StatusCode::kFailedPrecondition;
  return absl::StatusCode::kInternal;
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::Connect(absl::string_view conninfo,
                                                                Mode mode) {
  std::string dsn(conninfo);
  // expand_dbname=1: `dbname` may itself be a full conninfo string or URI; later keys override.
  std::vector<const char*> keys = {"dbname", "fallback_application_name"};
  std::vector<const char*> values = {dsn.c_str(), "ductstream"};
  if (mode == Mode::kReplication) {
    keys.push_back("replication");
    values.push_back("database");
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* conn = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
  std::string redacted = base::RedactDsn(conninfo);
  if (conn == nullptr) return absl::ResourceExhaustedError("libpq could not allocate a connection");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = absl::StripAsciiWhitespace(PQerrorMessage(conn)).operator std::string();
    PQfinish(conn);
    // Authentication failures are not worth retrying; everything else (refused, timeouts,
    // server starting up) is.
    const bool auth = message.find("authentication failed") != std::string::npos ||
                      message.find("password") != std::string::npos ||
                      message.find("no pg_hba.conf entry") != std::string::npos;
    return absl::Status(auth ? absl::StatusCode::kPermissionDenied : absl::StatusCode::kUnavailable,
                        absl::StrCat("connecting to PostgreSQL (", redacted, "): ", message));
  }
  return std::unique_ptr<Connection>(new Connection(conn, std::move(redacted)));
}

Connection::~Connection() { PQfinish(conn_); }

int Connection::server_version() const { return PQserverVersion(conn_); }

absl::StatusOr<Result> Connection::CheckResult(PGresult* raw, absl::string_view sql) {
  Result result(raw);
  if (result == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("running '", sql, "': ", absl::StripAsciiWhitespace(PQerrorMessage(conn_))));
  }
  switch (PQresultStatus(result.get())) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_COPY_BOTH:
    case PGRES_COPY_OUT:
    case PGRES_COPY_IN:
      return result;
    default:
      break;
  }
  const char* sqlstate = PQresultErrorField(result.get(), PG_DIAG_SQLSTATE);
  absl::StatusCode code =
      sqlstate != nullptr ? StatusCodeForSqlState(sqlstate) : absl::StatusCode::kUnavailable;
  if (PQstatus(conn_) != CONNECTION_OK) code = absl::StatusCode::kUnavailable;
  std::string message(absl::StripAsciiWhitespace(PQresultErrorMessage(result.get())));
  return absl::Status(
      code, absl::StrCat("running '", sql, "': ", message,
                         sqlstate != nullptr ? absl::StrCat(" (SQLSTATE ", sqlstate, ")") : ""));
}

absl::StatusOr<Result> Connection::Exec(absl::string_view sql) {
  std::string query(sql);
  return CheckResult(PQexec(conn_, query.c_str()), sql);
}

absl::StatusOr<Result> Connection::ExecParams(absl::string_view sql,
                                              std::span<const std::optional<std::string>> params,
                                              bool binary_results) {
  std::string query(sql);
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  return CheckResult(PQexecParams(conn_, query.c_str(), static_cast<int>(values.size()), nullptr,
                                  values.data(), nullptr, nullptr, binary_results ? 1 : 0),
                     sql);
}

absl::StatusOr<std::string> Connection::QueryValue(absl::string_view sql) {
  DS_ASSIGN_OR_RETURN(Result result, Exec(sql));
  if (PQntuples(result.get()) != 1 || PQnfields(result.get()) != 1) {
    return absl::InternalError(absl::StrCat("'", sql, "' returned ", PQntuples(result.get()),
                                            " rows of ", PQnfields(result.get()),
                                            " columns; expected one value"));
  }
  if (PQgetisnull(result.get(), 0, 0)) {
    return absl::InternalError(absl::StrCat("'", sql, "' returned NULL"));
  }
  return std::string(PQgetvalue(result.get(), 0, 0));
}

std::optional<absl::string_view> GetValue(const Result& result, int row, int col) {
  if (PQgetisnull(result.get(), row, col)) return std::nullopt;
  return absl::string_view(PQgetvalue(result.get(), row, col),
                           static_cast<size_t>(PQgetlength(result.get(), row, col)));
}

int RowCount(const Result& result) { return PQntuples(result.get()); }

absl::StatusOr<SystemIdentity> IdentifySystem(Connection& conn) {
  DS_ASSIGN_OR_RETURN(Result result, conn.Exec("IDENTIFY_SYSTEM"));
  if (PQntuples(result.get()) != 1 || PQnfields(result.get()) < 4) {
    return absl::InternalError(absl::StrCat("IDENTIFY_SYSTEM returned ", PQntuples(result.get()),
                                            " rows of ", PQnfields(result.get()),
                                            " columns; expected 1 row of 4"));
  }
  SystemIdentity id;
  id.system_id = std::string(GetValue(result, 0, 0).value_or(""));
  if (!absl::SimpleAtoi(GetValue(result, 0, 1).value_or(""), &id.timeline)) {
    return absl::InternalError("IDENTIFY_SYSTEM returned a non-numeric timeline");
  }
  DS_ASSIGN_OR_RETURN(id.xlogpos, Lsn::Parse(GetValue(result, 0, 2).value_or("")));
  id.dbname = std::string(GetValue(result, 0, 3).value_or(""));
  return id;
}

}  // namespace ductstream::postgres
