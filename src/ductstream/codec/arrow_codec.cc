// The arrow wire format: an Arrow IPC stream (schema with its schema and field metadata, then one
// record batch, then the end-of-stream marker), readable by any Arrow implementation.
#include <memory>

#include <arrow/ipc/writer.h>

#include "absl/strings/str_cat.h"
#include "ductstream/codec/arrow_codec.h"
#include "ductstream/codec/encoders.h"

namespace ductstream::codec::internal {
namespace {

class ArrowEncoder final : public Encoder {
 public:
  WireFormat format() const override { return WireFormat::kArrow; }

  // Written straight into `out`, reserved first to the record batch's IPC size: no second copy
  // of the batch and no reallocation while the body's buffers are appended (a batch is up to
  // max_batch_bytes).
  absl::Status Encode(const cdc::RelationChanges& changes, std::string* out) override {
    if (changes.records == nullptr) return absl::InvalidArgumentError("no change records");
    const size_t size = out->size();
    int64_t batch_bytes = 0;
    if (arrow::ipc::GetRecordBatchSize(*changes.records, &batch_bytes).ok()) {
      out->reserve(size + static_cast<size_t>(batch_bytes) + kSchemaAllowance);
    }
    absl::Status status = WriteArrowStream(changes, std::make_shared<StringOutputStream>(out));
    if (!status.ok()) out->resize(size);  // nothing half-written is left appended
    return status;
  }

 private:
  // Room for the schema message and the end-of-stream marker on top of the batch.
  static constexpr size_t kSchemaAllowance = 64 << 10;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Encoder>> MakeArrowEncoder(const EncoderOptions&) {
  return std::make_unique<ArrowEncoder>();
}

}  // namespace ductstream::codec::internal

namespace ductstream::codec {

absl::Status WriteArrowStream(const cdc::RelationChanges& changes,
                              std::shared_ptr<arrow::io::OutputStream> sink) {
  if (changes.records == nullptr) return absl::InvalidArgumentError("no change records");
  auto status = [&]() -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(auto writer,
                          arrow::ipc::MakeStreamWriter(std::move(sink), changes.records->schema()));
    ARROW_RETURN_NOT_OK(writer->WriteRecordBatch(*changes.records));
    return writer->Close();
  }();
  if (status.ok()) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("encoding ", changes.QualifiedName(), " as arrow: ", status.ToString()));
}

}  // namespace ductstream::codec
