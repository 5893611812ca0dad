#pragma once

// JSON rendering of change records (cdc::RelationChanges, layout in ductstream/cdc/change_batch.h),
// shared by the json wire format, the proto format's JSON fields, and destinations that send one
// record per message (HTTP, Kafka).
//
// Value rules (the same for every output that embeds row JSON):
//   integers (incl. uint64)      JSON numbers
//   float32/float64              shortest round-trip numbers; NaN, Infinity, -Infinity as the
//                                strings "NaN", "Infinity", "-Infinity"
//   bool                         true / false
//   decimal128/256               a JSON string of the exact decimal, scale kept: "12.30"
//   utf8                         a JSON string; but json/jsonb values (field metadata
//                                ductstream.pg_type_oid 114/3802, and the elements of json[]/
//                                jsonb[] 199/3807) are embedded as raw JSON
//   binary                       base64 (RFC 4648, padded) string
//   date32                       "YYYY-MM-DD"; PostgreSQL's ±infinity (INT32_MAX/INT32_MIN)
//                                as "infinity" / "-infinity"
//   timestamp                    RFC 3339 with 6 fractional digits, "Z" when the type has a time
//                                zone, none for naive timestamps; INT64_MAX/INT64_MIN as
//                                "infinity" / "-infinity". Years outside 0001-9999 (PostgreSQL
//                                allows 4713 BC to 294276 AD) print as ISO 8601 expanded years
//                                ("-0044-03-15", "12345-01-01"), astronomical numbering.
//   time32/time64                "HH:MM:SS.ffffff"
//   month_day_nano_interval      {"months":m,"days":d,"nanoseconds":n}
//   list / struct / map          array / object / object (non-string map keys as their JSON text)
//   NULL                         null
//
// Images:
//   after   the data columns, in column order; null for delete and truncate. Unchanged-TOAST
//           columns (listed in __unchanged) are OMITTED: null would claim the value is NULL.
//   before  null without a before image. Under replica identity "full" every column; otherwise
//           (default/index) only the identity columns, since the others were never sent and a
//           null would again claim NULL. "__before.<col>" entries of __unchanged are omitted.
//   key     the identity columns (schema metadata ductstream.key), keys sorted by name, values
//           from the after image, or from the before image for deletes (and for a key column
//           that is unchanged TOAST in the after image); null for truncate.
// A value that did not fit its Arrow type is null in the images and its exact PostgreSQL text
// is in the "exact" object of the change (see AppendChange).
//
// The strings in utf8 arrays are assumed to be valid UTF-8 (Arrow's contract for utf8, and what
// the PostgreSQL decoder produces); bytes >= 0x80 are copied through unchanged.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <arrow/api.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ductstream/base/lsn.h"
#include "ductstream/cdc/change_batch.h"

namespace ductstream::codec {

namespace row_json_internal {
class ValueWriter;
class Out;
}  // namespace row_json_internal

/// Renders the rows of one relation's change records as JSON text appended to a std::string.
/// Lifecycle: Create once per RecordBatch (type dispatch happens there, once per column), then
/// any Append*/accessor call for rows in [0, num_rows()). The renderer keeps the RecordBatch
/// alive. Thread-safety: immutable after Create; concurrent const calls are safe.
class RowJsonRenderer {
 public:
  /// InvalidArgument when the batch does not have the change layout, or a column has an Arrow
  /// type with no JSON rendering (the message names the column and the type).
  static absl::StatusOr<std::unique_ptr<RowJsonRenderer>> Create(
      const cdc::RelationChanges& changes);
  ~RowJsonRenderer();
  RowJsonRenderer(const RowJsonRenderer&) = delete;
  RowJsonRenderer& operator=(const RowJsonRenderer&) = delete;

  int64_t num_rows() const { return records_->num_rows(); }
  const std::string& schema_name() const { return schema_name_; }
  const std::string& table_name() const { return table_name_; }
  /// Identity columns in column order, as in the schema metadata.
  const std::vector<std::string>& key_columns() const { return key_columns_; }

  // The metadata columns of row `row`.
  absl::string_view op(int64_t row) const;
  Lsn lsn(int64_t row) const;
  Lsn commit_lsn(int64_t row) const;
  /// Microseconds since the Unix epoch; nullopt when __commit_ts is null (loads).
  std::optional<int64_t> commit_ts_micros(int64_t row) const;
  int64_t xid(int64_t row) const;
  int64_t seq(int64_t row) const;
  /// The __unchanged entries; the views point into the batch's buffers.
  std::vector<absl::string_view> unchanged(int64_t row) const;
  /// The __exact entries (column → PostgreSQL's text), in stored order; views into the batch.
  std::vector<std::pair<absl::string_view, absl::string_view>> exact(int64_t row) const;

  /// The after image object, or null (delete, truncate).
  void AppendAfter(int64_t row, std::string* out) const;
  /// The before image object, or null.
  void AppendBefore(int64_t row, std::string* out) const;
  /// The key object (sorted keys), or null for truncate.
  void AppendKey(int64_t row, std::string* out) const;
  /// The __unchanged entries as a JSON array of strings.
  void AppendUnchanged(int64_t row, std::string* out) const;
  /// The __exact entries as a JSON object ({} when there are none).
  void AppendExact(int64_t row, std::string* out) const;
  /// One whole change, the json wire format's line (without the newline):
  /// {"op","schema","table","lsn":"X/Y","commit_lsn":"X/Y","commit_ts":RFC 3339|null,"xid",
  ///  "seq","key","before","after","unchanged":[...],"exact":{...}}
  /// "exact" is omitted when the change has none (the common case), to keep lines short.
  void AppendChange(int64_t row, std::string* out) const;

 private:
  struct Column;
  RowJsonRenderer() = default;

  // What the Append* functions write, into the renderer's output buffer (row_json.cc).
  // `before` selects the __before struct instead of the after image.
  void ImageTo(int64_t row, bool before, row_json_internal::Out& out) const;
  void KeyTo(int64_t row, row_json_internal::Out& out) const;
  void UnchangedTo(int64_t row, row_json_internal::Out& out) const;
  void ExactTo(int64_t row, row_json_internal::Out& out) const;
  void ChangeTo(int64_t row, row_json_internal::Out& out) const;
  bool IsUnchanged(int64_t row, absl::string_view column, bool before) const;

  std::shared_ptr<arrow::RecordBatch> records_;
  std::string schema_name_;
  std::string table_name_;
  std::string quoted_schema_name_;  // as JSON strings, for AppendChange
  std::string quoted_table_name_;
  std::vector<std::string> key_columns_;
  bool before_has_all_columns_ = false;  // replica identity full

  const arrow::StringArray* op_ = nullptr;
  const arrow::UInt64Array* lsn_ = nullptr;
  const arrow::UInt64Array* commit_lsn_ = nullptr;
  const arrow::TimestampArray* commit_ts_ = nullptr;
  const arrow::Int64Array* xid_ = nullptr;
  const arrow::Int64Array* seq_ = nullptr;
  const arrow::ListArray* unchanged_ = nullptr;
  const arrow::StringArray* unchanged_values_ = nullptr;
  const arrow::StructArray* before_ = nullptr;
  const arrow::MapArray* exact_ = nullptr;
  const arrow::StringArray* exact_keys_ = nullptr;
  const arrow::StringArray* exact_items_ = nullptr;

  std::vector<Column> columns_;         // data columns, in column order
  std::vector<size_t> key_by_name_;     // indexes into columns_, sorted by column name
  std::vector<size_t> before_columns_;  // indexes into columns_ present in the before object
};

/// Appends `text` as a quoted, escaped JSON string.
void AppendJsonString(absl::string_view text, std::string* out);
/// Lsn::ToString()'s text ("16/B374D848") in a stack buffer: for paths that print LSNs per
/// change (JSON values, Kafka headers), where a heap string per LSN shows.
class LsnText {
 public:
  explicit LsnText(Lsn lsn);
  absl::string_view view() const { return absl::string_view(data_, size_); }

 private:
  char data_[17];  // "FFFFFFFF/FFFFFFFF"
  size_t size_;
};

/// Appends an RFC 3339 timestamp with microseconds ("2024-01-02T03:04:05.123456" plus "Z" when
/// `utc`); INT64_MAX/INT64_MIN as "infinity"/"-infinity". Quoted.
void AppendJsonTimestampMicros(int64_t micros, bool utc, std::string* out);

}  // namespace ductstream::codec
