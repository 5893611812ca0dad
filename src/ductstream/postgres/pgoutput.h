#pragma once

// Decoder of the pgoutput logical replication protocol (protocol versions 1-4), the payload of
// XLogData messages on a `START_REPLICATION ... LOGICAL` stream. See PostgreSQL's "Logical
// Replication Message Formats". Tuple cell values are views into the message buffer: they are
// valid only during the handler call that receives them.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "ductstream/base/ids.h"
#include "ductstream/base/lsn.h"

namespace ductstream::postgres::pgoutput {

/// Microseconds since 2000-01-01 00:00:00 UTC, PostgreSQL's TimestampTz.
using PgTimestamp = int64_t;
/// Converts a PgTimestamp to microseconds since the Unix epoch.
constexpr int64_t PgTimestampToUnixMicros(PgTimestamp ts) { return ts + 946684800000000LL; }

enum class ReplicaIdentity : char {
  kDefault = 'd',  // primary key
  kNothing = 'n',
  kFull = 'f',
  kIndex = 'i',
};

struct RelationColumn {
  bool is_key = false;  // part of the replica identity
  std::string name;
  Oid type_oid;
  int32_t type_modifier = -1;
};

/// One cell of a tuple. kUnchangedToast means "this TOASTed value did not change and was not
/// sent" — different from NULL.
enum class CellKind : char {
  kNull = 'n',
  kUnchangedToast = 'u',
  kText = 't',
  kBinary = 'b',
};

struct Cell {
  CellKind kind = CellKind::kNull;
  absl::string_view data;  // for kText / kBinary
};

struct BeginMessage {
  Lsn final_lsn;  // LSN of the commit record
  PgTimestamp commit_time = 0;
  Xid xid;
};

struct CommitMessage {
  uint8_t flags = 0;
  Lsn commit_lsn;  // LSN of the commit record
  Lsn end_lsn;     // end of the transaction's commit record: the checkpoint position
  PgTimestamp commit_time = 0;
};

struct OriginMessage {
  Lsn commit_lsn;
  std::string name;
};

struct RelationMessage {
  Xid xid;  // set inside a streamed transaction, else 0
  Oid relation_id;
  std::string schema;
  std::string name;
  ReplicaIdentity replica_identity = ReplicaIdentity::kDefault;
  std::vector<RelationColumn> columns;
};

struct TypeMessage {
  Xid xid;
  Oid type_oid;
  std::string schema;
  std::string name;
};

struct InsertMessage {
  Xid xid;
  Oid relation_id;
  std::vector<Cell> new_tuple;
};

/// What an Update or Delete carries of the old row: nothing, the replica identity key columns
/// ('K', other cells NULL), or the whole old row ('O', REPLICA IDENTITY FULL).
enum class OldTupleKind : char { kNone = 0, kKey = 'K', kOld = 'O' };

struct UpdateMessage {
  Xid xid;
  Oid relation_id;
  OldTupleKind old_kind = OldTupleKind::kNone;
  std::vector<Cell> old_tuple;
  std::vector<Cell> new_tuple;
};

struct DeleteMessage {
  Xid xid;
  Oid relation_id;
  OldTupleKind old_kind = OldTupleKind::kKey;
  std::vector<Cell> old_tuple;
};

struct TruncateMessage {
  Xid xid;
  bool cascade = false;
  bool restart_identity = false;
  std::vector<Oid> relation_ids;
};

struct LogicalMessage {
  Xid xid;
  bool transactional = false;
  Lsn lsn;
  std::string prefix;
  absl::string_view content;
};

struct StreamStartMessage {
  Xid xid;
  bool first_segment = false;
};

struct StreamCommitMessage {
  Xid xid;
  uint8_t flags = 0;
  Lsn commit_lsn;
  Lsn end_lsn;
  PgTimestamp commit_time = 0;
};

struct StreamAbortMessage {
  Xid xid;                                // top-level transaction
  Xid subxid;                             // equal to xid when the whole transaction aborted
  std::optional<Lsn> abort_lsn;           // protocol 4 with parallel streaming
  std::optional<PgTimestamp> abort_time;  // protocol 4 with parallel streaming
};

/// Receives decoded messages. Any error stops decoding and is returned by Decoder::Decode.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual absl::Status OnBegin(const BeginMessage& msg) = 0;
  virtual absl::Status OnCommit(const CommitMessage& msg) = 0;
  virtual absl::Status OnOrigin(const OriginMessage& msg) = 0;
  virtual absl::Status OnRelation(const RelationMessage& msg) = 0;
  virtual absl::Status OnType(const TypeMessage& msg) = 0;
  virtual absl::Status OnInsert(const InsertMessage& msg) = 0;
  virtual absl::Status OnUpdate(const UpdateMessage& msg) = 0;
  virtual absl::Status OnDelete(const DeleteMessage& msg) = 0;
  virtual absl::Status OnTruncate(const TruncateMessage& msg) = 0;
  virtual absl::Status OnMessage(const LogicalMessage& msg) = 0;
  virtual absl::Status OnStreamStart(const StreamStartMessage& msg) = 0;
  virtual absl::Status OnStreamStop() = 0;
  virtual absl::Status OnStreamCommit(const StreamCommitMessage& msg) = 0;
  virtual absl::Status OnStreamAbort(const StreamAbortMessage& msg) = 0;
};

/// Decodes one pgoutput message at a time. Tracks whether a streamed-transaction segment is
/// open, because inside one every data message carries the transaction id.
/// Thread-compatible.
class Decoder {
 public:
  /// `protocol_version` is the proto_version requested in START_REPLICATION (1-4);
  /// `parallel_streaming` is true when streaming 'parallel' was requested (v4), which adds the
  /// abort LSN and time to Stream Abort.
  explicit Decoder(int protocol_version, bool parallel_streaming = false)
      : protocol_version_(protocol_version), parallel_streaming_(parallel_streaming) {}

  /// Decodes `message` (the XLogData payload) and calls the matching handler method. Malformed
  /// input is an InvalidArgument error naming the message type and what was wrong.
  absl::Status Decode(absl::string_view message, Handler& handler);

  bool in_stream() const { return in_stream_; }

 private:
  int protocol_version_;
  bool parallel_streaming_;
  bool in_stream_ = false;
  // Reused across messages so that steady-state decoding does not allocate per row.
  InsertMessage insert_;
  UpdateMessage update_;
  DeleteMessage delete_;
};

}  // namespace ductstream::postgres::pgoutput
