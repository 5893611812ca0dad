#pragma once

// Snapshots: the consistent initial copy of a new flow, a snapshot-only copy, and the backfill of
// chosen tables while a flow streams (docs/architecture.md, "Snapshots").
//
//   initial   The slot is created with an exported snapshot; `workers` connections import it and
//             copy the published tables chunk by chunk with COPY (FORMAT binary). Every row in
//             the snapshot is committed at or before the slot's consistent point C and every
//             change after C is in the stream, so snapshot plus stream hold every row exactly
//             once. Load rows carry __commit_lsn = C.
//   only      The same copy under a fresh snapshot, without a slot; the worker then exits.
//   backfill  Chosen tables under a fresh snapshot while the flow's worker keeps streaming.
//             Rows carry __commit_lsn = the WAL position read just before the snapshot.
//
// Resume: each chunk is marked done in the snapshot state only after every destination holds
// all of its rows. After a crash the chunks not yet done are copied again, under a new snapshot
// (an exported snapshot does not survive its connection). Those rows are at least as new as C,
// and the stream still delivers every change after C, so a consumer that applies changes per
// key in (__commit_lsn, __seq) order converges to the source; rows of chunks copied before the
// crash are exactly as of C.

#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ductstream/base/ids.h"
#include "ductstream/runner/destination.h"
#include "ductstream/snapshot/state.h"

namespace ductstream::snapshot {

enum class SnapshotKind { kInitial, kOnly, kBackfill };

struct SnapshotConfig {
  FlowId flow;
  SnapshotKind kind = SnapshotKind::kInitial;
  std::string dsn;
  // initial: the slot to create (with its exported snapshot) when it does not exist.
  std::string slot;
  bool create_slot = true;
  // initial and only: the tables come from the publication (created when missing and
  // ensure_publication is set).
  std::string publication;
  std::vector<std::string> publication_tables;
  std::vector<std::string> publication_schemas;
  bool ensure_publication = true;
  // backfill: `tables` ("schema.table"), else every table of `schemas` (default public).
  std::vector<std::string> tables;
  std::vector<std::string> schemas;
  /// "schema.table" never copied (DuctStream's own tables in the source database).
  std::vector<std::string> excluded_tables;

  int workers = 1;
  std::string partition_column;  // hash partitions instead of page ranges
  int partition_count = 1;
  /// Backfill/only: every worker reads the same exported snapshot (else each its own).
  bool consistent = true;
  int64_t batch_rows = 10000;
  int64_t max_batch_bytes = int64_t{16} << 20;
  /// Batches copied and waiting for the destinations, in bytes.
  int64_t max_inflight_bytes = int64_t{32} << 20;
  int64_t chunk_bytes = int64_t{32} << 20;
  absl::Duration progress_interval = absl::Seconds(5);
};

struct SnapshotOutcome {
  bool ran = false;        // a snapshot was started or resumed
  bool completed = false;  // every chunk is durable (false: stopped)
  int64_t rows = 0;        // rows copied by this call
  int64_t chunks_copied = 0;
  int64_t chunks_already_done = 0;
};

/// Runs (or resumes) the snapshot `config` asks for, writing load batches to `destinations` and
/// progress to `state`. For kInitial it does nothing (ran=false) when the slot already exists
/// and no unfinished initial snapshot is recorded. Returns with completed=false when `stop` is
/// set. Connection losses are retried (the unfinished chunks resume under a new snapshot).
absl::StatusOr<SnapshotOutcome> RunSnapshot(const SnapshotConfig& config,
                                            std::span<runner::Destination* const> destinations,
                                            SnapshotState& state, const std::atomic<bool>& stop);

/// The state key of a flow's snapshots of `kind` (backfills are kept apart from the initial).
std::string SnapshotStateKey(const FlowId& flow, SnapshotKind kind);

}  // namespace ductstream::snapshot
