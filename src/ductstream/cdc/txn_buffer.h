#pragma once

// Buffers the chunks of in-progress transactions that PostgreSQL streams before they commit
// (pgoutput protocol v2+, `streaming 'on'|'parallel'`). Nothing here is delivered until the
// transaction commits; an abort (of the whole transaction or of a subtransaction) discards its
// messages. Memory is bounded: past `memory_limit` bytes the largest transaction's messages move
// to an unlinked temporary file in `spill_dir`, so a crash leaves nothing behind on disk. A
// transaction that spilled is replayed from its file only (its in-memory tail joins the file
// first), and an in-memory one releases its memory as it is replayed: a commit's replay, which
// fills the batch pipeline, never also holds `memory_limit` bytes here.
//
// Messages are copied into blocks of up to 1 MiB taken from the Arrow memory pool, the allocator
// of the batches: what a spill or a commit frees is reused by the batches that the replay builds
// (millions of small heap strings would instead be left free but resident in the C heap), and
// `memory_bytes()` counts the blocks and the index exactly.

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/memory_pool.h>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ductstream/base/ids.h"
#include "ductstream/base/lsn.h"

namespace ductstream::cdc {

/// Thread-compatible.
class TxnBuffer {
 public:
  /// Called once per buffered message, in arrival order: its XLogData start and its bytes.
  using Visitor = std::function<absl::Status(Lsn lsn, absl::string_view message)>;

  TxnBuffer(int64_t memory_limit, std::string spill_dir,
            arrow::MemoryPool* pool = arrow::default_memory_pool());
  ~TxnBuffer();
  TxnBuffer(const TxnBuffer&) = delete;
  TxnBuffer& operator=(const TxnBuffer&) = delete;

  /// Buffers one pgoutput data message (Relation, Type, Insert, Update, Delete, Truncate,
  /// Message) of top-level transaction `top`. The (sub)transaction id is read from the message.
  absl::Status Append(Xid top, Lsn lsn, absl::string_view message);

  /// Stream Abort: `sub == top` discards the whole transaction, otherwise only the messages of
  /// subtransaction `sub`.
  absl::Status Abort(Xid top, Xid sub);

  /// Stream Commit: visits the transaction's surviving messages in order, then forgets it.
  absl::Status Commit(Xid top, const Visitor& visit);

  /// Forgets everything (the replication connection was lost: the server resends).
  void Clear();

  bool empty() const { return txns_.empty(); }
  /// Memory held by buffered messages (blocks and index), bounded by about `memory_limit`.
  int64_t memory_bytes() const { return memory_bytes_; }
  /// Total bytes ever written to spill files (a statistic).
  int64_t spilled_bytes_total() const { return spilled_bytes_total_; }

 private:
  struct Entry {
    uint64_t lsn;
    uint32_t xid;
    uint32_t length;
    uint32_t block;   // index in Txn::blocks
    uint32_t offset;  // of the message's first byte in its block
  };
  struct Txn {
    std::vector<Entry> entries;                          // in memory, after whatever is spilled
    std::vector<std::unique_ptr<arrow::Buffer>> blocks;  // message bytes, in entry order
    int64_t block_used = 0;                              // bytes used in blocks.back()
    int64_t memory_bytes = 0;
    std::FILE* spill = nullptr;  // unlinked temp file, or null
    absl::flat_hash_set<uint32_t> aborted_subxacts;

    absl::string_view message(const Entry& e) const {
      return {reinterpret_cast<const char*>(blocks[e.block]->data()) + e.offset, e.length};
    }
  };

  absl::Status Store(Txn& txn, Lsn lsn, Xid xid, absl::string_view message);
  void Account(Txn& txn, int64_t delta);
  void ReleaseMemory(Txn& txn);
  absl::Status Spill(Txn& txn);
  absl::Status SpillLargest();
  void Forget(uint32_t top);

  int64_t memory_limit_;
  int64_t block_bytes_;
  std::string spill_dir_;
  arrow::MemoryPool* pool_;
  absl::flat_hash_map<uint32_t, std::unique_ptr<Txn>> txns_;
  int64_t memory_bytes_ = 0;
  int64_t spilled_bytes_total_ = 0;
};

/// The transaction id carried by a pgoutput data message sent inside a streamed segment (bytes
/// 1-4 of Relation, Type, Insert, Update, Delete, Truncate and Message). InvalidArgument for
/// other message types or short input.
absl::StatusOr<Xid> StreamedMessageXid(absl::string_view message);

/// Where spill files go: `dir`, or $TMPDIR, or /tmp when it is empty.
std::string SpillDirectory(std::string dir);

/// True for the message types that TxnBuffer::Append accepts.
bool IsStreamedDataMessage(char type);

}  // namespace ductstream::cdc
