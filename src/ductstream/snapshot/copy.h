#pragma once

// Reads one chunk with `COPY ... TO STDOUT (FORMAT binary)` and turns its rows into load
// ChangeBatches with the stream's own BatchBuilder, so every value goes through the same value
// codec (postgres/type_codec.h) whichever path delivered it.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "ductstream/base/lsn.h"
#include "ductstream/cdc/change_batch.h"
#include "ductstream/postgres/pgoutput.h"
#include "ductstream/postgres/type_codec.h"
#include "ductstream/snapshot/catalog.h"

namespace ductstream::postgres {
class Connection;
}

namespace ductstream::snapshot {

/// Parses PostgreSQL's binary COPY format (header, tuples, trailer) from the CopyData messages
/// of a COPY TO, in order. Each complete tuple is handed to the callback as binary cells (views
/// valid during the call). A tuple split across messages is reassembled.
class CopyBinaryParser {
 public:
  using RowFn = std::function<absl::Status(const std::vector<postgres::pgoutput::Cell>&)>;
  explicit CopyBinaryParser(RowFn on_row) : on_row_(std::move(on_row)) {}

  absl::Status Feed(absl::string_view data);
  /// OK only when the trailer was seen (the COPY is complete).
  absl::Status Finish() const;
  int64_t rows() const { return rows_; }

 private:
  // Parses what it can of `data`; returns the bytes consumed.
  absl::StatusOr<size_t> Parse(absl::string_view data);

  RowFn on_row_;
  std::string pending_;  // an incomplete tuple carried to the next message
  bool header_done_ = false;
  bool trailer_seen_ = false;
  int64_t rows_ = 0;
  std::vector<postgres::pgoutput::Cell> cells_;
};

/// One batch of load rows of one chunk.
struct LoadBatch {
  cdc::ChangeBatch batch;
  int64_t copy_bytes = 0;  // COPY bytes these rows came from
};

struct ChunkCopyOptions {
  /// Label of every row: __commit_lsn (see docs/architecture.md, "Snapshots").
  Lsn snapshot_lsn;
  int64_t batch_rows = 10000;
  int64_t max_batch_bytes = int64_t{16} << 20;
  /// ChunkSeqBase() of the chunk.
  int64_t seq_base = 0;
};

/// The __seq of the first row of the chunk at `plan_position` in its run's plan: chunks never
/// share __seq values (not even the leaves of one partitioned table, reported under one name),
/// and a chunk copied again after a crash numbers its rows the same way, so names derived from
/// them are overwritten rather than duplicated.
int64_t ChunkSeqBase(size_t plan_position);

/// Copies `chunk` of `table` on `conn` (already inside the snapshot's transaction), calling
/// `sink` with each batch in order. Stops early (Cancelled) when `stop` is set.
/// Returns the chunk's row and byte totals in `*rows` / `*bytes`.
absl::Status CopyChunk(postgres::Connection& conn, const postgres::TypeLookup& lookup,
                       const CopyTable& table, const Chunk& chunk, const ChunkCopyOptions& options,
                       const std::function<absl::Status(LoadBatch)>& sink,
                       const std::atomic<bool>& stop, int64_t* rows, int64_t* bytes);

}  // namespace ductstream::snapshot
