// The parquet wire format: one Parquet file per relation's change records, one row group, with
// the Arrow schema stored (ARROW:schema) so Arrow readers restore the exact types and the schema
// and field metadata. The writer streams: pages reach the output stream as they are encoded
// (WriteParquet to a file, Encode straight into the caller's string), never a second copy.
//
// Parquet has no logical type for Arrow's month_day_nano_interval (its INTERVAL is months/days/
// milliseconds and Arrow's writer refuses the type), so such columns, at any nesting depth and in
// __before, are written as struct<months: int32, days: int32, nanoseconds: int64>, losslessly;
// each such field carries metadata "ductstream.arrow_type" = "month_day_nano_interval".
//
// Dictionary encoding is chosen per column from a sample of the batch (DictionaryPays): the
// columns whose values repeat keep it, the nearly unique ones (keys, timestamps, LSNs, UUIDs)
// are written plain.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include <arrow/io/interfaces.h>
#include <arrow/util/bit_util.h>
#include <arrow/util/bitmap_ops.h>
#include <arrow/util/compression.h>
#include <arrow/util/key_value_metadata.h>
#include <parquet/arrow/writer.h>
#include <parquet/exception.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "ductstream/base/status.h"
#include "ductstream/codec/encoders.h"
#include "ductstream/codec/parquet_codec.h"

namespace ductstream::codec::internal {
namespace {

constexpr char kMetaArrowType[] = "ductstream.arrow_type";

absl::Status FromArrow(const arrow::Status& status, absl::string_view context) {
  if (status.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(context, ": ", status.ToString()));
}

bool NeedsConversion(const arrow::DataType& type) {
  switch (type.id()) {
    case arrow::Type::INTERVAL_MONTH_DAY_NANO:
      return true;
    case arrow::Type::LIST:
    case arrow::Type::LARGE_LIST:
    case arrow::Type::FIXED_SIZE_LIST:
    case arrow::Type::STRUCT:
    case arrow::Type::MAP:
      break;
    default:
      return false;  // other types pass through; the Parquet writer reports what it cannot write
  }
  for (const auto& child : type.fields()) {
    if (NeedsConversion(*child->type())) return true;
  }
  return false;
}

std::shared_ptr<arrow::DataType> IntervalStructType() {
  return arrow::struct_({arrow::field("months", arrow::int32(), false),
                         arrow::field("days", arrow::int32(), false),
                         arrow::field("nanoseconds", arrow::int64(), false)});
}

std::shared_ptr<arrow::DataType> ConvertType(const std::shared_ptr<arrow::DataType>& type);

std::shared_ptr<arrow::Field> ConvertField(const std::shared_ptr<arrow::Field>& field) {
  if (!NeedsConversion(*field->type())) return field;
  if (field->type()->id() != arrow::Type::INTERVAL_MONTH_DAY_NANO) {
    return field->WithType(ConvertType(field->type()));
  }
  return field->WithType(IntervalStructType())
      ->WithMergedMetadata(
          arrow::key_value_metadata({kMetaArrowType}, {field->type()->ToString()}));
}

std::shared_ptr<arrow::DataType> ConvertType(const std::shared_ptr<arrow::DataType>& type) {
  if (!NeedsConversion(*type)) return type;
  if (type->id() == arrow::Type::INTERVAL_MONTH_DAY_NANO) return IntervalStructType();
  arrow::FieldVector fields;
  for (const auto& child : type->fields()) fields.push_back(ConvertField(child));
  switch (type->id()) {
    case arrow::Type::LIST:
      return arrow::list(fields[0]);
    case arrow::Type::LARGE_LIST:
      return arrow::large_list(fields[0]);
    case arrow::Type::FIXED_SIZE_LIST:
      return arrow::fixed_size_list(
          fields[0], static_cast<const arrow::FixedSizeListType&>(*type).list_size());
    case arrow::Type::STRUCT:
      return arrow::struct_(fields);
    case arrow::Type::MAP:
      return std::make_shared<arrow::MapType>(
          fields[0], static_cast<const arrow::MapType&>(*type).keys_sorted());
    default:
      return type;  // not reached: NeedsConversion is false for other types
  }
}

// Rewrites `data` (whose type NeedsConversion) to ConvertType(type). Parents keep their buffers
// and offset; only the interval leaves are rebuilt (as offset-0 arrays of the same length, which
// index exactly like the original child).
arrow::Result<std::shared_ptr<arrow::ArrayData>> ConvertData(
    const std::shared_ptr<arrow::ArrayData>& data) {
  if (data->type->id() == arrow::Type::INTERVAL_MONTH_DAY_NANO) {
    const arrow::MonthDayNanoIntervalArray intervals(data);
    arrow::Int32Builder months;
    arrow::Int32Builder days;
    arrow::Int64Builder nanos;
    ARROW_RETURN_NOT_OK(months.Reserve(data->length));
    ARROW_RETURN_NOT_OK(days.Reserve(data->length));
    ARROW_RETURN_NOT_OK(nanos.Reserve(data->length));
    for (int64_t i = 0; i < data->length; ++i) {
      const auto v = intervals.GetValue(i);  // zeros under a null slot: never read as values
      months.UnsafeAppend(v.months);
      days.UnsafeAppend(v.days);
      nanos.UnsafeAppend(v.nanoseconds);
    }
    std::shared_ptr<arrow::Buffer> validity;
    if (data->MayHaveNulls() && data->buffers[0] != nullptr) {
      ARROW_ASSIGN_OR_RAISE(validity, arrow::internal::CopyBitmap(arrow::default_memory_pool(),
                                                                  data->buffers[0]->data(),
                                                                  data->offset, data->length));
    }
    ARROW_ASSIGN_OR_RAISE(auto m, months.Finish());
    ARROW_ASSIGN_OR_RAISE(auto d, days.Finish());
    ARROW_ASSIGN_OR_RAISE(auto n, nanos.Finish());
    return arrow::ArrayData::Make(IntervalStructType(), data->length, {validity},
                                  {m->data(), d->data(), n->data()}, data->null_count.load(), 0);
  }
  std::vector<std::shared_ptr<arrow::ArrayData>> children;
  for (const auto& child : data->child_data) {
    if (NeedsConversion(*child->type)) {
      ARROW_ASSIGN_OR_RAISE(auto converted, ConvertData(child));
      children.push_back(std::move(converted));
    } else {
      children.push_back(child);
    }
  }
  auto out = data->Copy();
  out->type = ConvertType(data->type);
  out->child_data = std::move(children);
  return out;
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> ConvertForParquet(
    const std::shared_ptr<arrow::RecordBatch>& batch) {
  const auto& schema = batch->schema();
  bool any = false;
  for (const auto& field : schema->fields()) any = any || NeedsConversion(*field->type());
  if (!any) return batch;
  arrow::FieldVector fields;
  arrow::ArrayDataVector columns;
  for (int c = 0; c < schema->num_fields(); ++c) {
    fields.push_back(ConvertField(schema->field(c)));
    if (NeedsConversion(*schema->field(c)->type())) {
      ARROW_ASSIGN_OR_RAISE(auto converted, ConvertData(batch->column_data(c)));
      columns.push_back(std::move(converted));
    } else {
      columns.push_back(batch->column_data(c));
    }
  }
  return arrow::RecordBatch::Make(arrow::schema(std::move(fields), schema->metadata()),
                                  batch->num_rows(), std::move(columns));
}

// How many of the non-null values among `sample` rows of `array`, evenly spread, are distinct
// (`*non_null` is set to how many there were); -1 for a type that is not dictionary-encoded or
// not handled here (booleans, nested types).
int64_t DistinctInSample(const arrow::Array& array, int64_t sample, int64_t* non_null) {
  *non_null = 0;
  const int64_t rows = array.length();
  auto row = [&](int64_t j) { return j * rows / sample; };
  const arrow::DataType& type = *array.type();
  const uint8_t* validity = array.null_bitmap_data();
  auto is_null = [&](int64_t i) {
    return validity != nullptr && !arrow::bit_util::GetBit(validity, array.offset() + i);
  };
  const auto* fixed = dynamic_cast<const arrow::FixedWidthType*>(&type);
  if (fixed != nullptr && fixed->bit_width() % 8 == 0 && fixed->bit_width() > 0 &&
      array.data()->buffers.size() > 1 && array.data()->buffers[1] != nullptr) {
    const int width = fixed->bit_width() / 8;
    const uint8_t* values = array.data()->buffers[1]->data() + array.offset() * width;
    if (width <= 8) {
      absl::flat_hash_set<uint64_t> seen;
      seen.reserve(static_cast<size_t>(sample));
      for (int64_t j = 0; j < sample; ++j) {
        const int64_t i = row(j);
        if (is_null(i)) continue;
        uint64_t v = 0;
        std::memcpy(&v, values + i * width, static_cast<size_t>(width));
        seen.insert(v);
        ++*non_null;
      }
      return static_cast<int64_t>(seen.size());
    }
    absl::flat_hash_set<absl::string_view> seen;  // decimals, fixed-size binary
    seen.reserve(static_cast<size_t>(sample));
    for (int64_t j = 0; j < sample; ++j) {
      const int64_t i = row(j);
      if (is_null(i)) continue;
      seen.insert(absl::string_view(reinterpret_cast<const char*>(values + i * width),
                                    static_cast<size_t>(width)));
      ++*non_null;
    }
    return static_cast<int64_t>(seen.size());
  }
  auto count_views = [&](const auto& binary) {
    absl::flat_hash_set<absl::string_view> seen;
    seen.reserve(static_cast<size_t>(sample));
    for (int64_t j = 0; j < sample; ++j) {
      const int64_t i = row(j);
      if (is_null(i)) continue;
      const auto v = binary.GetView(i);
      seen.insert(absl::string_view(v.data(), v.size()));
      ++*non_null;
    }
    return static_cast<int64_t>(seen.size());
  };
  switch (type.id()) {
    case arrow::Type::STRING:
    case arrow::Type::BINARY:
      return count_views(static_cast<const arrow::BinaryArray&>(array));
    case arrow::Type::LARGE_STRING:
    case arrow::Type::LARGE_BINARY:
      return count_views(static_cast<const arrow::LargeBinaryArray&>(array));
    case arrow::Type::STRING_VIEW:
    case arrow::Type::BINARY_VIEW:
      return count_views(static_cast<const arrow::BinaryViewArray&>(array));
    default:
      return -1;
  }
}

// Whether dictionary encoding pays for `array`, judged from a sample of its values.
// Parquet's writer dictionary-encodes every column by default and falls back to plain only once
// a dictionary passes 1 MB, so on a batch of change records it hashes every key, timestamp, LSN
// and UUID into a dictionary as large as the column itself: about a third of the encoding time of
// a 16-column table, for a larger file. (Arrow has no such heuristic of its own.) The sample's
// duplicates estimate how many distinct values the batch holds (birthday bound: m values drawn
// from k distinct ones repeat about m²/2k times); the dictionary is kept when values repeat at
// least twice on average, and for anything the sample cannot judge.
bool DictionaryPays(const arrow::Array& array) {
  constexpr int64_t kSample = 512;
  const int64_t rows = array.length();
  const int64_t sample = std::min(rows, kSample);
  int64_t m = 0;
  const int64_t distinct = DistinctInSample(array, sample, &m);
  if (distinct < 0 || m < 64) return true;
  if (sample == rows) return 2 * distinct <= m;  // the whole column: exact
  if (2 * distinct <= m) return true;
  const int64_t repeats = m - distinct;
  // k ≈ m² / 2·repeats, kept when k <= rows / 2.
  return repeats > 0 && m * m <= repeats * rows;
}

// The writer properties for `batch`: `compression`, and dictionary encoding only where it pays
// (top-level leaf columns and the fields of __before; other nested columns keep the default).
std::shared_ptr<parquet::WriterProperties> WriterPropertiesFor(
    const arrow::RecordBatch& batch, arrow::Compression::type compression) {
  parquet::WriterProperties::Builder builder;
  builder.compression(compression);
  for (int c = 0; c < batch.num_columns(); ++c) {
    const std::string& name = batch.schema()->field(c)->name();
    const arrow::Array& column = *batch.column(c);
    if (column.type_id() == arrow::Type::STRUCT && name == cdc::kBeforeColumn) {
      const auto& before = static_cast<const arrow::StructArray&>(column);
      for (int f = 0; f < before.num_fields(); ++f) {
        if (!DictionaryPays(*before.field(f))) {
          builder.disable_dictionary(
              absl::StrCat(name, ".", before.struct_type()->field(f)->name()));
        }
      }
    } else if (!DictionaryPays(column)) {
      builder.disable_dictionary(name);
    }
  }
  return builder.build();
}

absl::StatusOr<arrow::Compression::type> ParseCompression(absl::string_view option) {
  const std::string name = absl::AsciiStrToLower(option);
  arrow::Compression::type compression;
  if (name.empty() || name == "snappy") {
    compression = arrow::Compression::SNAPPY;
  } else if (name == "zstd") {
    compression = arrow::Compression::ZSTD;
  } else if (name == "gzip") {
    compression = arrow::Compression::GZIP;
  } else if (name == "lz4") {
    // Parquet C++ writes arrow's LZ4 as the LZ4_RAW codec, which current readers all accept
    // (the older Hadoop-framed "LZ4" is deprecated by the Parquet format).
    compression = arrow::Compression::LZ4;
  } else if (name == "none" || name == "uncompressed") {
    compression = arrow::Compression::UNCOMPRESSED;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported parquet compression \"", option,
                     "\" (expected snappy, zstd, gzip, lz4 or none)"));
  }
  if (compression != arrow::Compression::UNCOMPRESSED &&
      !arrow::util::Codec::IsAvailable(compression)) {
    return absl::InvalidArgumentError(
        absl::StrCat("parquet compression \"", name, "\" is not available in this build of Arrow"));
  }
  return compression;
}

absl::Status WriteParquetTo(const cdc::RelationChanges& changes,
                            arrow::Compression::type compression,
                            std::shared_ptr<arrow::io::OutputStream> sink) {
  if (changes.records == nullptr) return absl::InvalidArgumentError("no change records");
  const std::string context = absl::StrCat("encoding ", changes.QualifiedName(), " as parquet");
  auto batch = ConvertForParquet(changes.records);
  if (!batch.ok()) return FromArrow(batch.status(), context);
  auto table = arrow::Table::FromRecordBatches({*batch});
  if (!table.ok()) return FromArrow(table.status(), context);
  auto props = WriterPropertiesFor(**batch, compression);
  auto arrow_props = parquet::ArrowWriterProperties::Builder().store_schema()->build();
  arrow::Status status;
  // Parquet's C++ writer reports some failures by throwing; exceptions stop here. WriteTable
  // (unlike WriteRecordBatch's buffered row groups) hands each column's pages to the sink as
  // they fill, so the one row group per file costs no more memory than several would.
  try {
    status =
        parquet::arrow::WriteTable(**table, arrow::default_memory_pool(), std::move(sink),
                                   std::max<int64_t>(1, (*table)->num_rows()), props, arrow_props);
  } catch (const parquet::ParquetException& e) {
    status = arrow::Status::IOError(e.what());
  }
  if (!status.ok()) {
    // Unsupported types are the caller's input, not an internal failure.
    if (status.IsNotImplemented() || status.IsTypeError()) {
      return absl::InvalidArgumentError(absl::StrCat(context, ": ", status.ToString()));
    }
    return FromArrow(status, context);
  }
  return absl::OkStatus();
}

class ParquetEncoder final : public Encoder {
 public:
  explicit ParquetEncoder(arrow::Compression::type compression) : compression_(compression) {}

  WireFormat format() const override { return WireFormat::kParquet; }

  absl::Status Encode(const cdc::RelationChanges& changes, std::string* out) override {
    const size_t size = out->size();
    absl::Status status =
        WriteParquetTo(changes, compression_, std::make_shared<StringOutputStream>(out));
    if (!status.ok()) out->resize(size);  // nothing half-written is left appended
    return status;
  }

 private:
  arrow::Compression::type compression_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Encoder>> MakeParquetEncoder(const EncoderOptions& options) {
  DS_ASSIGN_OR_RETURN(arrow::Compression::type compression, ParseCompression(options.compression));
  return std::make_unique<ParquetEncoder>(compression);
}

}  // namespace ductstream::codec::internal

namespace ductstream::codec {

absl::Status WriteParquet(const cdc::RelationChanges& changes, const EncoderOptions& options,
                          std::shared_ptr<arrow::io::OutputStream> sink) {
  DS_ASSIGN_OR_RETURN(arrow::Compression::type compression,
                      internal::ParseCompression(options.compression));
  return internal::WriteParquetTo(changes, compression, std::move(sink));
}

}  // namespace ductstream::codec
