#include "ductstream/codec/encoders.h"

namespace ductstream::codec::internal {

absl::StatusOr<std::unique_ptr<Encoder>> MakeArrowEncoder(const EncoderOptions&) {
  return absl::UnimplementedError("wire format arrow is not implemented yet");
}

}  // namespace ductstream::codec::internal
