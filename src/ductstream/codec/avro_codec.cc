#include "ductstream/codec/encoders.h"

namespace ductstream::codec::internal {

absl::StatusOr<std::unique_ptr<Encoder>> MakeAvroEncoder(const EncoderOptions&) {
  return absl::UnimplementedError("wire format avro is not implemented yet");
}

}  // namespace ductstream::codec::internal
