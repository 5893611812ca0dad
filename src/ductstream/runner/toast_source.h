#pragma once

// toast_fill=source: re-reads the values of unchanged TOASTed columns (pgoutput sends an
// UPDATE's untouched out-of-line values as "unchanged", see cdc/change_batch.h __unchanged) from
// the source database, by replica identity key, and fills them into a batch's after images.
//
// One query per relation of a batch (chunked past kMaxKeysPerQuery keys):
//   SELECT <key columns>, <missing columns> FROM <schema>.<table>
//   WHERE (<key columns>) IN (($1, $2), ($3, $4), ...)
// over a regular (non-replication) connection; identifiers are quoted and key values always go
// through parameters. The values come back in the format the stream uses and are decoded by the
// same column decoders, so a re-read value looks exactly like one sent over the wire.
//
// Trade-off: this reads the row as it is *now*, which may be newer than the change being
// delivered (a later transaction may have changed or deleted it). A row that is gone, a key the
// re-read cannot express (a key column whose type has no text form here, or a key that is itself
// an unchanged TOAST value), and a value the column's Arrow type cannot hold all leave the cell
// unchanged, still listed in __unchanged.
//
// Lifecycle: Create → Fill* (connects on first use; reconnects once when the connection was
// lost) → destruction closes the connection. Thread-compatible: owned by the writer thread.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "ductstream/cdc/change_batch.h"
#include "ductstream/postgres/connection.h"
#include "ductstream/postgres/type_codec.h"

namespace ductstream::runner {

class ToastSource {
 public:
  /// Keys per query (bounded as well by PostgreSQL's 65535 parameters).
  static constexpr int kMaxKeysPerQuery = 1000;

  struct Stats {
    int64_t filled = 0;   // cells filled in
    int64_t missing = 0;  // cells left unchanged (row gone, key not expressible, ...)
    int64_t queries = 0;
  };

  /// `binary`: fetch values in the binary send format (as the stream does with binary 'true').
  static std::unique_ptr<ToastSource> Create(std::string dsn, bool binary);

  /// Fills, in place, every after-image cell of `batch`'s updates listed in __unchanged that
  /// the source still holds, and drops those names from __unchanged. Rows without such cells
  /// are untouched; a batch without any costs no query.
  absl::Status Fill(cdc::ChangeBatch& batch);

  const Stats& stats() const { return stats_; }

 private:
  ToastSource(std::string dsn, bool binary) : dsn_(std::move(dsn)), binary_(binary) {}
  absl::Status FillRelation(cdc::RelationChanges& rel);
  absl::Status EnsureConnected();
  absl::StatusOr<postgres::Result> Query(const std::string& sql,
                                         const std::vector<std::optional<std::string>>& params);

  std::string dsn_;
  bool binary_;
  std::unique_ptr<postgres::Connection> conn_;
  std::unique_ptr<postgres::TypeResolver> resolver_;
  Stats stats_;
};

/// A key value of `array` at `row` as PostgreSQL text input for the column's type, or nullopt
/// when null or of an Arrow type this cannot render (lists, structs, intervals, ...).
/// Exposed for tests.
std::optional<std::string> KeyText(const arrow::Array& array, int64_t row);

}  // namespace ductstream::runner
