#pragma once

// Wire formats: encoders from a relation's change records (cdc::RelationChanges, layout in
// ductstream/cdc/change_batch.h) to bytes that a destination stores or sends.
//
//   arrow    Arrow IPC stream: the schema (with its metadata) and one record batch.
//   parquet  A Parquet file of the same record batch (Arrow schema stored), `compression` option.
//   avro     An Avro object container file; schema derived from the Arrow types.
//   proto    A serialized ductstream.v1.Batch (proto/ductstream/v1/data.proto).
//   json     JSON Lines: one JSON object per change.
//
// Every format keeps the three cell states apart: a value, NULL, and unchanged TOAST (listed in
// `__unchanged`), and keeps values that did not fit their Arrow type exactly (`__exact`).

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ductstream/cdc/change_batch.h"

namespace ductstream::codec {

enum class WireFormat { kArrow, kParquet, kAvro, kProto, kJson };

/// Parses "arrow", "parquet", "avro", "proto", "json" (case-insensitive; "jsonl" is an alias of
/// json). Anything else is InvalidArgument listing the valid names.
absl::StatusOr<WireFormat> ParseWireFormat(absl::string_view name);
/// The canonical lowercase name.
absl::string_view WireFormatName(WireFormat format);
/// File extension without the dot: "arrows", "parquet", "avro", "pb", "jsonl".
absl::string_view FileExtension(WireFormat format);
/// MIME type, e.g. "application/vnd.apache.arrow.stream".
absl::string_view ContentType(WireFormat format);

struct EncoderOptions {
  /// Parquet: "snappy" (default), "zstd", "gzip", "lz4", "none". Avro: "null" (default),
  /// "deflate", "snappy" where the Avro library supports it. Ignored by the other formats.
  std::string compression;
};

/// Encodes one relation's changes into one self-contained document (file, message body).
/// Thread-compatible: use one encoder per thread.
class Encoder {
 public:
  virtual ~Encoder() = default;
  virtual WireFormat format() const = 0;
  /// Appends the encoding of `changes` to `*out`. Fails with a clear error (naming the column
  /// and the type) for an Arrow type the format cannot carry; never drops data silently.
  virtual absl::Status Encode(const cdc::RelationChanges& changes, std::string* out) = 0;
};

/// InvalidArgument for an option the format does not support (e.g. an unknown compression).
absl::StatusOr<std::unique_ptr<Encoder>> MakeEncoder(WireFormat format,
                                                     const EncoderOptions& options = {});

}  // namespace ductstream::codec
