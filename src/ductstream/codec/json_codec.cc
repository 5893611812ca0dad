// The json wire format: JSON Lines, one change object per line (RowJsonRenderer::AppendChange
// documents the object and row_json.h the value rules), each line ending in "\n".
#include "absl/strings/str_cat.h"
#include "ductstream/codec/encoders.h"
#include "ductstream/codec/row_json.h"

namespace ductstream::codec::internal {
namespace {

class JsonEncoder final : public Encoder {
 public:
  WireFormat format() const override { return WireFormat::kJson; }

  absl::Status Encode(const cdc::RelationChanges& changes, std::string* out) override {
    auto renderer = RowJsonRenderer::Create(changes);
    if (!renderer.ok()) {
      return absl::Status(renderer.status().code(),
                          absl::StrCat("encoding ", changes.QualifiedName(),
                                       " as json: ", renderer.status().message()));
    }
    const RowJsonRenderer& r = **renderer;
    for (int64_t row = 0; row < r.num_rows(); ++row) {
      r.AppendChange(row, out);
      out->push_back('\n');
    }
    return absl::OkStatus();
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<Encoder>> MakeJsonEncoder(const EncoderOptions&) {
  return std::make_unique<JsonEncoder>();
}

}  // namespace ductstream::codec::internal
