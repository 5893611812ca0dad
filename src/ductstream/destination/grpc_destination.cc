#include "ductstream/destination/grpc_destination.h"

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ductstream/base/logging.h"
#include "ductstream/base/lsn.h"
#include "ductstream/base/status.h"
#include "ductstream/codec/codec.h"
#include "ductstream/v1/ingest.grpc.pb.h"

namespace ductstream::destination {
namespace {

spdlog::logger& Log() {
  static const auto logger = base::GetLogger("grpc-dest");
  return *logger;
}

v1::WireFormat ProtoWireFormat(codec::WireFormat f) {
  switch (f) {
    case codec::WireFormat::kArrow:
      return v1::WIRE_FORMAT_ARROW;
    case codec::WireFormat::kParquet:
      return v1::WIRE_FORMAT_PARQUET;
    case codec::WireFormat::kAvro:
      return v1::WIRE_FORMAT_AVRO;
    case codec::WireFormat::kProto:
      return v1::WIRE_FORMAT_PROTO;
    case codec::WireFormat::kJson:
      return v1::WIRE_FORMAT_JSON;
  }
  return v1::WIRE_FORMAT_UNSPECIFIED;
}

bool IsRetriableCode(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED ||
         code == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

class GrpcDestination final : public runner::Destination {
 public:
  explicit GrpcDestination(GrpcDestinationConfig config) : config_(std::move(config)) {}

  absl::Status Init() {
    DS_ASSIGN_OR_RETURN(encoder_, codec::MakeEncoder(opts().format));
    std::shared_ptr<grpc::ChannelCredentials> creds;
    if (opts().tls) {
      grpc::SslCredentialsOptions ssl;
      if (!opts().ca_file.empty()) {
        std::ifstream in(opts().ca_file);
        if (!in) {
          return absl::InvalidArgumentError(
              absl::StrCat(Prefix(), "cannot read ca_file ", opts().ca_file));
        }
        std::stringstream pem;
        pem << in.rdbuf();
        ssl.pem_root_certs = pem.str();
      }
      creds = grpc::SslCredentials(ssl);
    } else {
      creds = grpc::InsecureChannelCredentials();
    }
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(-1);
    // Reconnect quickly once the receiver is back: the default backoff grows to two minutes.
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
                static_cast<int>(absl::ToInt64Milliseconds(opts().retry.backoff_max)));
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                static_cast<int>(absl::ToInt64Milliseconds(opts().retry.backoff_base)));
    channel_ = grpc::CreateCustomChannel(opts().target, creds, args);
    stub_ = v1::IngestService::NewStub(channel_);
    return absl::OkStatus();
  }

  const std::string& name() const override { return config_.name; }

  absl::Status Write(const cdc::ChangeBatch& batch) override {
    for (const cdc::RelationChanges& changes : batch.relations) {
      if (changes.num_rows() == 0) continue;
      v1::IngestBatchRequest req;
      DS_RETURN_IF_ERROR(BuildRequest(changes, req));
      if (req.changes_case() == v1::IngestBatchRequest::CHANGES_NOT_SET) continue;
      DS_RETURN_IF_ERROR(Send(req));
    }
    return absl::OkStatus();
  }

 private:
  const GrpcOptions& opts() const { return config_.options; }
  std::string Prefix() const { return absl::StrCat("grpc destination ", config_.name, ": "); }

  absl::Status BuildRequest(const cdc::RelationChanges& changes, v1::IngestBatchRequest& req) {
    const std::string qualified = changes.QualifiedName();
    std::string encoded;
    DS_RETURN_IF_ERROR_CTX(encoder_->Encode(changes, &encoded),
                           absl::StrCat(Prefix(), "encoding ", qualified));
    if (encoded.empty()) return absl::OkStatus();  // nothing to say
    if (opts().format == codec::WireFormat::kProto) {
      if (!req.mutable_batch()->ParseFromString(encoded)) {
        return absl::InternalError(absl::StrCat(Prefix(), "encoding ", qualified,
                                                ": the proto codec's output is not a "
                                                "ductstream.v1.Batch"));
      }
    } else {
      req.set_payload(std::move(encoded));
    }
    const int64_t last = changes.num_rows() - 1;
    const auto* commit = static_cast<const arrow::UInt64Array*>(
        changes.records->GetColumnByName(cdc::kCommitLsnColumn).get());
    const auto* seq = static_cast<const arrow::Int64Array*>(
        changes.records->GetColumnByName(cdc::kSeqColumn).get());
    req.set_destination(config_.name);
    req.set_flow_id(config_.flow_id);
    req.set_schema(changes.schema);
    req.set_table(changes.table);
    req.set_wire_format(ProtoWireFormat(opts().format));
    req.set_content_type(std::string(codec::ContentType(opts().format)));
    req.set_rows(changes.num_rows());
    req.set_first_commit_lsn(Lsn(commit->Value(0)).ToString());
    req.set_first_seq(seq->Value(0));
    req.set_last_commit_lsn(Lsn(commit->Value(last)).ToString());
    req.set_last_seq(seq->Value(last));
    req.set_idempotency_key(absl::StrCat(req.first_commit_lsn(), ":", req.first_seq(), "..",
                                         req.last_commit_lsn(), ":", req.last_seq()));
    return absl::OkStatus();
  }

  absl::Status Send(const v1::IngestBatchRequest& req) {
    const std::string what = absl::StrCat(req.schema(), ".", req.table(), " (", req.rows(),
                                          " changes ", req.idempotency_key(), ")");
    const int attempts = opts().retry.max_retries + 1;
    for (int attempt = 1;; ++attempt) {
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + opts().timeout));
      if (!opts().token.empty()) ctx.AddMetadata("authorization", "Bearer " + opts().token);
      ctx.AddMetadata("idempotency-key", req.idempotency_key());
      v1::IngestBatchResponse resp;
      const grpc::Status s = stub_->IngestBatch(&ctx, req, &resp);
      if (s.ok()) return absl::OkStatus();
      const std::string reason =
          absl::StrCat("IngestBatch answered ", s.error_code(), " (", s.error_message(), ")");
      if (!IsRetriableCode(s.error_code())) {
        return absl::FailedPreconditionError(absl::StrCat(Prefix(), opts().target, " rejected ",
                                                          what, ": ", reason,
                                                          ". Nothing was acknowledged."));
      }
      if (attempt >= attempts) {
        return absl::UnavailableError(absl::StrCat(Prefix(), opts().target, ": ", what,
                                                   " failed after ", attempt, " attempts: ", reason,
                                                   ". Nothing was acknowledged."));
      }
      const absl::Duration wait =
          PushBackoffWithJitter(opts().retry, attempt, absl::Uniform(rng_, 0.0, 1.0));
      Log().warn("{}{} for {}; sending again in {} (attempt {} of {})", Prefix(), reason, what,
                 absl::FormatDuration(wait), attempt + 1, attempts);
      absl::SleepFor(wait);
    }
  }

  GrpcDestinationConfig config_;
  std::unique_ptr<codec::Encoder> encoder_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::IngestService::Stub> stub_;
  absl::BitGen rng_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<runner::Destination>> MakeGrpcDestination(
    GrpcDestinationConfig config) {
  auto dest = std::make_unique<GrpcDestination>(std::move(config));
  DS_RETURN_IF_ERROR(dest->Init());
  return dest;
}

}  // namespace ductstream::destination
