#include "ductstream/api/convert.h"

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "ductstream/base/status.h"

namespace ductstream::api {
namespace {

namespace v1 = ::ductstream::v1;

absl::StatusOr<flow::Endpoint> EndpointFromProto(const v1::Endpoint& in, const std::string& path) {
  if (in.type() == v1::ENDPOINT_TYPE_UNSPECIFIED) {
    return absl::InvalidArgumentError(absl::StrCat(
        path,
        ".type: required (ENDPOINT_TYPE_POSTGRES for a source, e.g. ENDPOINT_TYPE_KAFKA "
        "or ENDPOINT_TYPE_FILE for a destination)"));
  }
  auto type = flow::ParseConnectorType(absl::StrCat(static_cast<int>(in.type())));
  if (!type.ok()) return base::Annotate(type.status(), absl::StrCat(path, ".type"));
  flow::Endpoint out;
  out.name = in.name();
  out.type = *type;
  for (const auto& [k, v] : in.options()) out.options[k] = v;
  return out;
}

v1::EndpointType EndpointTypeToProto(const std::string& type) {
  const auto known = flow::KnownConnectorTypes();
  for (size_t i = 0; i < known.size(); ++i) {
    if (known[i] == type) return static_cast<v1::EndpointType>(i + 1);
  }
  return v1::ENDPOINT_TYPE_UNSPECIFIED;
}

void EndpointToProto(const flow::Endpoint& in, v1::Endpoint* out) {
  out->set_name(in.name);
  out->set_type(EndpointTypeToProto(in.type));
  for (const auto& [k, v] : in.options) (*out->mutable_options())[k] = v;
}

v1::WireFormat WireFormatToProto(const std::optional<codec::WireFormat>& format) {
  if (!format.has_value()) return v1::WIRE_FORMAT_UNSPECIFIED;
  switch (*format) {
    case codec::WireFormat::kArrow:
      return v1::WIRE_FORMAT_ARROW;
    case codec::WireFormat::kParquet:
      return v1::WIRE_FORMAT_PARQUET;
    case codec::WireFormat::kProto:
      return v1::WIRE_FORMAT_PROTO;
    case codec::WireFormat::kAvro:
      return v1::WIRE_FORMAT_AVRO;
    case codec::WireFormat::kJson:
      return v1::WIRE_FORMAT_JSON;
  }
  return v1::WIRE_FORMAT_UNSPECIFIED;
}

}  // namespace

absl::StatusOr<flow::FlowDefinition> FlowFromProto(const v1::Flow& in) {
  flow::FlowDefinition out;
  out.id = in.id();
  out.name = in.name();
  out.parallelism = in.parallelism() <= 0 ? 1 : in.parallelism();
  auto format = flow::ParseFlowWireFormat(absl::StrCat(static_cast<int>(in.wire_format())));
  if (!format.ok()) return base::Annotate(format.status(), "flow.wire_format");
  out.wire_format = *format;
  if (!in.has_source()) {
    return absl::InvalidArgumentError(
        "flow.source: required (a postgres endpoint: {\"name\", \"type\": "
        "\"ENDPOINT_TYPE_POSTGRES\", \"options\": {\"dsn\", \"slot\", \"publication\"}})");
  }
  DS_ASSIGN_OR_RETURN(out.source, EndpointFromProto(in.source(), "flow.source"));
  for (int i = 0; i < in.destinations_size(); ++i) {
    DS_ASSIGN_OR_RETURN(
        flow::Endpoint d,
        EndpointFromProto(in.destinations(i), absl::StrCat("flow.destinations[", i, "]")));
    out.destinations.push_back(std::move(d));
  }
  return out;
}

v1::FlowState StateToProto(control::FlowState state) {
  switch (state) {
    case control::FlowState::kCreated:
      return v1::FLOW_STATE_CREATED;
    case control::FlowState::kRunning:
      return v1::FLOW_STATE_RUNNING;
    case control::FlowState::kPaused:
      return v1::FLOW_STATE_PAUSED;
    case control::FlowState::kStopping:
      return v1::FLOW_STATE_STOPPING;
    case control::FlowState::kStopped:
      return v1::FLOW_STATE_STOPPED;
    case control::FlowState::kFailed:
      return v1::FLOW_STATE_FAILED;
  }
  return v1::FLOW_STATE_UNSPECIFIED;
}

void FlowToProto(const control::FlowRecord& record, v1::Flow* out) {
  out->Clear();
  // FlowToJson owns the redaction rules (DSN passwords, secret-looking keys): reuse them.
  auto redacted = flow::ParseFlowJson(flow::FlowToJson(record.definition, true));
  const flow::FlowDefinition& d = redacted.ok() ? *redacted : record.definition;
  out->set_id(record.definition.id);
  out->set_name(d.name);
  if (redacted.ok()) {
    EndpointToProto(d.source, out->mutable_source());
    for (const flow::Endpoint& e : d.destinations) EndpointToProto(e, out->add_destinations());
  }
  out->set_state(StateToProto(record.state));
  out->set_wire_format(WireFormatToProto(d.wire_format));
  out->set_parallelism(d.parallelism);
  out->set_generation(record.generation);
  out->set_failure_reason(record.failure_reason);
  *out->mutable_created_at() =
      google::protobuf::util::TimeUtil::MillisecondsToTimestamp(record.created_at_unix_millis);
  *out->mutable_updated_at() =
      google::protobuf::util::TimeUtil::MillisecondsToTimestamp(record.updated_at_unix_millis);
}

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace ductstream::api
