#include "ductstream/codec/encoders.h"

namespace ductstream::codec::internal {

absl::StatusOr<std::unique_ptr<Encoder>> MakeProtoEncoder(const EncoderOptions&) {
  return absl::UnimplementedError("wire format proto is not implemented yet");
}

}  // namespace ductstream::codec::internal
