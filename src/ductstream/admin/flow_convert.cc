#include "ductstream/admin/flow_convert.h"

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "ductstream/base/status.h"

namespace ductstream::admin {

absl::StatusOr<v1::EndpointType> EndpointTypeToProto(absl::string_view connector_type) {
  // The proto enum names are the canonical names upper-cased, so the generated parser is the
  // one table (a connector added to flow/ without an enum value is caught here).
  v1::EndpointType type = v1::ENDPOINT_TYPE_UNSPECIFIED;
  const std::string name =
      absl::StrCat("ENDPOINT_TYPE_", absl::AsciiStrToUpper(std::string(connector_type)));
  if (connector_type.empty() || !v1::EndpointType_Parse(name, &type) ||
      type == v1::ENDPOINT_TYPE_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        absl::StrCat("connector type \"", std::string(connector_type), "\" has no API value"));
  }
  return type;
}

v1::WireFormat WireFormatToProto(std::optional<codec::WireFormat> format) {
  if (!format.has_value()) return v1::WIRE_FORMAT_UNSPECIFIED;
  switch (*format) {
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

namespace {

absl::Status EndpointToProto(const flow::Endpoint& in, absl::string_view field, v1::Endpoint* out) {
  auto type = EndpointTypeToProto(in.type);
  if (!type.ok()) return base::Annotate(type.status(), absl::StrCat(field, ".type"));
  out->set_name(in.name);
  out->set_type(*type);
  for (const auto& [key, value] : in.options) (*out->mutable_options())[key] = value;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::Flow> FlowToProto(const flow::FlowDefinition& flow) {
  v1::Flow out;
  out.set_id(flow.id);
  out.set_name(flow.name);
  out.set_wire_format(WireFormatToProto(flow.wire_format));
  out.set_parallelism(flow.parallelism);
  DS_RETURN_IF_ERROR(EndpointToProto(flow.source, "source", out.mutable_source()));
  for (size_t i = 0; i < flow.destinations.size(); ++i) {
    DS_RETURN_IF_ERROR(EndpointToProto(flow.destinations[i], absl::StrCat("destinations[", i, "]"),
                                       out.add_destinations()));
  }
  return out;
}

absl::StatusOr<v1::CreateFlowRequest> CreateRequestFromJson(absl::string_view json, bool start) {
  DS_ASSIGN_OR_RETURN(flow::FlowDefinition definition, flow::ParseFlowJson(json));
  v1::CreateFlowRequest request;
  DS_ASSIGN_OR_RETURN(*request.mutable_flow(), FlowToProto(definition));
  // ParseFlowJson accepted the text, so it is valid JSON; only the wrapper's flag is read here.
  const auto root = nlohmann::json::parse(json.begin(), json.end(), nullptr, false);
  bool start_immediately = start;
  if (root.is_object()) {
    for (const char* key : {"start_immediately", "startImmediately"}) {
      if (auto it = root.find(key); it != root.end() && it->is_boolean() && it->get<bool>()) {
        start_immediately = true;
      }
    }
  }
  request.set_start_immediately(start_immediately);
  return request;
}

}  // namespace ductstream::admin
