#include "ductstream/postgres/replication.h"

#include <libpq-fe.h>
#include <sys/select.h>

#include <unistd.h>
#include <cerrno>

#include <algorithm>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "ductstream/base/status.h"

namespace ductstream::postgres {
namespace {

constexpr int64_t kPgEpochOffsetMicros = 946684800000000LL;

uint64_t ReadBig(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

void WriteBig(std::string& out, uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

int64_t NowPgMicros() { return absl::ToUnixMicros(absl::Now()) - kPgEpochOffsetMicros; }

// "schema.table" → "schema"."table"; "table" → "table".
std::string QualifiedName(absl::string_view name) {
  std::vector<absl::string_view> parts = absl::StrSplit(name, absl::MaxSplits('.', 1));
  if (parts.size() == 2) return absl::StrCat(QuoteIdent(parts[0]), ".", QuoteIdent(parts[1]));
  return QuoteIdent(name);
}

}  // namespace

std::string QuoteIdent(absl::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

absl::Status EnsurePublication(Connection& sql, absl::string_view publication,
                               const std::vector<std::string>& tables,
                               const std::vector<std::string>& schemas) {
  std::vector<std::optional<std::string>> params = {std::string(publication)};
  DS_ASSIGN_OR_RETURN(Result existing,
                      sql.ExecParams("SELECT 1 FROM pg_publication WHERE pubname = $1", params));
  if (RowCount(existing) > 0) return absl::OkStatus();
  std::string ddl = absl::StrCat("CREATE PUBLICATION ", QuoteIdent(publication));
  if (!tables.empty()) {
    std::vector<std::string> quoted;
    for (const auto& t : tables) quoted.push_back(QualifiedName(t));
    absl::StrAppend(&ddl, " FOR TABLE ", absl::StrJoin(quoted, ", "));
  } else if (!schemas.empty()) {
    std::vector<std::string> quoted;
    for (const auto& s : schemas) quoted.push_back(QuoteIdent(s));
    absl::StrAppend(&ddl, " FOR TABLES IN SCHEMA ", absl::StrJoin(quoted, ", "));
  } else {
    absl::StrAppend(&ddl, " FOR ALL TABLES");
  }
  auto created = sql.Exec(ddl);
  // Another worker may have created it between our check and our CREATE: that is fine.
  if (!created.ok() && created.status().code() != absl::StatusCode::kAlreadyExists) {
    return base::Annotate(created.status(), absl::StrCat("creating publication ", publication));
  }
  return absl::OkStatus();
}

absl::StatusOr<SlotState> EnsureSlot(Connection& sql, Connection& repl, absl::string_view slot,
                                     bool create) {
  std::vector<std::optional<std::string>> params = {std::string(slot)};
  DS_ASSIGN_OR_RETURN(Result r,
                      sql.ExecParams("SELECT plugin, database = current_database(), "
                                     "confirmed_flush_lsn, active_pid FROM pg_replication_slots "
                                     "WHERE slot_name = $1",
                                     params));
  SlotState state;
  if (RowCount(r) == 1) {
    const std::string plugin(GetValue(r, 0, 0).value_or(""));
    if (plugin != "pgoutput") {
      return absl::FailedPreconditionError(
          absl::StrCat("replication slot '", slot, "' uses plugin '", plugin,
                       "', not pgoutput: drop it (SELECT pg_drop_replication_slot('", slot,
                       "')) or choose another slot name"));
    }
    if (GetValue(r, 0, 1).value_or("f") != "t") {
      return absl::FailedPreconditionError(absl::StrCat(
          "replication slot '", slot, "' belongs to another database: choose another slot name"));
    }
    if (auto lsn = GetValue(r, 0, 2)) {
      DS_ASSIGN_OR_RETURN(state.confirmed_flush, Lsn::Parse(*lsn));
    }
    int pid = 0;
    if (auto p = GetValue(r, 0, 3); p && absl::SimpleAtoi(*p, &pid)) state.active_pid = pid;
    return state;
  }
  if (!create) {
    return absl::NotFoundError(
        absl::StrCat("replication slot '", slot,
                     "' does not exist: set the source option create_slot=true, "
                     "or create it with SELECT pg_create_logical_replication_slot('",
                     slot, "', 'pgoutput')"));
  }
  auto created = repl.Exec(absl::StrCat("CREATE_REPLICATION_SLOT ", QuoteIdent(slot),
                                        " LOGICAL pgoutput NOEXPORT_SNAPSHOT"));
  if (!created.ok()) {
    if (created.status().code() == absl::StatusCode::kAlreadyExists) {
      return EnsureSlot(sql, repl, slot, /*create=*/false);  // lost a creation race: use it
    }
    return base::Annotate(created.status(), absl::StrCat("creating replication slot ", slot));
  }
  state.created = true;
  // Columns: slot_name, consistent_point, snapshot_name, output_plugin.
  DS_ASSIGN_OR_RETURN(state.confirmed_flush, Lsn::Parse(GetValue(*created, 0, 1).value_or("")));
  return state;
}

ProtocolOptions ProtocolOptions::ForServer(int server_version_num) {
  ProtocolOptions o;
  if (server_version_num >= 160000) {
    o.proto_version = 4;
    o.streaming = "parallel";
  } else if (server_version_num >= 140000) {
    o.proto_version = 2;
    o.streaming = "on";
  }
  o.binary = server_version_num >= 140000;
  o.messages = server_version_num >= 140000;
  return o;
}

absl::StatusOr<std::unique_ptr<ReplicationStream>> ReplicationStream::Start(
    std::unique_ptr<Connection> repl, absl::string_view slot, absl::string_view publication,
    Lsn start, const ProtocolOptions& options) {
  // publication_names is a string literal holding a list of identifiers.
  std::string pub_literal = QuoteIdent(publication);
  std::string escaped;
  for (char c : pub_literal) {
    if (c == '\'') escaped += '\'';
    escaped += c;
  }
  std::string cmd = absl::StrCat("START_REPLICATION SLOT ", QuoteIdent(slot), " LOGICAL ",
                                 start.ToString(), " (proto_version '", options.proto_version,
                                 "', publication_names '", escaped, "'");
  if (!options.streaming.empty()) absl::StrAppend(&cmd, ", streaming '", options.streaming, "'");
  if (options.binary) absl::StrAppend(&cmd, ", binary 'true'");
  if (options.messages) absl::StrAppend(&cmd, ", messages 'true'");
  absl::StrAppend(&cmd, ")");
  auto result = repl->Exec(cmd);
  if (!result.ok()) {
    absl::Status s = result.status();
    if (s.code() == absl::StatusCode::kFailedPrecondition &&
        s.message().find("is active for PID") != absl::string_view::npos) {
      return absl::FailedPreconditionError(
          absl::StrCat(s.message(),
                       ". Another consumer holds the slot: stop that process (or run "
                       "SELECT pg_terminate_backend(<pid>) if it is stale) and retry"));
    }
    return s;
  }
  if (PQresultStatus(result->get()) != PGRES_COPY_BOTH) {
    return absl::InternalError(absl::StrCat("START_REPLICATION did not enter COPY BOTH mode"));
  }
  std::unique_ptr<ReplicationStream> stream(new ReplicationStream(std::move(repl), options));
  stream->flushed_ = start;
  return stream;
}

ReplicationStream::~ReplicationStream() { FreeBuffer(); }

void ReplicationStream::FreeBuffer() {
  if (buffer_ != nullptr) PQfreemem(buffer_);
  buffer_ = nullptr;
}

absl::StatusOr<bool> ReplicationStream::WaitForInput(absl::Duration timeout, int wake_fd) {
  PGconn* conn = conn_->raw();
  const int fd = PQsocket(conn);
  fd_set readable;
  FD_ZERO(&readable);
  FD_SET(fd, &readable);
  if (wake_fd >= 0) FD_SET(wake_fd, &readable);
  timeval tv = absl::ToTimeval(timeout);
  const int rc = select(std::max(fd, wake_fd) + 1, &readable, nullptr, nullptr, &tv);
  if (rc < 0 && errno != EINTR) {
    return absl::UnavailableError(
        absl::StrCat("waiting for the walsender: ", std::strerror(errno)));
  }
  if (rc > 0 && wake_fd >= 0 && FD_ISSET(wake_fd, &readable)) {
    uint64_t count;
    (void)::read(wake_fd, &count, sizeof count);
    return true;
  }
  if (rc > 0 && PQconsumeInput(conn) == 0) {
    return absl::UnavailableError(
        absl::StrCat("reading from the walsender: ", PQerrorMessage(conn)));
  }
  return false;
}

absl::StatusOr<std::optional<XLogData>> ReplicationStream::Next(absl::Duration timeout,
                                                                int wake_fd) {
  FreeBuffer();
  PGconn* conn = conn_->raw();
  std::optional<absl::Time> deadline;  // read the clock only when there is something to wait for
  for (;;) {
    int len = PQgetCopyData(conn, &buffer_, /*async=*/1);
    if (len == 0) {
      // Nothing buffered: wait for the socket, then let libpq read.
      if (!deadline.has_value()) deadline = absl::Now() + timeout;
      const absl::Duration left = *deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return std::nullopt;
      DS_ASSIGN_OR_RETURN(const bool woken, WaitForInput(left, wake_fd));
      if (woken) return std::nullopt;
      continue;
    }
    if (len == -1) {
      // The server ended the COPY: fetch the final result for its reason.
      PGresult* res = PQgetResult(conn);
      std::string why = res != nullptr ? PQresultErrorMessage(res) : "";
      if (res != nullptr) PQclear(res);
      return absl::UnavailableError(
          absl::StrCat("replication stream ended by the server", why.empty() ? "" : ": ", why));
    }
    if (len < 0) {
      return absl::UnavailableError(
          absl::StrCat("replication stream failed: ", PQerrorMessage(conn)));
    }
    const char* p = buffer_;
    if (p[0] == 'w') {
      if (len < 25) return absl::InvalidArgumentError("XLogData message shorter than its header");
      XLogData data;
      data.wal_start = Lsn(ReadBig(p + 1, 8));
      data.wal_end = Lsn(ReadBig(p + 9, 8));
      data.send_time = static_cast<int64_t>(ReadBig(p + 17, 8));
      data.payload = absl::string_view(p + 25, static_cast<size_t>(len - 25));
      data.waited = deadline.has_value();
      if (data.wal_end > server_wal_end_) server_wal_end_ = data.wal_end;
      return data;
    }
    if (p[0] == 'k') {
      if (len < 18) return absl::InvalidArgumentError("keepalive message too short");
      Lsn wal_end(ReadBig(p + 1, 8));
      if (wal_end > server_wal_end_) server_wal_end_ = wal_end;
      const bool reply = p[17] != 0;
      FreeBuffer();
      if (reply) DS_RETURN_IF_ERROR(SendStatus(flushed_));
      continue;
    }
    return absl::InvalidArgumentError(
        absl::StrCat("unknown replication message type ", static_cast<int>(p[0])));
  }
}

absl::Status ReplicationStream::SendStatus(Lsn flushed, bool reply_requested) {
  if (flushed > flushed_) flushed_ = flushed;
  std::string msg = "r";
  WriteBig(msg, flushed_.value(), 8);  // written
  WriteBig(msg, flushed_.value(), 8);  // flushed
  WriteBig(msg, flushed_.value(), 8);  // applied
  WriteBig(msg, static_cast<uint64_t>(NowPgMicros()), 8);
  msg += static_cast<char>(reply_requested ? 1 : 0);
  PGconn* conn = conn_->raw();
  if (PQputCopyData(conn, msg.data(), static_cast<int>(msg.size())) != 1 || PQflush(conn) != 0) {
    return absl::UnavailableError(absl::StrCat("sending standby status: ", PQerrorMessage(conn)));
  }
  return absl::OkStatus();
}

absl::Status ReplicationStream::Finish(Lsn flushed, absl::Duration timeout) {
  FreeBuffer();
  DS_RETURN_IF_ERROR(SendStatus(flushed));
  PGconn* conn = conn_->raw();
  if (PQputCopyEnd(conn, nullptr) != 1 || PQflush(conn) != 0) {
    return absl::UnavailableError(
        absl::StrCat("ending the replication COPY: ", PQerrorMessage(conn)));
  }
  const absl::Time deadline = absl::Now() + timeout;
  auto read_more = [&]() -> absl::Status {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat("the walsender did not end the COPY within ",
                                                      absl::FormatDuration(timeout)));
    }
    return WaitForInput(left).status();
  };
  for (;;) {
    char* data = nullptr;
    const int len = PQgetCopyData(conn, &data, /*async=*/1);
    if (data != nullptr) PQfreemem(data);
    if (len > 0) continue;  // sent before the walsender saw our CopyDone: not acknowledged
    if (len == -1) break;   // the walsender's CopyDone
    if (len < -1) {
      return absl::UnavailableError(
          absl::StrCat("ending the replication COPY: ", PQerrorMessage(conn)));
    }
    DS_RETURN_IF_ERROR(read_more());
  }
  // START_REPLICATION's own result (CommandComplete, or the error that ended it).
  absl::Status status;
  for (;;) {
    while (PQisBusy(conn)) DS_RETURN_IF_ERROR(read_more());
    PGresult* res = PQgetResult(conn);
    if (res == nullptr) break;
    if (PQresultStatus(res) == PGRES_FATAL_ERROR && status.ok()) {
      status = absl::UnavailableError(
          absl::StrCat("the walsender ended the COPY with: ", PQresultErrorMessage(res)));
    }
    PQclear(res);
  }
  return status;
}

}  // namespace ductstream::postgres
