#include "ductstream/api/services.h"

#include <google/protobuf/util/time_util.h>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "ductstream/api/convert.h"
#include "ductstream/base/logging.h"
#include "ductstream/base/lsn.h"
#include "ductstream/worker/worker.h"

namespace ductstream::api {
namespace {

namespace v1 = ::ductstream::v1;

#define DS_AUTHORIZE(context)                                                 \
  do {                                                                        \
    if (grpc::Status _ds_auth = Authorize(context, token_); !_ds_auth.ok()) { \
      return _ds_auth;                                                        \
    }                                                                         \
  } while (false)

// RFC 4122 version 4, as the original server generated for flows created without an id.
std::string NewFlowId() {
  static absl::Mutex mu(absl::kConstInit);
  static absl::BitGen* gen = new absl::BitGen();
  absl::MutexLock lock(&mu);
  const uint64_t hi = absl::Uniform<uint64_t>(*gen);
  const uint64_t lo = absl::Uniform<uint64_t>(*gen);
  return absl::StrFormat("%08x-%04x-4%03x-%04x-%012x", hi >> 32, (hi >> 16) & 0xffff, hi & 0x0fff,
                         0x8000 | ((lo >> 48) & 0x3fff), lo & 0xffffffffffffULL);
}

grpc::Status Required(absl::string_view field) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, absl::StrCat(field, ": required"));
}

// ListFlows page tokens: "<created_at ms>:<id>" of the last flow returned.
std::string PageToken(const control::FlowRecord& last) {
  return absl::StrCat(last.created_at_unix_millis, ":", last.definition.id);
}

std::optional<control::FlowCursor> ParsePageToken(const std::string& token) {
  std::pair<std::string, std::string> parts = absl::StrSplit(token, absl::MaxSplits(':', 1));
  control::FlowCursor cursor;
  if (!absl::SimpleAtoi(parts.first, &cursor.created_at_unix_millis)) return std::nullopt;
  cursor.id = parts.second;
  return cursor;
}

void CheckpointToProto(const std::string& flow_id, const store::Checkpoint& cp,
                       v1::FlowCheckpoint* out) {
  out->set_flow_id(flow_id);
  v1::Checkpoint* c = out->mutable_checkpoint();
  c->set_lsn(cp.lsn.ToString());
  c->set_timestamp_unix_millis(cp.updated_at_unix_millis);
  for (const auto& [k, v] : cp.metadata) (*c->mutable_metadata())[k] = v;
}

}  // namespace

grpc::Status Authorize(const grpc::ServerContext* context, const std::string& token) {
  if (token.empty()) return grpc::Status::OK;
  const auto& metadata = context->client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "missing bearer token: send metadata \"authorization: Bearer <token>\"");
  }
  const std::string value(it->second.data(), it->second.size());
  // Compare in constant time: the token is a shared secret.
  const std::string expected = absl::StrCat("Bearer ", token);
  unsigned char diff = value.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < value.size() && i < expected.size(); ++i) diff |= value[i] ^ expected[i];
  if (diff != 0) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "invalid bearer token");
  return grpc::Status::OK;
}

grpc::Status FlowServiceImpl::CreateFlow(grpc::ServerContext* context,
                                         const v1::CreateFlowRequest* request, v1::Flow* response) {
  DS_AUTHORIZE(context);
  if (!request->has_flow()) return Required("flow");
  auto definition = FlowFromProto(request->flow());
  if (!definition.ok()) return ToGrpc(definition.status());
  if (definition->id.empty()) definition->id = NewFlowId();
  if (absl::Status valid = flow::ValidateFlow(*definition, validation_); !valid.ok()) {
    return ToGrpc(valid);
  }
  if (absl::Status valid = worker::CheckDestinations(*definition); !valid.ok()) {
    return ToGrpc(valid);
  }
  auto created = store_->CreateFlow(*definition);
  if (!created.ok()) return ToGrpc(created.status());
  base::GetLogger("api")->info("flow {} created: {}", created->definition.id,
                               flow::FlowToJson(created->definition, true));
  if (request->start_immediately()) {
    created = store_->Transition(created->definition.id, control::FlowOp::kStart);
    if (!created.ok()) return ToGrpc(created.status());
  }
  changed_();
  FlowToProto(*created, response);
  return grpc::Status::OK;
}

grpc::Status FlowServiceImpl::UpdateFlow(grpc::ServerContext* context,
                                         const v1::UpdateFlowRequest* request, v1::Flow* response) {
  DS_AUTHORIZE(context);
  if (!request->has_flow() || request->flow().id().empty()) return Required("flow.id");
  auto current = store_->GetFlow(request->flow().id());
  if (!current.ok()) return ToGrpc(current.status());
  // Unset fields keep the stored values (SPEC §3.2); source and destinations are replaced only
  // when given (they carry the DSN passwords the API never returns, so a client cannot echo them).
  const v1::Flow& merged = request->flow();
  flow::FlowDefinition next = current->definition;
  if (merged.has_source() || merged.destinations_size() > 0) {
    auto parsed = FlowFromProto(merged);
    if (!parsed.ok()) return ToGrpc(parsed.status());
    next.source = parsed->source;
    next.destinations = parsed->destinations;
  }
  if (!merged.name().empty()) next.name = merged.name();
  if (merged.wire_format() != v1::WIRE_FORMAT_UNSPECIFIED) {
    auto format = flow::ParseFlowWireFormat(absl::StrCat(static_cast<int>(merged.wire_format())));
    if (!format.ok()) return ToGrpc(format.status());
    next.wire_format = *format;
  }
  if (merged.parallelism() > 0) next.parallelism = merged.parallelism();
  if (absl::Status valid = flow::ValidateFlow(next, validation_); !valid.ok()) {
    return ToGrpc(valid);
  }
  if (absl::Status valid = worker::CheckDestinations(next); !valid.ok()) return ToGrpc(valid);
  auto updated = store_->UpdateFlow(next);
  if (!updated.ok()) return ToGrpc(updated.status());
  changed_();
  FlowToProto(*updated, response);
  return grpc::Status::OK;
}

grpc::Status FlowServiceImpl::Apply(grpc::ServerContext* context, const std::string& flow_id,
                                    control::FlowOp op, v1::Flow* response) {
  DS_AUTHORIZE(context);
  if (flow_id.empty()) return Required("flow_id");
  auto record = store_->Transition(flow_id, op);
  if (!record.ok()) return ToGrpc(record.status());
  base::GetLogger("api")->info(
      "flow {}: {} → {} (generation {})", flow_id, std::string(control::FlowOpName(op)),
      std::string(control::FlowStateName(record->state)), record->generation);
  changed_();
  FlowToProto(*record, response);
  return grpc::Status::OK;
}

grpc::Status FlowServiceImpl::StartFlow(grpc::ServerContext* context,
                                        const v1::StartFlowRequest* request, v1::Flow* response) {
  return Apply(context, request->flow_id(), control::FlowOp::kStart, response);
}

grpc::Status FlowServiceImpl::StopFlow(grpc::ServerContext* context,
                                       const v1::StopFlowRequest* request, v1::Flow* response) {
  return Apply(context, request->flow_id(), control::FlowOp::kStop, response);
}

grpc::Status FlowServiceImpl::PauseFlow(grpc::ServerContext* context,
                                        const v1::PauseFlowRequest* request, v1::Flow* response) {
  return Apply(context, request->flow_id(), control::FlowOp::kPause, response);
}

grpc::Status FlowServiceImpl::ResumeFlow(grpc::ServerContext* context,
                                         const v1::ResumeFlowRequest* request, v1::Flow* response) {
  return Apply(context, request->flow_id(), control::FlowOp::kResume, response);
}

grpc::Status FlowServiceImpl::RunFlowOnce(grpc::ServerContext* context,
                                          const v1::RunFlowOnceRequest* request,
                                          v1::RunFlowOnceResponse* /*response*/) {
  DS_AUTHORIZE(context);
  if (request->flow_id().empty()) return Required("flow_id");
  auto record = store_->GetFlow(request->flow_id());
  if (!record.ok()) return ToGrpc(record.status());
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                      "dispatcher not configured: one-off runs come with the durable scheduler; "
                      "run `ductstream-worker -flow-id ID -max-empty-reads 1` meanwhile");
}

grpc::Status FlowServiceImpl::GetFlow(grpc::ServerContext* context,
                                      const v1::GetFlowRequest* request, v1::Flow* response) {
  DS_AUTHORIZE(context);
  if (request->flow_id().empty()) return Required("flow_id");
  auto record = store_->GetFlow(request->flow_id());
  if (!record.ok()) return ToGrpc(record.status());
  FlowToProto(*record, response);
  return grpc::Status::OK;
}

grpc::Status FlowServiceImpl::GetSnapshotProgress(grpc::ServerContext* context,
                                                  const v1::GetSnapshotProgressRequest* request,
                                                  v1::SnapshotProgress* response) {
  DS_AUTHORIZE(context);
  if (request->flow_id().empty()) return Required("flow_id");
  auto record = store_->GetFlow(request->flow_id());
  if (!record.ok()) return ToGrpc(record.status());
  auto source = flow::ParsePostgresSourceOptions(record->definition.source);
  if (!source.ok()) return ToGrpc(source.status());
  auto state = worker::OpenSnapshotState(*source);
  if (!state.ok()) return ToGrpc(state.status());
  const auto kind =
      request->backfill() ? snapshot::SnapshotKind::kBackfill : snapshot::SnapshotKind::kInitial;
  auto run = (*state)->Load(snapshot::SnapshotStateKey(FlowId(request->flow_id()), kind));
  if (!run.ok()) return ToGrpc(run.status());
  if (!run->has_value()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("flow ", request->flow_id(), " has no ",
                                     request->backfill() ? "backfill" : "snapshot", " recorded in ",
                                     (*state)->description()));
  }
  const snapshot::SnapshotRun& r = **run;
  response->set_flow_id(request->flow_id());
  response->set_kind(r.kind);
  response->set_status(std::string(snapshot::RunStatusName(r.status)));
  if (r.lsn.valid()) response->set_lsn(r.lsn.ToString());
  *response->mutable_updated_at() =
      google::protobuf::util::TimeUtil::MillisecondsToTimestamp(r.updated_at_unix_millis);
  for (const snapshot::TableProgress& t : snapshot::SummarizeByTable(r)) {
    v1::TableSnapshotProgress* out = response->add_tables();
    out->set_table(t.table);
    out->set_rows_done(t.rows_done);
    out->set_rows_total(t.rows_total);
    out->set_bytes_done(t.bytes_done);
    out->set_bytes_total(t.bytes_total);
    out->set_chunks_done(t.chunks_done);
    out->set_chunks_total(t.chunks_total);
  }
  return grpc::Status::OK;
}

grpc::Status FlowServiceImpl::ListFlows(grpc::ServerContext* context,
                                        const v1::ListFlowsRequest* request,
                                        v1::ListFlowsResponse* response) {
  DS_AUTHORIZE(context);
  const int size = request->page_size() <= 0 ? 100 : std::min(request->page_size(), 1000);
  std::optional<control::FlowCursor> cursor;
  if (!request->page_token().empty()) {
    cursor = ParsePageToken(request->page_token());
    if (!cursor.has_value()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "page_token: not a token this server returned");
    }
  }
  // One extra row tells whether there is a next page.
  auto flows = store_->ListFlows(cursor, size + 1);
  if (!flows.ok()) return ToGrpc(flows.status());
  const bool more = static_cast<int>(flows->size()) > size;
  if (more) flows->pop_back();
  for (const control::FlowRecord& f : *flows) FlowToProto(f, response->add_flows());
  if (more) response->set_next_page_token(PageToken(flows->back()));
  return grpc::Status::OK;
}

grpc::Status FlowServiceImpl::DeleteFlow(grpc::ServerContext* context,
                                         const v1::DeleteFlowRequest* request,
                                         v1::DeleteFlowResponse* response) {
  DS_AUTHORIZE(context);
  if (request->flow_id().empty()) return Required("flow_id");
  auto deleted = store_->DeleteFlow(request->flow_id());
  if (!deleted.ok()) return ToGrpc(deleted.status());
  if (!*deleted) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("flow \"", request->flow_id(), "\" not found"));
  }
  base::GetLogger("api")->info("flow {} deleted", request->flow_id());
  changed_();
  response->set_deleted(true);
  return grpc::Status::OK;
}

grpc::Status CheckpointServiceImpl::GetCheckpoint(grpc::ServerContext* context,
                                                  const v1::GetCheckpointRequest* request,
                                                  v1::FlowCheckpoint* response) {
  DS_AUTHORIZE(context);
  if (request->flow_id().empty()) return Required("flow_id");
  auto cp = store_->Get(FlowId(request->flow_id()));
  if (!cp.ok()) return ToGrpc(cp.status());
  CheckpointToProto(request->flow_id(), *cp, response);
  return grpc::Status::OK;
}

grpc::Status CheckpointServiceImpl::PutCheckpoint(grpc::ServerContext* context,
                                                  const v1::PutCheckpointRequest* request,
                                                  v1::FlowCheckpoint* response) {
  DS_AUTHORIZE(context);
  if (request->flow_id().empty()) return Required("flow_id");
  if (!request->has_checkpoint() || request->checkpoint().lsn().empty()) {
    return Required("checkpoint.lsn");
  }
  auto lsn = Lsn::Parse(request->checkpoint().lsn());
  if (!lsn.ok()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("checkpoint.lsn: \"", request->checkpoint().lsn(),
                                     "\" is not an LSN (expected X/Y, e.g. 0/16B3748)"));
  }
  const FlowId flow(request->flow_id());
  store::Checkpoint cp;
  cp.lsn = *lsn;
  // The operator's override moves the position (either way) but keeps the fencing generation, so
  // it neither fences the running worker nor lets a stale one back in.
  auto stored = store_->Get(flow);
  if (stored.ok()) cp.generation = stored->generation;
  for (const auto& [k, v] : request->checkpoint().metadata()) cp.metadata[k] = v;
  if (absl::Status s = store_->Put(flow, cp, /*force=*/true); !s.ok()) return ToGrpc(s);
  base::GetLogger("api")->warn("checkpoint of flow {} set to {} by an operator", flow.value(),
                               cp.lsn.ToString());
  auto written = store_->Get(flow);
  if (!written.ok()) return ToGrpc(written.status());
  CheckpointToProto(request->flow_id(), *written, response);
  return grpc::Status::OK;
}

grpc::Status CheckpointServiceImpl::ListCheckpoints(grpc::ServerContext* context,
                                                    const v1::ListCheckpointsRequest* /*request*/,
                                                    v1::ListCheckpointsResponse* response) {
  DS_AUTHORIZE(context);
  auto all = store_->List();
  if (!all.ok()) return ToGrpc(all.status());
  for (const auto& [flow, cp] : *all) {
    CheckpointToProto(flow.value(), cp, response->add_checkpoints());
  }
  return grpc::Status::OK;
}

}  // namespace ductstream::api
