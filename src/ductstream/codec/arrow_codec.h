#pragma once

// Streaming form of the arrow wire format (codec.h). Encoder::Encode returns the IPC stream in a
// string; a destination that stores files writes it to the file instead, without a copy of the
// batch in between.

#include <memory>

#include <arrow/io/interfaces.h>

#include "absl/status/status.h"
#include "ductstream/cdc/change_batch.h"

namespace ductstream::codec {

/// Writes `changes` to `sink` as one Arrow IPC stream, byte for byte what the arrow Encoder
/// returns (it is what the Encoder writes). The IPC writer hands each body buffer to `sink` whole,
/// in one Write call with the buffer's own address. Does not close `sink`.
absl::Status WriteArrowStream(const cdc::RelationChanges& changes,
                              std::shared_ptr<arrow::io::OutputStream> sink);

}  // namespace ductstream::codec
