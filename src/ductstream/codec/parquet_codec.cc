#include "ductstream/codec/encoders.h"

namespace ductstream::codec::internal {

absl::StatusOr<std::unique_ptr<Encoder>> MakeParquetEncoder(const EncoderOptions&) {
  return absl::UnimplementedError("wire format parquet is not implemented yet");
}

}  // namespace ductstream::codec::internal
