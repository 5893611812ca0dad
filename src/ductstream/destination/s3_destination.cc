#include "ductstream/destination/s3_destination.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <arrow/filesystem/s3fs.h>
#include <arrow/io/memory.h>
#include <arrow/util/key_value_metadata.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ductstream/base/logging.h"
#include "ductstream/base/status.h"
#include "ductstream/codec/parquet_codec.h"
#include "ductstream/destination/file_destination.h"

namespace ductstream::destination {
namespace {

// Arrow's S3 support (the AWS SDK) is initialised once per process and must be finalised before
// exit, or the SDK's static teardown may crash. Finalising at exit rather than when a destination
// closes keeps later destinations in the same process (tests, a restarted pipeline) working.
absl::Status EnsureS3() {
  static std::once_flag once;
  static arrow::Status status;
  std::call_once(once,
                 [] { status = arrow::fs::InitializeS3(arrow::fs::S3GlobalOptions::Defaults()); });
  if (!status.ok()) {
    return absl::InternalError(absl::StrCat("initialising S3 support: ", status.ToString()));
  }
  return absl::OkStatus();
}

// A failed upload's status: retriable ones become Unavailable (base::IsRetriable), the others
// FailedPrecondition so the flow fails with the reason.
absl::Status FromS3Error(const arrow::Status& s, absl::string_view context) {
  const std::string message = absl::StrCat(context, ": ", s.ToString());
  return IsRetriableS3Error(s.ToString()) ? absl::UnavailableError(message)
                                          : absl::FailedPreconditionError(message);
}

class S3Destination final : public runner::Destination {
 public:
  S3Destination(S3DestinationConfig config, std::shared_ptr<arrow::fs::S3FileSystem> fs)
      : config_(std::move(config)),
        fs_(std::move(fs)),
        metadata_(arrow::key_value_metadata(
            {"Content-Type"}, {std::string(codec::ContentType(config_.options.format))})),
        log_(base::GetLogger("s3")) {
    encoder_options_.compression = config_.options.compression;
  }

  const std::string& name() const override { return config_.name; }

  absl::Status Write(const cdc::ChangeBatch& batch) override {
    DS_ASSIGN_OR_RETURN(auto encoded, Prepare(batch));
    return WritePrepared(batch, std::move(encoded));
  }

  // Encoding runs on the data path's preparing threads, several batches at once; an upload that
  // is retried sends the same bytes again instead of encoding again.
  bool prepares() const override { return true; }

  absl::StatusOr<std::unique_ptr<runner::Prepared>> Prepare(
      const cdc::ChangeBatch& batch) override {
    auto encoded = std::make_unique<EncodedObjects>();
    // Encoders may keep per-schema state: each preparation has its own (cheap to make).
    std::unique_ptr<codec::Encoder> encoder;
    if (config_.options.format != codec::WireFormat::kParquet) {
      DS_ASSIGN_OR_RETURN(encoder, codec::MakeEncoder(config_.options.format, encoder_options_));
    }
    for (const cdc::RelationChanges& changes : batch.relations) {
      if (changes.num_rows() == 0) continue;
      const std::string key = S3ObjectKey(config_.options.prefix, changes, config_.options.format);
      // One object holds one relation of one batch: at most about max_batch_bytes, encoded.
      std::shared_ptr<arrow::Buffer> data;
      if (config_.options.format == codec::WireFormat::kParquet) {
        auto sink = arrow::io::BufferOutputStream::Create();
        if (!sink.ok()) return absl::ResourceExhaustedError(sink.status().ToString());
        DS_RETURN_IF_ERROR_CTX(codec::WriteParquet(changes, encoder_options_, *sink),
                               absl::StrCat("encoding ", changes.QualifiedName()));
        auto finished = (*sink)->Finish();
        if (!finished.ok()) return absl::InternalError(finished.status().ToString());
        data = std::move(*finished);
      } else {
        std::string bytes;
        DS_RETURN_IF_ERROR_CTX(encoder->Encode(changes, &bytes),
                               absl::StrCat("encoding ", changes.QualifiedName()));
        data = arrow::Buffer::FromString(std::move(bytes));
      }
      encoded->objects.emplace_back(key, std::move(data));
    }
    return encoded;
  }

  absl::Status WritePrepared(const cdc::ChangeBatch& /*batch*/,
                             std::unique_ptr<runner::Prepared> prepared) override {
    auto* encoded = dynamic_cast<EncodedObjects*>(prepared.get());
    if (encoded == nullptr) return absl::InternalError("s3 destination: nothing was encoded");
    for (const auto& [key, data] : encoded->objects) {
      DS_RETURN_IF_ERROR(UploadWithRetries(key, *data));
    }
    return absl::OkStatus();
  }

 private:
  struct EncodedObjects final : runner::Prepared {
    std::vector<std::pair<std::string, std::shared_ptr<arrow::Buffer>>> objects;  // key, bytes
  };

  absl::Status UploadWithRetries(const std::string& key, const arrow::Buffer& data) {
    const S3DestinationOptions& o = config_.options;
    const absl::Time deadline = o.retry_timeout == absl::ZeroDuration()
                                    ? absl::InfiniteFuture()
                                    : absl::Now() + o.retry_timeout;
    absl::Duration backoff = absl::Milliseconds(200);
    for (int attempt = 1;; ++attempt) {
      absl::Status s = Upload(key, data);
      if (s.ok()) {
        if (attempt > 1) {
          log_->info("destination {}: uploaded s3://{}/{} after {} attempts", config_.name,
                     o.bucket, key, attempt);
        }
        return s;
      }
      if (!base::IsRetriable(s)) return s;
      if (absl::Now() + backoff > deadline) {
        return base::Annotate(
            s, absl::StrCat("giving up after ", attempt, " attempts over ",
                            absl::FormatDuration(o.retry_timeout), " (retry_timeout)"));
      }
      log_->warn("destination {}: {}; retrying in {}", config_.name, std::string(s.message()),
                 absl::FormatDuration(backoff));
      absl::SleepFor(backoff);
      backoff = std::min(backoff * 2, o.retry_backoff_max);
    }
  }

  // One attempt: the object exists when its upload completes (Close), never partially (the
  // stream switches to a multipart upload past its part size).
  absl::Status Upload(const std::string& key, const arrow::Buffer& data) {
    const std::string path = absl::StrCat(config_.options.bucket, "/", key);
    const std::string where = absl::StrCat("uploading s3://", path);
    auto opened = fs_->OpenOutputStream(path, metadata_);
    if (!opened.ok()) return FromS3Error(opened.status(), where);
    std::shared_ptr<arrow::io::OutputStream> out = *opened;
    arrow::Status w = out->Write(data.data(), data.size());
    if (!w.ok()) {
      (void)out->Abort();  // drops a started multipart upload
      return FromS3Error(w, where);
    }
    arrow::Status closed = out->Close();
    if (!closed.ok()) {
      (void)out->Abort();
      return FromS3Error(closed, where);
    }
    return absl::OkStatus();
  }

  const S3DestinationConfig config_;
  std::shared_ptr<arrow::fs::S3FileSystem> fs_;
  codec::EncoderOptions encoder_options_;
  std::shared_ptr<const arrow::KeyValueMetadata> metadata_;
  std::shared_ptr<spdlog::logger> log_;
};

}  // namespace

bool IsRetriableS3Error(absl::string_view message) {
  // Arrow words S3 errors as "AWS Error <TYPE> during <Operation> operation: <message>", and
  // curl's failures as "curlCode: N, <text>".
  static constexpr std::array<absl::string_view, 9> kFatal = {
      "ACCESS_DENIED",    "NO_SUCH_BUCKET", "INVALID_ACCESS_KEY_ID",  "SIGNATURE_DOES_NOT_MATCH",
      "NO_SUCH_UPLOAD",   "VALIDATION",     "MISSING_AUTHENTICATION", "INCOMPLETE_SIGNATURE",
      "INVALID_PARAMETER"};
  for (absl::string_view marker : kFatal) {
    if (absl::StrContains(message, marker)) return false;
  }
  static constexpr std::array<absl::string_view, 17> kRetriable = {
      "NETWORK_CONNECTION",
      "SERVICE_UNAVAILABLE",
      "SLOW_DOWN",
      "THROTTLING",
      "INTERNAL_FAILURE",
      "REQUEST_TIMEOUT",
      "REQUEST_TIME_TOO_SKEWED",
      "REQUEST_EXPIRED",
      "HTTP status 5",
      "curlCode",
      "Couldn't connect",
      "Connection refused",
      "Connection reset",
      "connection was reset",
      "timed out",
      "Timeout",
      "Broken pipe",
  };
  for (absl::string_view marker : kRetriable) {
    if (absl::StrContains(message, marker)) return true;
  }
  return false;
}

std::string CommitDate(const cdc::RelationChanges& changes) {
  if (changes.records != nullptr) {
    auto column = std::dynamic_pointer_cast<arrow::TimestampArray>(
        changes.records->GetColumnByName(cdc::kCommitTsColumn));
    if (column != nullptr) {
      for (int64_t i = 0; i < column->length(); ++i) {
        if (column->IsNull(i)) continue;
        return absl::FormatTime("%Y-%m-%d", absl::FromUnixMicros(column->Value(i)),
                                absl::UTCTimeZone());
      }
    }
  }
  return "unknown";
}

std::string S3ObjectKey(absl::string_view prefix, const cdc::RelationChanges& changes,
                        codec::WireFormat format) {
  // "<schema>.<table>/<lsn>-<seq>.<ext>", with '/' in names percent-encoded: the same name as
  // the file destination's, so both destinations agree on what a replay overwrites.
  const std::string relative = FileDestinationPath(changes, format);
  const size_t slash = relative.rfind('/');
  return absl::StrCat(prefix, relative.substr(0, slash), "/date=", CommitDate(changes),
                      relative.substr(slash));
}

absl::StatusOr<std::unique_ptr<runner::Destination>> MakeS3Destination(S3DestinationConfig config) {
  const S3DestinationOptions& o = config.options;
  if (o.bucket.empty()) return absl::InvalidArgumentError("s3 destination: bucket is required");
  // An unsupported format or compression is reported now, not at the first batch.
  DS_RETURN_IF_ERROR(codec::MakeEncoder(o.format, {o.compression}).status());
  DS_RETURN_IF_ERROR(EnsureS3());
  arrow::fs::S3Options s3 = arrow::fs::S3Options::Defaults();  // the AWS credential chain
  s3.region = o.region;  // empty: the SDK's choice (profile files, else us-east-1)
  s3.endpoint_override = o.endpoint;
  s3.scheme = o.scheme;
  // Arrow uses path-style URLs whenever an endpoint is set, unless virtual addressing is forced.
  s3.force_virtual_addressing = !o.endpoint.empty() && !o.path_style;
  // The SDK's own retries cover short blips within one attempt; UploadWithRetries the outages.
  s3.retry_strategy = arrow::fs::S3RetryStrategy::GetAwsStandardRetryStrategy(3);
  // A small object becomes one PutObject instead of a three-request multipart upload; failures
  // then surface at Close, which Upload checks like any other.
  s3.allow_delayed_open = true;
  auto fs = arrow::fs::S3FileSystem::Make(s3);
  if (!fs.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("s3 destination ", config.name, ": ", fs.status().ToString()));
  }
  // Registered after the first client exists: exit handlers and static destructors run in reverse
  // order of registration, so this one runs before Arrow's function-local statics created with
  // that client (its client finalizer) are destroyed, which FinalizeS3 still uses.
  static std::once_flag finalize_at_exit;
  std::call_once(finalize_at_exit,
                 [] { std::atexit([] { (void)arrow::fs::EnsureS3Finalized(); }); });
  return std::make_unique<S3Destination>(std::move(config), *std::move(fs));
}

}  // namespace ductstream::destination
