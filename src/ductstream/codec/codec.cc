#include "ductstream/codec/codec.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "ductstream/codec/encoders.h"

namespace ductstream::codec {

absl::StatusOr<WireFormat> ParseWireFormat(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "arrow") return WireFormat::kArrow;
  if (lower == "parquet") return WireFormat::kParquet;
  if (lower == "avro") return WireFormat::kAvro;
  if (lower == "proto" || lower == "protobuf") return WireFormat::kProto;
  if (lower == "json" || lower == "jsonl") return WireFormat::kJson;
  return absl::InvalidArgumentError(absl::StrCat(
      "unsupported wire format \"", name, "\" (expected arrow, parquet, avro, proto or json)"));
}

absl::string_view WireFormatName(WireFormat format) {
  switch (format) {
    case WireFormat::kArrow:
      return "arrow";
    case WireFormat::kParquet:
      return "parquet";
    case WireFormat::kAvro:
      return "avro";
    case WireFormat::kProto:
      return "proto";
    case WireFormat::kJson:
      return "json";
  }
  return "unknown";
}

absl::string_view FileExtension(WireFormat format) {
  switch (format) {
    case WireFormat::kArrow:
      return "arrows";
    case WireFormat::kParquet:
      return "parquet";
    case WireFormat::kAvro:
      return "avro";
    case WireFormat::kProto:
      return "pb";
    case WireFormat::kJson:
      return "jsonl";
  }
  return "bin";
}

absl::string_view ContentType(WireFormat format) {
  switch (format) {
    case WireFormat::kArrow:
      return "application/vnd.apache.arrow.stream";
    case WireFormat::kParquet:
      return "application/vnd.apache.parquet";
    case WireFormat::kAvro:
      return "application/avro";
    case WireFormat::kProto:
      return "application/x-protobuf";
    case WireFormat::kJson:
      return "application/x-ndjson";
  }
  return "application/octet-stream";
}

absl::StatusOr<std::unique_ptr<Encoder>> MakeEncoder(WireFormat format,
                                                     const EncoderOptions& options) {
  switch (format) {
    case WireFormat::kArrow:
      return internal::MakeArrowEncoder(options);
    case WireFormat::kParquet:
      return internal::MakeParquetEncoder(options);
    case WireFormat::kAvro:
      return internal::MakeAvroEncoder(options);
    case WireFormat::kProto:
      return internal::MakeProtoEncoder(options);
    case WireFormat::kJson:
      return internal::MakeJsonEncoder(options);
  }
  return absl::InvalidArgumentError("unknown wire format");
}

}  // namespace ductstream::codec
