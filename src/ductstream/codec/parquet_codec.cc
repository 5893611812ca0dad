// The parquet wire format: one Parquet file per relation's change records, one row group, with
// the Arrow schema stored (ARROW:schema) so Arrow readers restore the exact types and the schema
// and field metadata. The writer streams: pages reach the output stream as they are encoded
// (WriteParquet to a file, Encode straight into the caller's string), never a second copy.
//
// Parquet has no logical type for Arrow's month_day_nano_interval (its INTERVAL is months/days/
// milliseconds and Arrow's writer refuses the type), so such columns, at any nesting depth and in
// __before, are written as struct<months: int32, days: int32, nanoseconds: int64>, losslessly;
// each such field carries metadata "ductstream.arrow_type" = "month_day_nano_interval".
#include <algorithm>
#include <memory>
#include <string>

#include <arrow/io/interfaces.h>
#include <arrow/util/bitmap_ops.h>
#include <arrow/util/compression.h>
#include <arrow/util/key_value_metadata.h>
#include <parquet/arrow/writer.h>
#include <parquet/exception.h>

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
  auto props = parquet::WriterProperties::Builder().compression(compression)->build();
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

// Appends to a string: Encode writes the file straight into the caller's output (a
// BufferOutputStream would hold the file a second time until it is copied out).
class StringOutputStream final : public arrow::io::OutputStream {
 public:
  explicit StringOutputStream(std::string* out) : out_(out), start_(out->size()) {}

  arrow::Status Close() override {
    closed_ = true;
    return arrow::Status::OK();
  }
  bool closed() const override { return closed_; }
  // Offsets in the Parquet footer are relative to the file's first byte, not to the string's.
  arrow::Result<int64_t> Tell() const override {
    return static_cast<int64_t>(out_->size() - start_);
  }
  arrow::Status Write(const void* data, int64_t nbytes) override {
    if (closed_) return arrow::Status::IOError("write to a closed stream");
    out_->append(static_cast<const char*>(data), static_cast<size_t>(nbytes));
    return arrow::Status::OK();
  }

 private:
  std::string* out_;
  size_t start_;
  bool closed_ = false;
};

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
