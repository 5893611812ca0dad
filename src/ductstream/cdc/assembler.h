#pragma once

// Feeds pgoutput messages to a BatchBuilder in commit order. Ordinary transactions pass straight
// through. The chunks of streamed in-progress transactions (protocol v2+) are either decoded as
// they arrive by SpeculativeStreams, whose batches are labelled and forwarded to the builder at
// Stream Commit, or (without it) held raw in a TxnBuffer and replayed as one ordinary
// transaction at Stream Commit. Both drop what Stream Abort aborts: the builder's sink only ever
// sees committed data.

#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "ductstream/base/lsn.h"
#include "ductstream/cdc/batch_builder.h"
#include "ductstream/cdc/speculative.h"
#include "ductstream/cdc/txn_buffer.h"
#include "ductstream/postgres/pgoutput.h"

namespace ductstream::cdc {

/// Thread-compatible: owned by the replication reader thread with the builder and buffer.
class TransactionAssembler final : private postgres::pgoutput::Handler {
 public:
  /// `speculative` may be null: streamed transactions are then buffered raw in `buffer`.
  TransactionAssembler(int protocol_version, bool parallel_streaming, BatchBuilder& builder,
                       TxnBuffer& buffer, SpeculativeStreams* speculative = nullptr);

  /// One XLogData payload starting at WAL position `wal_start`.
  absl::Status Process(Lsn wal_start, absl::string_view message);

  /// Forgets decoding state and buffered streamed transactions (after a reconnect the server
  /// resends everything not yet confirmed).
  void Reset();

  /// True when a streamed transaction is buffered or a streamed segment is open.
  bool has_open_streams() const {
    return !buffer_.empty() || decoder_.in_stream() ||
           (speculative_ != nullptr && !speculative_->empty());
  }
  const TxnBuffer& buffer() const { return buffer_; }

 private:
  using Handler = postgres::pgoutput::Handler;
  absl::Status OnBegin(const postgres::pgoutput::BeginMessage& msg) override;
  absl::Status OnCommit(const postgres::pgoutput::CommitMessage& msg) override;
  absl::Status OnOrigin(const postgres::pgoutput::OriginMessage& msg) override;
  absl::Status OnRelation(const postgres::pgoutput::RelationMessage& msg) override;
  absl::Status OnType(const postgres::pgoutput::TypeMessage& msg) override;
  absl::Status OnInsert(const postgres::pgoutput::InsertMessage& msg) override;
  absl::Status OnUpdate(const postgres::pgoutput::UpdateMessage& msg) override;
  absl::Status OnDelete(const postgres::pgoutput::DeleteMessage& msg) override;
  absl::Status OnTruncate(const postgres::pgoutput::TruncateMessage& msg) override;
  absl::Status OnMessage(const postgres::pgoutput::LogicalMessage& msg) override;
  absl::Status OnStreamStart(const postgres::pgoutput::StreamStartMessage& msg) override;
  absl::Status OnStreamStop() override;
  absl::Status OnStreamCommit(const postgres::pgoutput::StreamCommitMessage& msg) override;
  absl::Status OnStreamAbort(const postgres::pgoutput::StreamAbortMessage& msg) override;

  int protocol_version_;
  bool parallel_streaming_;
  BatchBuilder& builder_;
  TxnBuffer& buffer_;
  SpeculativeStreams* speculative_;
  postgres::pgoutput::Decoder decoder_;
  Xid stream_xid_;  // top-level transaction of the open streamed segment
};

}  // namespace ductstream::cdc
