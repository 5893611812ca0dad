#pragma once

// The data path of one flow (DESIGN.md §2):
//
//   reader (calling thread): walsender → pgoutput → TransactionAssembler → BatchBuilder
//        │ bounded queue, capped in bytes = backpressure on the walsender
//   writer thread: every destination writes the batch durably → checkpoint persisted
//        │ persisted LSN
//   reader: standby status reports only the persisted LSN.
//
// Write → persist → acknowledge: the LSN sent to PostgreSQL never exceeds the persisted
// checkpoint, which never exceeds what every destination holds.

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "ductstream/base/ids.h"
#include "ductstream/base/lsn.h"
#include "ductstream/runner/destination.h"
#include "ductstream/store/checkpoint_store.h"

namespace ductstream::runner {

/// How an update's unchanged TOAST values are delivered (flow option toast_fill,
/// docs/connectors.md).
enum class ToastFill {
  kNone,    // null in the after image, named in __unchanged
  kCache,   // filled from the values this flow last saw for the row (cdc/toast_cache.h)
  kSource,  // re-read from the source by key before the batch is written (toast_source.h)
};

struct SourceSettings {
  std::string dsn;
  std::string slot;
  std::string publication;
  std::vector<std::string> publication_tables;  // "schema.table"
  std::vector<std::string> publication_schemas;
  bool create_slot = true;
  bool ensure_publication = true;
  /// Overrides the stored checkpoint (the worker's -start-lsn).
  std::optional<Lsn> start_lsn;
  bool binary = true;
  bool messages = true;
  int64_t batch_rows = 10000;
  absl::Duration batch_timeout = absl::Seconds(1);
  // Defaults as in flow/flow_config.h (PostgresSourceOptions).
  int64_t max_batch_bytes = 16 << 20;
  int64_t stream_buffer_bytes = 16 << 20;
  /// Decode streamed in-progress transactions as they arrive and label them at Stream Commit
  /// (cdc/speculative.h), instead of buffering their raw messages until then. Not with
  /// toast_fill=cache, whose cache must see rows in commit order.
  bool speculative_streams = true;
  std::string spill_dir;
  absl::Duration status_interval = absl::Seconds(10);
  absl::Duration heartbeat_interval = absl::ZeroDuration();
  absl::Duration reconnect_backoff_max = absl::Seconds(30);
  ToastFill toast_fill = ToastFill::kNone;
  /// Memory of the toast_fill=cache value cache.
  int64_t toast_cache_bytes = int64_t{64} << 20;
  /// "schema.table" of DuctStream's own tables in the source database (the snapshot progress
  /// table): a publication FOR ALL TABLES publishes them too, but they are never delivered.
  std::vector<std::string> excluded_tables;
};

struct PipelineOptions {
  FlowId flow;
  /// Lifecycle generation stamped on every checkpoint write (fencing).
  int64_t generation = 0;
  SourceSettings source;
  /// Batches queued between the reader and the writer, in bytes (the batch being written is
  /// not counted).
  int64_t max_inflight_bytes = 32 << 20;
  /// Batches whose destinations prepare them (encode: Destination::Prepare) on threads of
  /// their own while an earlier batch is written; each adds up to max_batch_bytes of memory.
  /// Also the number of a streamed transaction's batches staged at once before its commit
  /// (Destination::Stage); a batch finished while that many are staging is not staged.
  int prepare_ahead = 2;
  /// Stop after this many consecutive batch_timeout periods without data (0 = never).
  int max_empty_reads = 0;
};

struct PipelineStats {
  std::atomic<int64_t> rows_written{0};
  std::atomic<int64_t> batches_written{0};
  std::atomic<int64_t> reconnects{0};
  std::atomic<uint64_t> persisted_lsn{0};
  std::atomic<int64_t> spilled_bytes{0};
  /// Batches of streamed transactions that a destination staged before the commit and
  /// finished from that staging (Destination::Stage / PrepareStaged), and batches it did not
  /// stage because earlier stagings were still running.
  std::atomic<int64_t> staged_batches{0};
  std::atomic<int64_t> staging_skipped{0};
  /// Time the reader waited for room in the queue (the destinations were the bottleneck); set
  /// when Run returns.
  std::atomic<int64_t> reader_blocked_ns{0};
};

class Pipeline {
 public:
  /// `checkpoints` may be null (no resume across restarts: the slot's confirmed position is
  /// then the only progress record). It must outlive Run().
  Pipeline(PipelineOptions options, std::vector<std::unique_ptr<Destination>> destinations,
           store::CheckpointStore* checkpoints);
  ~Pipeline();

  /// Runs until `stop` is set (then the batches already built are written and checkpointed and
  /// Run returns OK), until max_empty_reads is reached (OK), or until a fatal error (returned;
  /// nothing past the last durable batch was acknowledged). Connection losses are retried with
  /// exponential backoff up to reconnect_backoff_max between attempts.
  absl::Status Run(const std::atomic<bool>& stop);

  const PipelineStats& stats() const { return stats_; }

 private:
  class Impl;
  PipelineStats stats_;  // before impl_, which holds a reference to it
  std::unique_ptr<Impl> impl_;
};

}  // namespace ductstream::runner
