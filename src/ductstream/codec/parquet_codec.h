#pragma once

// Streaming form of the parquet wire format (codec.h). Encoder::Encode returns a whole file in a
// string; a destination that stores files writes it to the file as it is encoded instead, so its
// memory holds a few Parquet pages rather than the whole file (DESIGN.md §2 invariant 4).

#include <memory>

#include <arrow/io/interfaces.h>

#include "absl/status/status.h"
#include "ductstream/cdc/change_batch.h"
#include "ductstream/codec/codec.h"

namespace ductstream::codec {

/// Writes `changes` to `sink` as one Parquet file, byte for byte what the parquet Encoder returns
/// for the same options; `sink`'s Tell() must count from the file's first byte. Does not close
/// `sink`. InvalidArgument for an unsupported compression or an Arrow type Parquet cannot carry;
/// a failing `sink` fails the call (the caller may know more about why than the Arrow status).
absl::Status WriteParquet(const cdc::RelationChanges& changes, const EncoderOptions& options,
                          std::shared_ptr<arrow::io::OutputStream> sink);

}  // namespace ductstream::codec
