#pragma once

// Internal: one factory per wire format, called by MakeEncoder (codec.cc), and what the
// encoders share.

#include <memory>
#include <string>

#include <arrow/io/interfaces.h>

#include "absl/status/statusor.h"
#include "ductstream/codec/codec.h"

namespace ductstream::codec::internal {

absl::StatusOr<std::unique_ptr<Encoder>> MakeArrowEncoder(const EncoderOptions& options);
absl::StatusOr<std::unique_ptr<Encoder>> MakeParquetEncoder(const EncoderOptions& options);
absl::StatusOr<std::unique_ptr<Encoder>> MakeAvroEncoder(const EncoderOptions& options);
absl::StatusOr<std::unique_ptr<Encoder>> MakeProtoEncoder(const EncoderOptions& options);
absl::StatusOr<std::unique_ptr<Encoder>> MakeJsonEncoder(const EncoderOptions& options);

/// An output stream appending to a string, for encoders built on Arrow writers: the document is
/// written straight into the caller's output (a BufferOutputStream would hold it a second time
/// until it is copied out). Tell() counts from the stream's first byte (offsets in a Parquet
/// footer are relative to the file, not to the string).
class StringOutputStream final : public arrow::io::OutputStream {
 public:
  explicit StringOutputStream(std::string* out) : out_(out), start_(out->size()) {}

  arrow::Status Close() override {
    closed_ = true;
    return arrow::Status::OK();
  }
  bool closed() const override { return closed_; }
  arrow::Result<int64_t> Tell() const override {
    return static_cast<int64_t>(out_->size() - start_);
  }
  arrow::Status Write(const void* data, int64_t nbytes) override {
    if (closed_) return arrow::Status::IOError("write to a closed stream");
    out_->append(static_cast<const char*>(data), static_cast<size_t>(nbytes));
    return arrow::Status::OK();
  }

 private:
  std::string* out_;
  size_t start_;
  bool closed_ = false;
};

}  // namespace ductstream::codec::internal
