#pragma once

// Streamed transactions decoded while they stream.
//
// PostgreSQL (protocol v2+) sends a large in-progress transaction in chunks and announces its
// commit position and time only with Stream Commit, at the very end. Buffering the raw messages
// until then (TxnBuffer) leaves all of the decoding for after the last byte has arrived: for a
// 5-million-row transaction that is several seconds in which nothing reaches a destination.
// SpeculativeStreams instead decodes every chunk into Arrow as it arrives, with a BatchBuilder of
// its own per transaction and placeholder commit labels, and keeps the finished batches (in
// memory up to a budget, then in an unlinked Arrow IPC spill file). Stream Commit only has to
// label them: __commit_lsn and __commit_ts become constant columns, and the rows of aborted
// subtransactions are removed with __seq renumbered, so the result is exactly what decoding the
// surviving messages at commit would have produced. Stream Abort of the whole transaction drops
// it unseen.
//
// Batches of a streamed transaction start at its first row and are cut at max_batch_bytes, as
// in the main builder: a replay rebuilds the same batch starts (overwrite-safe names).
//
// Memory: finished batches of all open streamed transactions are bounded by `memory_limit`
// (the largest transaction's spill first); each transaction's builder also holds up to
// max_batch_bytes of rows being built.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "ductstream/base/ids.h"
#include "ductstream/base/lsn.h"
#include "ductstream/cdc/batch_builder.h"
#include "ductstream/cdc/change_batch.h"
#include "ductstream/postgres/pgoutput.h"

namespace ductstream::cdc {

/// Thread-compatible: owned by the replication reader thread with the assembler.
class SpeculativeStreams {
 public:
  /// `options` configure every transaction's builder (a toast cache is not allowed: it must
  /// see rows in commit order).
  SpeculativeStreams(BuilderOptions options, postgres::TypeLookup lookup, int64_t memory_limit,
                     std::string spill_dir);
  ~SpeculativeStreams();
  SpeculativeStreams(const SpeculativeStreams&) = delete;
  SpeculativeStreams& operator=(const SpeculativeStreams&) = delete;

  /// A data message (Relation, Type, Insert, Update, Delete, Truncate, Message) of top-level
  /// transaction `top`, sent inside a streamed segment at XLogData start `lsn`. `decoder` is
  /// the stream's decoder, inside that segment.
  absl::Status Process(Xid top, Lsn lsn, absl::string_view message,
                       postgres::pgoutput::Decoder& decoder);

  /// Stream Abort: `sub == top` drops the whole transaction, otherwise the rows of `sub`.
  void Abort(Xid top, Xid sub);

  /// True when `top` has been seen (Stream Commit must then go through Commit).
  bool Contains(Xid top) const { return txns_.contains(top.value()); }

  /// Stream Commit of `msg.xid`: calls `relation` with each Relation message the transaction
  /// carried (raw, as sent inside the segment), then `emit` with each of its batches in order,
  /// labelled with the commit; the last one carries the checkpoint (the commit's end LSN).
  absl::Status Commit(const postgres::pgoutput::StreamCommitMessage& msg,
                      const std::function<absl::Status(absl::string_view)>& relation,
                      const BatchSink& emit);

  /// Forgets every open transaction (the connection was lost: the server resends them).
  void Clear();

  /// Called with each batch of a streamed transaction as it is finished, before the
  /// transaction commits (placeholder commit labels): what it returns (null for nothing) is
  /// attached to the labelled batch that Commit emits, unless rows of an aborted
  /// subtransaction had to be cut out, and dropped if the transaction aborts.
  using Stager = std::function<std::shared_ptr<StagedWork>(const ChangeBatch& unlabelled)>;
  void set_stager(Stager stager) { stager_ = std::move(stager); }

  bool empty() const { return txns_.empty(); }
  /// Memory of finished batches not spilled, plus the rows being built.
  int64_t memory_bytes() const;
  /// Bytes ever written to spill files (a statistic).
  int64_t spilled_bytes_total() const { return spilled_bytes_total_; }

 private:
  struct Txn;
  class SpillFile;

  absl::StatusOr<Txn*> Open(Xid top);
  absl::Status SpillLargest();
  absl::Status Spill(Txn& txn);
  void Forget(uint32_t top);

  BuilderOptions options_;
  postgres::TypeLookup lookup_;
  int64_t memory_limit_;
  std::string spill_dir_;
  absl::flat_hash_map<uint32_t, std::unique_ptr<Txn>> txns_;
  int64_t stored_bytes_ = 0;  // finished batches held in memory, all transactions
  Stager stager_;
  bool committing_ = false;  // inside Commit: batches finished now are not staged
  int64_t spilled_bytes_total_ = 0;
};

}  // namespace ductstream::cdc
