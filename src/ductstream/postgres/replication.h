#pragma once

// The logical replication connection: publication and slot management, START_REPLICATION with
// pgoutput, the CopyBoth message loop (XLogData, keepalives) and standby status updates.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ductstream/base/lsn.h"
#include "ductstream/postgres/connection.h"

namespace ductstream::postgres {

/// Quotes an identifier the way PostgreSQL's quote_ident does (always quoting).
std::string QuoteIdent(absl::string_view name);

/// Creates the publication when it does not exist: FOR TABLE `tables` ("schema.table" or
/// "table"), else FOR TABLES IN SCHEMA `schemas`, else FOR ALL TABLES. An existing publication is
/// left as it is. Runs on a regular (SQL) connection.
absl::Status EnsurePublication(Connection& sql, absl::string_view publication,
                               const std::vector<std::string>& tables,
                               const std::vector<std::string>& schemas);

struct SlotState {
  bool created = false;           // true when this call created the slot
  Lsn confirmed_flush;            // where a consumer without checkpoint resumes
  std::optional<int> active_pid;  // a walsender currently streaming from it
};

/// Looks the slot up; creates it (pgoutput) when missing and `create` is set. A missing slot with
/// `create` unset is NotFound saying how to fix it; a slot of another plugin or database is
/// FailedPrecondition. `sql` must be a regular connection, `repl` a replication one.
absl::StatusOr<SlotState> EnsureSlot(Connection& sql, Connection& repl, absl::string_view slot,
                                     bool create);

/// Protocol options for START_REPLICATION, chosen from the server version by ForServer().
struct ProtocolOptions {
  int proto_version = 1;
  std::string streaming;  // "", "on" or "parallel"
  bool binary = false;
  bool messages = false;

  /// The highest protocol the server supports: v1 before PG14; v2 + streaming 'on' on 14-15;
  /// v4 + streaming 'parallel' on 16+; binary and messages on 14+.
  static ProtocolOptions ForServer(int server_version_num);
};

/// One XLogData message: `payload` is a pgoutput message, valid until the next Next() call.
struct XLogData {
  Lsn wal_start;
  Lsn wal_end;
  int64_t send_time = 0;
  absl::string_view payload;
  bool waited = false;  // Next() waited for the socket (false: libpq already held it)
};

/// An open replication stream. Lifecycle: Start → Next* / SendStatus* → [Finish] → destruction.
/// Thread-compatible: one reader thread owns it.
class ReplicationStream {
 public:
  /// Issues START_REPLICATION on `repl` (a kReplication connection) from `start` (0/0 = the
  /// slot's confirmed position). A slot held by another process fails with FailedPrecondition
  /// naming the PID.
  static absl::StatusOr<std::unique_ptr<ReplicationStream>> Start(std::unique_ptr<Connection> repl,
                                                                  absl::string_view slot,
                                                                  absl::string_view publication,
                                                                  Lsn start,
                                                                  const ProtocolOptions& options);
  ~ReplicationStream();

  /// Returns the next XLogData, or nullopt when `timeout` passes without one. Keepalives are
  /// handled here: when the server asks for a reply, a status update with the current
  /// flushed position is sent at once. End of stream is Unavailable (retriable). When
  /// `wake_fd` (an eventfd) becomes readable, it is drained and nullopt returned at once: the
  /// caller has something to do (a checkpoint to acknowledge).
  absl::StatusOr<std::optional<XLogData>> Next(absl::Duration timeout, int wake_fd = -1);

  /// Reports `flushed` as written, flushed and applied: the server may then recycle WAL up to
  /// it. Only ever pass a position that is durably checkpointed.
  absl::Status SendStatus(Lsn flushed, bool reply_requested = false);

  /// Ends the stream cleanly: acknowledges `flushed`, ends the COPY and waits (at most
  /// `timeout`) until the walsender answers, which it does only after it processed every
  /// message before, so the slot's confirmed position is `flushed` when this returns OK.
  /// Whatever the server still sends meanwhile is discarded (it was not acknowledged, so the
  /// next START_REPLICATION sends it again). Without this, closing the socket right after the
  /// last status leaves the walsender to apply it at some later moment. The stream is unusable
  /// afterwards.
  absl::Status Finish(Lsn flushed, absl::Duration timeout);

  Lsn flushed() const { return flushed_; }
  /// The highest server WAL end seen in XLogData or keepalives.
  Lsn server_wal_end() const { return server_wal_end_; }
  const ProtocolOptions& options() const { return options_; }

 private:
  ReplicationStream(std::unique_ptr<Connection> conn, ProtocolOptions options)
      : conn_(std::move(conn)), options_(std::move(options)) {}
  void FreeBuffer();
  /// Waits up to `timeout` for the socket (or `wake_fd`), then lets libpq read what arrived.
  /// True when `wake_fd` woke it (drained).
  absl::StatusOr<bool> WaitForInput(absl::Duration timeout, int wake_fd = -1);

  std::unique_ptr<Connection> conn_;
  ProtocolOptions options_;
  char* buffer_ = nullptr;  // libpq-allocated copy data of the last message
  Lsn flushed_;
  Lsn server_wal_end_;
};

}  // namespace ductstream::postgres
