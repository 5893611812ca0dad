#pragma once

// What a snapshot copies: the relations, named and shaped the way pgoutput names and shapes them
// in the stream (so that load rows and streamed rows of a table share one change schema), and
// the chunks they are split into.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ductstream/base/ids.h"
#include "ductstream/snapshot/state.h"

namespace ductstream::postgres {
class Connection;
}

namespace ductstream::snapshot {

struct CopyColumn {
  std::string name;
  Oid type_oid;
  int32_t typmod = -1;
  bool is_key = false;  // part of the replica identity, as pgoutput flags it
};

/// One relation to read (a table, or one leaf partition) and how its rows are labelled.
struct CopyTable {
  std::string name;  // "schema.table" of the relation read: the chunks' key
  std::string read_schema, read_table;
  /// The relation the rows are reported as: the table itself, or the partition root when the
  /// publication publishes via the root (pgoutput does the same).
  Oid label_relation_id;
  std::string label_schema, label_table;
  char replica_identity = 'd';  // of the label relation: d, n, f, i
  /// In the label relation's column order; generated columns and columns outside the
  /// publication's column list are left out, as pgoutput leaves them out.
  std::vector<CopyColumn> columns;
  /// The publication's row filter for this table (PostgreSQL 15+), empty when none.
  std::string row_filter;
  int64_t pages = 0;          // heap pages when planned
  int64_t rows_estimate = 0;  // pg_class.reltuples (0 when never analysed)
};

/// The tables of `publication` as the stream will name them (leaf partitions of a table
/// published via its root are read one by one and labelled with the root).
absl::StatusOr<std::vector<CopyTable>> PublishedTables(postgres::Connection& conn,
                                                       const std::string& publication);

/// Backfill: `tables` ("schema.table", a bare name means public), else every table of `schemas`.
/// Partitioned tables are read leaf by leaf and labelled with the root when `label_with_root`
/// (the flow's publication publishes via the root), else with the leaf.
absl::StatusOr<std::vector<CopyTable>> NamedTables(postgres::Connection& conn,
                                                   const std::vector<std::string>& tables,
                                                   const std::vector<std::string>& schemas,
                                                   bool label_with_root);

struct PlanOptions {
  int workers = 1;
  /// Page-range chunks of about this many bytes.
  int64_t chunk_bytes = int64_t{32} << 20;
  /// When set: `partition_count` hash partitions per table on this column instead of page ranges.
  std::string partition_column;
  int partition_count = 1;
  int64_t block_size = 8192;
};

/// Splits every table into chunks: page ranges (the last one open-ended, so rows on pages added
/// after planning are read too) or hash partitions.
std::vector<Chunk> PlanChunks(const std::vector<CopyTable>& tables, const PlanOptions& options);

/// The COPY statement that reads `chunk` of `table` in binary format.
absl::StatusOr<std::string> CopyStatement(const CopyTable& table, const Chunk& chunk);

}  // namespace ductstream::snapshot
