// The arrow wire format: an Arrow IPC stream (schema with its schema and field metadata, then one
// record batch, then the end-of-stream marker), readable by any Arrow implementation.
#include <arrow/io/memory.h>
#include <arrow/ipc/writer.h>

#include "absl/strings/str_cat.h"
#include "ductstream/codec/encoders.h"

namespace ductstream::codec::internal {
namespace {

absl::Status FromArrow(const arrow::Status& status, absl::string_view context) {
  if (status.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(context, ": ", status.ToString()));
}

class ArrowEncoder final : public Encoder {
 public:
  WireFormat format() const override { return WireFormat::kArrow; }

  absl::Status Encode(const cdc::RelationChanges& changes, std::string* out) override {
    if (changes.records == nullptr) return absl::InvalidArgumentError("no change records");
    const std::string context = absl::StrCat("encoding ", changes.QualifiedName(), " as arrow");
    auto sink = arrow::io::BufferOutputStream::Create();
    if (!sink.ok()) return FromArrow(sink.status(), context);
    auto writer = arrow::ipc::MakeStreamWriter(*sink, changes.records->schema());
    if (!writer.ok()) return FromArrow(writer.status(), context);
    auto status = (*writer)->WriteRecordBatch(*changes.records);
    if (status.ok()) status = (*writer)->Close();
    if (!status.ok()) return FromArrow(status, context);
    auto buffer = (*sink)->Finish();
    if (!buffer.ok()) return FromArrow(buffer.status(), context);
    out->append(reinterpret_cast<const char*>((*buffer)->data()),
                static_cast<size_t>((*buffer)->size()));
    return absl::OkStatus();
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<Encoder>> MakeArrowEncoder(const EncoderOptions&) {
  return std::make_unique<ArrowEncoder>();
}

}  // namespace ductstream::codec::internal
