#pragma once

// Internal: one factory per wire format, called by MakeEncoder (codec.cc).

#include <memory>

#include "absl/status/statusor.h"
#include "ductstream/codec/codec.h"

namespace ductstream::codec::internal {

absl::StatusOr<std::unique_ptr<Encoder>> MakeArrowEncoder(const EncoderOptions& options);
absl::StatusOr<std::unique_ptr<Encoder>> MakeParquetEncoder(const EncoderOptions& options);
absl::StatusOr<std::unique_ptr<Encoder>> MakeAvroEncoder(const EncoderOptions& options);
absl::StatusOr<std::unique_ptr<Encoder>> MakeProtoEncoder(const EncoderOptions& options);
absl::StatusOr<std::unique_ptr<Encoder>> MakeJsonEncoder(const EncoderOptions& options);

}  // namespace ductstream::codec::internal
