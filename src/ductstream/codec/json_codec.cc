#include "ductstream/codec/encoders.h"

namespace ductstream::codec::internal {

absl::StatusOr<std::unique_ptr<Encoder>> MakeJsonEncoder(const EncoderOptions&) {
  return absl::UnimplementedError("wire format json is not implemented yet");
}

}  // namespace ductstream::codec::internal
