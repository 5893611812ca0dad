#pragma once

// Turns decoded pgoutput messages into ChangeBatches (layout in change_batch.h): one Arrow
// record batch per relation, values decoded straight into Arrow builders by the value codec.
//
// Batching rules (DESIGN.md §2 invariant 3):
//  - a batch ends at a transaction boundary once it holds `batch_rows` rows or `max_batch_bytes`
//    bytes, or when the owner calls Flush() (batch_timeout, shutdown);
//  - a transaction larger than `max_batch_bytes` is cut into several batches. Before the first cut
//    the complete transactions ahead of it are emitted as their own batch (the record batches are
//    sliced, not copied), so every batch either starts at a transaction start or continues one
//    transaction at a size-determined row: a replay from the checkpoint rebuilds the same batch
//    starts, which is what makes destination names derived from them overwrite-safe;
//  - only a batch that completes a transaction carries a checkpoint (the commit's end LSN).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <arrow/api.h>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "ductstream/base/lsn.h"
#include "ductstream/cdc/change_batch.h"
#include "ductstream/cdc/toast_cache.h"
#include "ductstream/postgres/pgoutput.h"
#include "ductstream/postgres/type_codec.h"

namespace ductstream::cdc {

struct BuilderOptions {
  /// Soft: the batch is emitted at the first commit at or past this many rows.
  int64_t batch_rows = 10000;
  /// Hard: past this many bytes the batch is emitted, inside a transaction if need be.
  int64_t max_batch_bytes = 32 << 20;
  arrow::MemoryPool* pool = arrow::default_memory_pool();
  /// toast_fill cache or source: an update's unchanged TOAST cells are filled from its before
  /// image when that holds the whole old row (REPLICA IDENTITY FULL logs it with TOASTed
  /// values inlined), at no cost.
  bool toast_fill_from_before = false;
  /// toast_fill=cache: memory of the ToastCache that fills the other unchanged TOAST cells
  /// (0 = no cache).
  int64_t toast_cache_bytes = 0;
};

/// Receives finished batches, in WAL order. An error stops the builder (the caller fails).
using BatchSink = std::function<absl::Status(ChangeBatch batch)>;

/// Thread-compatible: owned by the replication reader thread.
class BatchBuilder final : public postgres::pgoutput::Handler {
 public:
  BatchBuilder(BuilderOptions options, postgres::TypeLookup lookup, BatchSink sink);
  ~BatchBuilder() override;

  /// The XLogData start of the message about to be decoded: becomes the change's __lsn.
  void set_message_lsn(Lsn lsn) { message_lsn_ = lsn; }

  /// Emits what is pending when not inside a transaction: rows, or only a newer checkpoint (an
  /// empty batch that lets the checkpoint follow commits that touched nothing published).
  absl::Status Flush();

  /// Streaming (re)starts at `position` (the checkpoint): nothing before it is ever emitted as a
  /// checkpoint again, e.g. a keepalive from a walsender that starts at the slot's older
  /// confirmed position.
  void StartAt(Lsn position);

  /// An idle flow: when nothing is pending and no transaction is open, lets the checkpoint move
  /// to `server_lsn` (a keepalive's WAL position) so the slot does not retain WAL forever.
  absl::Status AdvanceIdle(Lsn server_lsn);

  /// Flush(), with the checkpoint at `server_lsn` (the WAL position of the server's latest
  /// message) when that is beyond the last commit. Between transactions every change the server
  /// decoded before that position has arrived: the walsender sends a transaction when it decodes
  /// its commit, before it moves past it. So the batch that ends a burst also covers the WAL
  /// after its last commit, instead of a separate AdvanceIdle a period later. Does nothing inside
  /// a transaction; the caller must not pass a position while a streamed transaction is open.
  absl::Status FlushThrough(Lsn server_lsn);

  /// Drops the rows of a transaction that will never commit here (connection lost): the server
  /// sends it again from its start. Complete transactions stay pending.
  void DiscardOpenTransaction();

  /// Hands `batch`, built elsewhere (a streamed transaction decoded while it streamed:
  /// speculative.h), to the sink as if this builder had built it; its checkpoint becomes this
  /// builder's. Only with nothing pending (Flush first) and no transaction open.
  absl::Status Forward(ChangeBatch batch);

  bool in_transaction() const { return in_txn_; }
  /// __seq of the next change of the open transaction.
  int64_t next_seq() const { return txn_seq_; }
  /// True when complete transactions (or a newer checkpoint) await Flush().
  bool has_pending() const;
  /// End LSN of the last transaction handed to the sink (complete).
  Lsn emitted_checkpoint() const { return emitted_checkpoint_; }
  /// End LSN of the last committed transaction seen.
  Lsn committed() const { return committed_end_; }
  int64_t pending_bytes() const { return batch_bytes_; }
  /// The toast_fill cache, or null without one.
  const ToastCache* toast_cache() const { return toast_cache_.get(); }
  /// Unchanged TOAST cells filled in (from before images or the cache) since construction.
  int64_t toast_filled() const { return toast_filled_; }

  // pgoutput::Handler
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

 private:
  class RelationBuilder;

 public:
  struct Part;  // a finished (possibly retired) relation batch awaiting emission

 private:
  absl::StatusOr<RelationBuilder*> Find(Oid relation_id, absl::string_view what);
  absl::Status AfterRow(RelationBuilder& rel);
  absl::Status CutInsideTransaction();
  absl::Status Emit(std::vector<Part> parts, Lsn checkpoint);
  absl::Status FinishAll(std::vector<Part>& parts);

  BuilderOptions options_;
  postgres::TypeLookup lookup_;
  BatchSink sink_;
  absl::flat_hash_map<uint32_t, std::unique_ptr<RelationBuilder>> relations_;
  std::vector<Part> retired_;  // parts of relations whose schema changed mid-batch
  std::unique_ptr<ToastCache> toast_cache_;
  std::vector<postgres::pgoutput::Cell> fill_scratch_;  // an update's after image, filled
  int64_t toast_filled_ = 0;

  Lsn message_lsn_;
  bool in_txn_ = false;
  Lsn txn_commit_lsn_;
  int64_t txn_commit_ts_ = 0;  // unix micros
  int64_t txn_xid_ = 0;
  int64_t txn_seq_ = 0;
  Lsn committed_end_;       // end of the last commit seen
  Lsn emitted_checkpoint_;  // end of the last commit emitted
  int64_t batch_rows_ = 0;
  int64_t batch_bytes_ = 0;
  int64_t txn_bytes_ = 0;  // bytes of the open transaction in the current batch
  int64_t txn_rows_ = 0;   // rows of the open transaction in the current batch
  int64_t txn_epoch_ = 0;  // bumped at every transaction start, commit and cut
};

}  // namespace ductstream::cdc
