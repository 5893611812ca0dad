#pragma once

// Durable progress of a snapshot (initial copy or backfill): the plan (every chunk of every
// table) and which chunks the destinations already hold, so that a crash resumes with only the
// chunks that are not yet durable (docs/architecture.md, "Snapshots").
//
// Backends (source option snapshot_state_backend, SPEC.md §5.9):
//   postgres  the table <snapshot_state_schema>.<snapshot_state_table> (default
//             ductstream.snapshot_state) in snapshot_state_dsn, else the source database;
//   file      a JSON file (snapshot_state_path), rewritten atomically on every change;
//   none      nothing persisted: a crash restarts the snapshot from scratch.
//
// Table layout (postgres), one row per chunk plus one run row (table_name ''):
//   flow_id, table_name, partition_index, partition_count, cursor, status, updated_at (SPEC §5.9)
//   + rows_done, bytes_done, rows_estimate, bytes_estimate, snapshot_lsn.
// The run row's cursor holds the kind ("initial", "only", "backfill") and snapshot_lsn the
// position its rows are labelled with; a chunk row's cursor holds its range.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ductstream/base/lsn.h"

namespace ductstream::snapshot {

/// One unit of copy work: a page range (CTID range) or a hash partition of one relation.
struct Chunk {
  std::string table;  // "schema.table" of the relation read (a leaf partition for partitioned)
  int index = 0;      // within the table, from 0
  int count = 1;      // chunks of the table
  /// "ctid:FIRST-END" = pages [FIRST, END) (END -1: to the end of the relation), or
  /// "hash:COLUMN:I/N" = the rows whose COLUMN hashes to partition I of N.
  std::string range;
  bool done = false;
  int64_t rows = 0;   // rows delivered (once done)
  int64_t bytes = 0;  // COPY bytes delivered (once done)
  int64_t rows_estimate = 0;
  int64_t bytes_estimate = 0;

  friend bool operator==(const Chunk&, const Chunk&) = default;
};

enum class RunStatus { kPlanning, kCopying, kDone };
absl::string_view RunStatusName(RunStatus status);

struct SnapshotRun {
  std::string key;   // the flow id; backfills use "<flow id>/backfill"
  std::string kind;  // "initial", "only" or "backfill"
  RunStatus status = RunStatus::kPlanning;
  /// __commit_lsn of every load row of this run (the slot's consistent point for an initial
  /// snapshot, the WAL position before the snapshot for the others). Invalid while planning.
  Lsn lsn;
  std::vector<Chunk> chunks;
  int64_t updated_at_unix_millis = 0;

  int64_t chunks_done() const;
};

/// One table's progress: done counts against the plan's estimates (a finished table's totals are
/// its actual counts).
struct TableProgress {
  std::string table;
  int64_t rows_done = 0, rows_total = 0, bytes_done = 0, bytes_total = 0;
  int chunks_done = 0, chunks_total = 0;
};
/// Per table, in the plan's order.
std::vector<TableProgress> SummarizeByTable(const SnapshotRun& run);

/// Thread-compatible: the snapshot's writer thread is its only user.
class SnapshotState {
 public:
  virtual ~SnapshotState() = default;
  virtual const std::string& description() const = 0;
  /// The run stored under `key`, or nullopt.
  virtual absl::StatusOr<std::optional<SnapshotRun>> Load(const std::string& key) = 0;
  /// Replaces everything stored under run.key with `run` (atomically).
  virtual absl::Status Save(const SnapshotRun& run) = 0;
  /// Records that `chunk` (rows and bytes set) is durable at every destination.
  virtual absl::Status MarkChunkDone(const std::string& key, const Chunk& chunk) = 0;
  virtual absl::Status SetStatus(const std::string& key, RunStatus status) = 0;
};

/// In memory only (backend none).
std::unique_ptr<SnapshotState> MakeMemorySnapshotState();
/// A JSON file, replaced atomically (write, fsync, rename) on every change.
std::unique_ptr<SnapshotState> MakeFileSnapshotState(std::string path);
/// The table `schema`.`table` in PostgreSQL at `dsn`, created when missing.
absl::StatusOr<std::unique_ptr<SnapshotState>> OpenPostgresSnapshotState(const std::string& dsn,
                                                                         const std::string& schema,
                                                                         const std::string& table);

}  // namespace ductstream::snapshot
