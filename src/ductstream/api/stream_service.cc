#include "ductstream/api/stream_service.h"

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "ductstream/api/convert.h"
#include "ductstream/api/services.h"
#include "ductstream/base/lsn.h"

namespace ductstream::api {
namespace {

// Connections kept for reuse; more may be open while calls overlap.
constexpr size_t kMaxIdle = 4;

}  // namespace

StreamServiceImpl::StreamServiceImpl(std::string dsn, std::string token)
    : dsn_(std::move(dsn)), token_(std::move(token)) {}

StreamServiceImpl::~StreamServiceImpl() = default;

absl::StatusOr<std::unique_ptr<streams::StreamStore>> StreamServiceImpl::Borrow() {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_.empty()) {
      auto store = std::move(idle_.back());
      idle_.pop_back();
      return store;
    }
  }
  return streams::StreamStore::Open(dsn_);
}

void StreamServiceImpl::Return(std::unique_ptr<streams::StreamStore> store) {
  absl::MutexLock lock(&mu_);
  if (idle_.size() < kMaxIdle) idle_.push_back(std::move(store));
}

template <typename Fn>
grpc::Status StreamServiceImpl::Run(grpc::ServerContext* context, const std::string& stream,
                                    const std::string& group, Fn&& body) {
  if (grpc::Status auth = Authorize(context, token_); !auth.ok()) return auth;
  if (dsn_.empty()) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                        "StreamService needs a PostgreSQL control database: set "
                        "DUCTSTREAM_POSTGRES_DSN (the database pgstream destinations write to)");
  }
  if (stream.empty()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "stream is required");
  if (group.empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "consumer_group is required");
  }
  absl::StatusOr<std::unique_ptr<streams::StreamStore>> store = Borrow();
  if (!store.ok()) return ToGrpc(store.status());
  absl::Status s = body(**store);
  // A store whose call failed may hold a broken connection or an open transaction: drop it.
  if (s.ok()) Return(std::move(*store));
  return ToGrpc(s);
}

grpc::Status StreamServiceImpl::Pull(grpc::ServerContext* context,
                                     const ductstream::v1::StreamPullRequest* request,
                                     ductstream::v1::StreamPullResponse* response) {
  return Run(context, request->stream(), request->consumer_group(),
             [&](streams::StreamStore& store) -> absl::Status {
               streams::PullRequest pull;
               pull.stream = request->stream();
               pull.group = request->consumer_group();
               pull.max_messages = request->max_messages() > 0 ? request->max_messages() : 100;
               pull.visibility = request->visibility_timeout_seconds() > 0
                                     ? absl::Seconds(request->visibility_timeout_seconds())
                                     : absl::Seconds(30);
               pull.consumer_id = request->consumer_id();
               absl::StatusOr<std::vector<streams::StreamMessage>> messages = store.Pull(pull);
               if (!messages.ok()) return messages.status();
               for (streams::StreamMessage& m : *messages) {
                 ductstream::v1::StreamMessage* out = response->add_messages();
                 out->set_id(m.id);
                 out->set_stream(m.stream);
                 out->set_namespace_(m.namespace_name);
                 out->set_table(m.table_name);
                 out->set_lsn(m.lsn);
                 out->set_wire_format(m.wire_format);
                 out->set_payload(std::move(m.payload));
                 *out->mutable_created_at() =
                     google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
                         absl::ToUnixMicros(m.created_at));
               }
               return absl::OkStatus();
             });
}

grpc::Status StreamServiceImpl::Ack(grpc::ServerContext* context,
                                    const ductstream::v1::StreamAckRequest* request,
                                    ductstream::v1::StreamAckResponse* response) {
  return Run(context, request->stream(), request->consumer_group(),
             [&](streams::StreamStore& store) -> absl::Status {
               const std::vector<int64_t> ids(request->ids().begin(), request->ids().end());
               absl::StatusOr<int64_t> acked =
                   store.Ack(request->stream(), request->consumer_group(), ids);
               if (!acked.ok()) return acked.status();
               response->set_acked(*acked);
               return absl::OkStatus();
             });
}

grpc::Status StreamServiceImpl::Replay(grpc::ServerContext* context,
                                       const ductstream::v1::StreamReplayRequest* request,
                                       ductstream::v1::StreamReplayResponse* response) {
  return Run(context, request->stream(), request->consumer_group(),
             [&](streams::StreamStore& store) -> absl::Status {
               std::optional<Lsn> from_lsn;
               if (!request->from_lsn().empty()) {
                 absl::StatusOr<Lsn> parsed = Lsn::Parse(request->from_lsn());
                 if (!parsed.ok()) {
                   return absl::InvalidArgumentError(
                       absl::StrCat("from_lsn: \"", request->from_lsn(),
                                    "\" is not an LSN (expected X/Y, e.g. 0/16B6C50)"));
                 }
                 from_lsn = *parsed;
               }
               std::optional<absl::Time> since;
               if (request->has_since()) {
                 since = absl::FromUnixMicros(
                     google::protobuf::util::TimeUtil::TimestampToMicroseconds(request->since()));
               }
               absl::StatusOr<int64_t> reset =
                   store.Replay(request->stream(), request->consumer_group(), from_lsn, since);
               if (!reset.ok()) return reset.status();
               response->set_reset(*reset);
               return absl::OkStatus();
             });
}

}  // namespace ductstream::api
