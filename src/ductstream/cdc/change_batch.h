#pragma once

// The in-memory unit of the data path (DESIGN.md §3): a ChangeBatch holds, per relation touched,
// one Arrow RecordBatch built straight from decoded tuples, plus the checkpoint that becomes
// durable once every required destination has written the batch.
//
// Layout of every relation's RecordBatch (the "change schema"): metadata columns first, then the
// relation's columns in catalog order holding the after image.
//
//   __op          utf8, non-null        "insert" | "update" | "delete" | "truncate" | "load"
//   __lsn         uint64, non-null      WAL position of the change record (0 for truncate/load)
//   __commit_lsn  uint64, non-null      LSN of the transaction's commit record
//   __commit_ts   timestamp[us, UTC]    commit time (null for "load")
//   __xid         int64, non-null       top-level transaction id
//   __seq         int64, non-null       0-based position of the change within its transaction
//                                       (over all relations): (__commit_lsn, __seq) identifies a
//                                       change, so a replay can be recognised and dropped.
//   __unchanged   list<utf8>, non-null  columns whose TOASTed value did not change and was not
//                                       sent: the after-image cell is null but means "unchanged",
//                                       which is NOT the same as NULL. A before-image cell in that
//                                       state is listed as "__before.<column>". Usually empty.
//   __before      struct<columns>, null when the change carries no before image: inserts,
//                                       and updates under REPLICA IDENTITY DEFAULT/INDEX that
//                                       did not change the key. Deletes (and key-changing
//                                       updates) under DEFAULT/INDEX fill only the identity
//                                       columns; FULL fills the whole old row.
//   __exact       map<utf8, utf8>, null unless a value did not fit its Arrow type (numeric NaN
//                                       in a decimal column, multi-dimensional arrays, ...):
//                                       column name (or "__before.<column>") → PostgreSQL's
//                                       exact text. The Arrow cell is then null.
//   <column>...   the after image, every column nullable; all null for delete and truncate.
//
// Schema metadata (key → value): "ductstream.schema", "ductstream.table",
// "ductstream.relation_id", "ductstream.replica_identity" (default|nothing|full|index),
// "ductstream.key" (comma-separated identity columns, in column order).
// Field metadata of every data column: "ductstream.pg_type_oid", "ductstream.pg_typmod".

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <arrow/api.h>

#include "absl/strings/string_view.h"
#include "ductstream/base/ids.h"
#include "ductstream/base/lsn.h"

namespace ductstream::cdc {

inline constexpr char kOpColumn[] = "__op";
inline constexpr char kLsnColumn[] = "__lsn";
inline constexpr char kCommitLsnColumn[] = "__commit_lsn";
inline constexpr char kCommitTsColumn[] = "__commit_ts";
inline constexpr char kXidColumn[] = "__xid";
inline constexpr char kSeqColumn[] = "__seq";
inline constexpr char kUnchangedColumn[] = "__unchanged";
inline constexpr char kBeforeColumn[] = "__before";
inline constexpr char kExactColumn[] = "__exact";
/// Number of metadata columns before the first data column.
inline constexpr int kMetadataColumnCount = 9;

inline constexpr char kMetaSchema[] = "ductstream.schema";
inline constexpr char kMetaTable[] = "ductstream.table";
inline constexpr char kMetaRelationId[] = "ductstream.relation_id";
inline constexpr char kMetaReplicaIdentity[] = "ductstream.replica_identity";
inline constexpr char kMetaKey[] = "ductstream.key";
inline constexpr char kMetaPgTypeOid[] = "ductstream.pg_type_oid";
inline constexpr char kMetaPgTypmod[] = "ductstream.pg_typmod";

enum class Operation : uint8_t { kInsert, kUpdate, kDelete, kTruncate, kLoad };
absl::string_view OperationName(Operation op);

/// The changes of one relation within a batch, with a single schema (a relation whose columns
/// change mid-batch appears twice, once per schema).
struct RelationChanges {
  Oid relation_id;
  std::string schema;  // namespace, e.g. "public"
  std::string table;   // relation name (the partition root's with publish_via_partition_root)
  std::vector<std::string> key_columns;  // replica identity columns, in column order
  std::shared_ptr<arrow::RecordBatch> records;
  /// Identity of this relation's first row in the batch: (__commit_lsn, __seq). Names derived
  /// from it are deterministic: a replay from a checkpoint rebuilds the same first rows, so
  /// files named after them are overwritten, never duplicated.
  Lsn first_commit_lsn;
  int64_t first_seq = 0;

  int64_t num_rows() const { return records ? records->num_rows() : 0; }
  /// "schema.table"
  std::string QualifiedName() const { return schema + "." + table; }
};

/// What the data path did with a batch of a streamed transaction before the transaction
/// committed (runner::Pipeline: destinations' Stage); opaque here, carried from the batch's
/// speculative build to its delivery.
class StagedWork {
 public:
  virtual ~StagedWork() = default;
};

struct ChangeBatch {
  /// In order of first appearance in the WAL.
  std::vector<RelationChanges> relations;
  /// End LSN of the last transaction that the batch completes: once every required destination
  /// has made the batch durable, the flow's checkpoint may move here. Invalid (0/0) when the
  /// batch ends inside a transaction (a transaction larger than max_batch_bytes spans several
  /// batches and only the last one moves the checkpoint).
  Lsn checkpoint;
  /// Approximate memory held by the batch, for the in-flight byte budget.
  int64_t bytes = 0;
  /// Set on a batch of a streamed transaction whose destinations staged it before the commit,
  /// when the batch was delivered exactly as staged (but for its commit labels).
  std::shared_ptr<StagedWork> staged;

  int64_t num_rows() const {
    int64_t n = 0;
    for (const auto& r : relations) n += r.num_rows();
    return n;
  }
  bool empty() const { return relations.empty(); }
};

/// True for the names of the metadata columns above.
bool IsMetadataColumn(absl::string_view name);

/// Describes one relation for MakeChangeSchema.
struct RelationDescription {
  Oid relation_id;
  std::string schema;
  std::string table;
  char replica_identity = 'd';  // pgoutput's code: d, n, f, i
  /// The data columns (after image), each with "ductstream.pg_type_oid"/"ductstream.pg_typmod"
  /// metadata when known. Made nullable by MakeChangeSchema.
  std::vector<std::shared_ptr<arrow::Field>> columns;
  std::vector<std::string> key_columns;
};

/// The change schema (metadata columns, then the data columns) with its schema metadata.
std::shared_ptr<arrow::Schema> MakeChangeSchema(const RelationDescription& relation);

}  // namespace ductstream::cdc
