#include "ductstream/runner/toast_source.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <utility>

#include <arrow/util/key_value_metadata.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ductstream/base/status.h"
#include "ductstream/postgres/replication.h"

namespace ductstream::runner {
namespace {

// Shifts between the Unix epoch (Arrow) and PostgreSQL's 2000-01-01 epoch.
constexpr int64_t kPgEpochDays = 10957;
constexpr int64_t kPgEpochMicros = kPgEpochDays * 86400LL * 1000000LL;
// PostgreSQL accepts at most 65535 parameters per statement.
constexpr int kMaxParams = 65535;

std::string BigEndian(uint64_t v, int bytes) {
  std::string out(bytes, '\0');
  for (int i = bytes - 1; i >= 0; --i, v >>= 8) out[i] = static_cast<char>(v & 0xff);
  return out;
}

// Renders through the codec's own binary→text renderers, so the text is exactly PostgreSQL's
// output (BC dates, ±infinity, shortest exact floats).
std::optional<std::string> ViaBinary(uint32_t type_oid, std::string binary) {
  auto text = postgres::BinaryToText(Oid(type_oid), binary, {});
  if (!text.ok()) return std::nullopt;
  return std::move(*text);
}

absl::Status ArrowError(const arrow::Status& s, absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", s.ToString()));
}

// Length-prefixed concatenation: distinct key tuples never share an identity.
void AppendIdentityPart(std::string* id, absl::string_view part) {
  absl::StrAppend(id, part.size(), ":", part);
}

}  // namespace

std::optional<std::string> KeyText(const arrow::Array& array, int64_t row) {
  if (array.IsNull(row)) return std::nullopt;
  switch (array.type_id()) {
    case arrow::Type::BOOL:
      return static_cast<const arrow::BooleanArray&>(array).Value(row) ? "true" : "false";
    case arrow::Type::INT8:
      return absl::StrCat(static_cast<const arrow::Int8Array&>(array).Value(row));
    case arrow::Type::INT16:
      return absl::StrCat(static_cast<const arrow::Int16Array&>(array).Value(row));
    case arrow::Type::INT32:
      return absl::StrCat(static_cast<const arrow::Int32Array&>(array).Value(row));
    case arrow::Type::INT64:
      return absl::StrCat(static_cast<const arrow::Int64Array&>(array).Value(row));
    case arrow::Type::UINT8:
      return absl::StrCat(static_cast<const arrow::UInt8Array&>(array).Value(row));
    case arrow::Type::UINT16:
      return absl::StrCat(static_cast<const arrow::UInt16Array&>(array).Value(row));
    case arrow::Type::UINT32:
      return absl::StrCat(static_cast<const arrow::UInt32Array&>(array).Value(row));
    case arrow::Type::UINT64:
      return absl::StrCat(static_cast<const arrow::UInt64Array&>(array).Value(row));
    case arrow::Type::FLOAT: {
      float v = static_cast<const arrow::FloatArray&>(array).Value(row);
      uint32_t bits;
      std::memcpy(&bits, &v, sizeof(bits));
      return ViaBinary(700, BigEndian(bits, 4));
    }
    case arrow::Type::DOUBLE: {
      double v = static_cast<const arrow::DoubleArray&>(array).Value(row);
      uint64_t bits;
      std::memcpy(&bits, &v, sizeof(bits));
      return ViaBinary(701, BigEndian(bits, 8));
    }
    case arrow::Type::STRING:
      return std::string(static_cast<const arrow::StringArray&>(array).GetView(row));
    case arrow::Type::LARGE_STRING:
      return std::string(static_cast<const arrow::LargeStringArray&>(array).GetView(row));
    case arrow::Type::BINARY: {
      auto bytes = static_cast<const arrow::BinaryArray&>(array).GetView(row);
      std::string out = "\\x";
      static constexpr char kHex[] = "0123456789abcdef";
      for (unsigned char c : bytes) {
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
      }
      return out;
    }
    case arrow::Type::DECIMAL128:
      return static_cast<const arrow::Decimal128Array&>(array).FormatValue(row);
    case arrow::Type::DATE32: {
      // ±infinity are kept as the raw extremes on both sides (type_codec.h).
      const int32_t days = static_cast<const arrow::Date32Array&>(array).Value(row);
      const int64_t pg = days == INT32_MAX || days == INT32_MIN ? days : days - kPgEpochDays;
      return ViaBinary(1082, BigEndian(static_cast<uint32_t>(static_cast<int32_t>(pg)), 4));
    }
    case arrow::Type::TIMESTAMP: {
      const auto& type = static_cast<const arrow::TimestampType&>(*array.type());
      if (type.unit() != arrow::TimeUnit::MICRO) return std::nullopt;
      const int64_t us = static_cast<const arrow::TimestampArray&>(array).Value(row);
      const int64_t pg = us == INT64_MAX || us == INT64_MIN ? us : us - kPgEpochMicros;
      return ViaBinary(type.timezone().empty() ? 1114 : 1184,
                       BigEndian(static_cast<uint64_t>(pg), 8));
    }
    case arrow::Type::TIME64: {
      const auto& type = static_cast<const arrow::Time64Type&>(*array.type());
      if (type.unit() != arrow::TimeUnit::MICRO) return std::nullopt;
      const int64_t us = static_cast<const arrow::Time64Array&>(array).Value(row);
      return ViaBinary(1083, BigEndian(static_cast<uint64_t>(us), 8));
    }
    default:
      return std::nullopt;
  }
}

std::unique_ptr<ToastSource> ToastSource::Create(std::string dsn, bool binary) {
  return std::unique_ptr<ToastSource>(new ToastSource(std::move(dsn), binary));
}

absl::Status ToastSource::EnsureConnected() {
  if (conn_ != nullptr) return absl::OkStatus();
  DS_ASSIGN_OR_RETURN(auto conn, postgres::Connection::Connect(dsn_));
  // Text results must read like the stream's binary values (type_codec.h).
  DS_RETURN_IF_ERROR(
      conn->Exec("SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET IntervalStyle = 'postgres'; "
                 "SET extra_float_digits = 1; SET lc_monetary = 'C'")
          .status());
  conn_ = std::move(conn);
  resolver_ = postgres::TypeResolver::Create(*conn_);
  return absl::OkStatus();
}

absl::StatusOr<postgres::Result> ToastSource::Query(
    const std::string& sql, const std::vector<std::optional<std::string>>& params) {
  for (int attempt = 0;; ++attempt) {
    DS_RETURN_IF_ERROR(EnsureConnected());
    ++stats_.queries;
    auto result = conn_->ExecParams(sql, params, binary_);
    if (result.ok() || attempt > 0 || result.status().code() != absl::StatusCode::kUnavailable) {
      return result;
    }
    // The connection was lost (server restart, idle timeout): one fresh attempt.
    resolver_.reset();
    conn_.reset();
  }
}

absl::Status ToastSource::Fill(cdc::ChangeBatch& batch) {
  for (cdc::RelationChanges& rel : batch.relations) {
    DS_RETURN_IF_ERROR_CTX(FillRelation(rel),
                           absl::StrCat("toast_fill=source: re-reading ", rel.QualifiedName()));
  }
  return absl::OkStatus();
}

absl::Status ToastSource::FillRelation(cdc::RelationChanges& rel) {
  if (rel.records == nullptr || rel.num_rows() == 0) return absl::OkStatus();
  const arrow::RecordBatch& rb = *rel.records;
  const std::shared_ptr<arrow::Schema>& schema = rb.schema();
  const int64_t nrows = rb.num_rows();
  auto ops = std::static_pointer_cast<arrow::StringArray>(rb.GetColumnByName(cdc::kOpColumn));
  auto unchanged =
      std::static_pointer_cast<arrow::ListArray>(rb.GetColumnByName(cdc::kUnchangedColumn));
  if (ops == nullptr || unchanged == nullptr) return absl::OkStatus();
  auto names = std::static_pointer_cast<arrow::StringArray>(unchanged->values());

  // Rows of updates with unchanged after-image cells, and the data columns they miss.
  std::vector<std::vector<int>> want(nrows);
  std::vector<int> fetch;  // field indexes, in column order
  for (int64_t r = 0; r < nrows; ++r) {
    if (unchanged->value_length(r) == 0 || ops->GetView(r) != "update") continue;
    for (int64_t i = unchanged->value_offset(r); i < unchanged->value_offset(r + 1); ++i) {
      const std::string name(names->GetView(i));
      if (absl::StartsWith(name, cdc::kBeforeColumn)) continue;  // "__before.<column>"
      const int field = schema->GetFieldIndex(name);
      if (field < cdc::kMetadataColumnCount) continue;
      want[r].push_back(field);
      if (std::find(fetch.begin(), fetch.end(), field) == fetch.end()) fetch.push_back(field);
    }
  }
  if (fetch.empty()) return absl::OkStatus();
  std::sort(fetch.begin(), fetch.end());

  auto all_missing = [&] {
    for (const auto& w : want) stats_.missing += static_cast<int64_t>(w.size());
    return absl::OkStatus();
  };
  std::vector<int> keys;
  for (const std::string& k : rel.key_columns) {
    const int field = schema->GetFieldIndex(k);
    if (field < cdc::kMetadataColumnCount) return all_missing();
    keys.push_back(field);
  }
  if (keys.empty()) return all_missing();  // no identity to look rows up by

  // Distinct keys of those rows, rendered as text parameters.
  absl::flat_hash_map<std::string, int> key_ordinal;  // identity → index into key_params
  std::vector<std::vector<std::string>> key_params;
  std::vector<int> row_key(nrows, -1);
  for (int64_t r = 0; r < nrows; ++r) {
    if (want[r].empty()) continue;
    std::vector<std::string> texts;
    std::string identity;
    for (int k : keys) {
      auto text = KeyText(*rb.column(k), r);
      if (!text.has_value()) break;
      AppendIdentityPart(&identity, *text);
      texts.push_back(std::move(*text));
    }
    if (texts.size() != keys.size()) continue;  // counted as missing below
    auto [it, inserted] = key_ordinal.try_emplace(identity, static_cast<int>(key_params.size()));
    if (inserted) key_params.push_back(std::move(texts));
    row_key[r] = it->second;
  }
  if (key_params.empty()) return all_missing();

  // Column decoders, from the type recorded in each field's metadata.
  auto lookup = [this](Oid oid) -> absl::StatusOr<postgres::TypeInfo> {
    if (resolver_ == nullptr) return absl::UnavailableError("no connection to resolve types");
    return resolver_->Lookup(oid);
  };
  auto make_decoder = [&](int field) -> absl::StatusOr<std::unique_ptr<postgres::ColumnDecoder>> {
    const auto& f = schema->field(field);
    uint32_t oid = 0;
    int32_t typmod = -1;
    const auto& meta = f->metadata();
    if (meta == nullptr || !absl::SimpleAtoi(meta->Get(cdc::kMetaPgTypeOid).ValueOr(""), &oid) ||
        !absl::SimpleAtoi(meta->Get(cdc::kMetaPgTypmod).ValueOr("-1"), &typmod)) {
      return absl::InternalError(absl::StrCat("column ", f->name(), " has no type metadata"));
    }
    DS_ASSIGN_OR_RETURN(auto decoder, postgres::MakeColumnDecoder(Oid(oid), typmod, lookup));
    if (!decoder->type()->Equals(*f->type())) {
      return absl::InternalError(absl::StrCat("column ", f->name(), " decodes as ",
                                              decoder->type()->ToString(), ", the batch holds ",
                                              f->type()->ToString()));
    }
    return decoder;
  };

  // Query the keys, in chunks; remember which result row holds each key.
  std::vector<std::string> select;
  for (int k : keys) select.push_back(postgres::QuoteIdent(schema->field(k)->name()));
  for (int c : fetch) select.push_back(postgres::QuoteIdent(schema->field(c)->name()));
  std::vector<std::string> key_names(select.begin(), select.begin() + keys.size());
  const std::string head = absl::StrCat(
      "SELECT ", absl::StrJoin(select, ", "), " FROM ", postgres::QuoteIdent(rel.schema), ".",
      postgres::QuoteIdent(rel.table), " WHERE ",
      keys.size() == 1 ? key_names[0] : absl::StrCat("(", absl::StrJoin(key_names, ", "), ")"),
      " IN (");
  const int per_query =
      std::max<int>(1, std::min<int>(kMaxKeysPerQuery, kMaxParams / static_cast<int>(keys.size())));
  std::vector<postgres::Result> results;
  std::vector<std::pair<int, int>> found(key_params.size(), {-1, -1});  // (result, row)
  for (size_t begin = 0; begin < key_params.size(); begin += per_query) {
    const size_t end = std::min(key_params.size(), begin + per_query);
    std::string sql = head;
    std::vector<std::optional<std::string>> params;
    for (size_t i = begin; i < end; ++i) {
      std::vector<std::string> placeholders;
      for (const std::string& text : key_params[i]) {
        params.emplace_back(text);
        placeholders.push_back(absl::StrCat("$", params.size()));
      }
      absl::StrAppend(&sql, i == begin ? "" : ", ",
                      keys.size() == 1 ? placeholders[0]
                                       : absl::StrCat("(", absl::StrJoin(placeholders, ", "), ")"));
    }
    absl::StrAppend(&sql, ")");
    DS_ASSIGN_OR_RETURN(postgres::Result result, Query(sql, params));
    // Match result rows to the keys asked for by decoding their keys like the batch's.
    const int nresult = postgres::RowCount(result);
    std::vector<std::shared_ptr<arrow::Array>> key_arrays;
    for (size_t k = 0; k < keys.size(); ++k) {
      DS_ASSIGN_OR_RETURN(auto decoder, make_decoder(keys[k]));
      for (int row = 0; row < nresult; ++row) {
        auto v = postgres::GetValue(result, row, static_cast<int>(k));
        if (!v.has_value()) {
          DS_RETURN_IF_ERROR(decoder->AppendNull());
        } else {
          DS_RETURN_IF_ERROR(binary_ ? decoder->AppendBinary(*v) : decoder->AppendText(*v));
        }
      }
      DS_ASSIGN_OR_RETURN(auto array, decoder->Finish());
      key_arrays.push_back(std::move(array));
    }
    for (int row = 0; row < nresult; ++row) {
      std::string identity;
      bool ok = true;
      for (const auto& array : key_arrays) {
        auto text = KeyText(*array, row);
        if (!text.has_value()) ok = false;
        if (!ok) break;
        AppendIdentityPart(&identity, *text);
      }
      if (!ok) continue;
      auto it = key_ordinal.find(identity);
      if (it != key_ordinal.end()) found[it->second] = {static_cast<int>(results.size()), row};
    }
    results.push_back(std::move(result));
  }

  // Per missing column: decode the re-read values of the rows that want it, then splice them
  // into a copy of the column.
  std::vector<std::vector<bool>> filled(nrows);
  std::vector<std::shared_ptr<arrow::Array>> columns = rb.columns();
  for (size_t f = 0; f < fetch.size(); ++f) {
    const int field = fetch[f];
    const int result_col = static_cast<int>(keys.size() + f);
    std::vector<int64_t> rows;  // rows to fill, in order
    DS_ASSIGN_OR_RETURN(auto decoder, make_decoder(field));
    for (int64_t r = 0; r < nrows; ++r) {
      if (row_key[r] < 0 || std::find(want[r].begin(), want[r].end(), field) == want[r].end()) {
        continue;
      }
      const auto [result, row] = found[row_key[r]];
      if (result < 0) continue;  // the row is gone
      auto v = postgres::GetValue(results[result], row, result_col);
      if (!v.has_value()) {
        DS_RETURN_IF_ERROR(decoder->AppendNull());
      } else {
        DS_RETURN_IF_ERROR_CTX(binary_ ? decoder->AppendBinary(*v) : decoder->AppendText(*v),
                               absl::StrCat("column ", schema->field(field)->name()));
      }
      rows.push_back(r);
    }
    if (rows.empty()) continue;
    std::vector<bool> usable(rows.size(), true);
    for (const auto& u : decoder->unrepresentable()) usable[u.row] = false;  // stays unchanged
    DS_ASSIGN_OR_RETURN(auto values, decoder->Finish());

    auto made = arrow::MakeBuilder(values->type());
    if (!made.ok()) return ArrowError(made.status(), "a builder for a filled column");
    std::unique_ptr<arrow::ArrayBuilder> builder = std::move(*made);
    const arrow::ArraySpan original(*columns[field]->data());
    const arrow::ArraySpan fetched(*values->data());
    int64_t copied = 0;  // original rows [0, copied) are in the builder
    for (size_t j = 0; j < rows.size(); ++j) {
      if (!usable[j]) continue;
      const int64_t r = rows[j];
      if (r > copied) {
        auto st = builder->AppendArraySlice(original, copied, r - copied);
        if (!st.ok()) return ArrowError(st, "copying a column");
      }
      auto st = builder->AppendArraySlice(fetched, static_cast<int64_t>(j), 1);
      if (!st.ok()) return ArrowError(st, "filling a column");
      copied = r + 1;
      if (filled[r].empty()) filled[r].assign(schema->num_fields(), false);
      filled[r][field] = true;
      ++stats_.filled;
    }
    if (copied < nrows) {
      auto st = builder->AppendArraySlice(original, copied, nrows - copied);
      if (!st.ok()) return ArrowError(st, "copying a column");
    }
    std::shared_ptr<arrow::Array> column;
    auto st = builder->Finish(&column);
    if (!st.ok()) return ArrowError(st, "finishing a column");
    columns[field] = std::move(column);
  }

  // __unchanged without the names filled in.
  arrow::ListBuilder list(arrow::default_memory_pool(), std::make_shared<arrow::StringBuilder>(),
                          unchanged->type());
  auto* items = static_cast<arrow::StringBuilder*>(list.value_builder());
  for (int64_t r = 0; r < nrows; ++r) {
    auto st = list.Append();
    if (!st.ok()) return ArrowError(st, "__unchanged");
    for (int64_t i = unchanged->value_offset(r); i < unchanged->value_offset(r + 1); ++i) {
      const auto name = names->GetView(i);
      if (!filled[r].empty()) {
        const int field = schema->GetFieldIndex(std::string(name));
        if (field >= 0 && filled[r][field]) continue;
      }
      st = items->Append(name);
      if (!st.ok()) return ArrowError(st, "__unchanged");
    }
    for (int field : want[r]) {
      if (filled[r].empty() || !filled[r][field]) ++stats_.missing;
    }
  }
  std::shared_ptr<arrow::Array> list_array;
  auto st = list.Finish(&list_array);
  if (!st.ok()) return ArrowError(st, "__unchanged");
  columns[schema->GetFieldIndex(cdc::kUnchangedColumn)] = std::move(list_array);
  rel.records = arrow::RecordBatch::Make(schema, nrows, std::move(columns));
  return absl::OkStatus();
}

}  // namespace ductstream::runner
