#pragma once

// Flow definitions (SPEC §4) as API messages: the example files' lowercase JSON and the proto JSON
// mapping both become one ductstream.v1.Flow for CreateFlow, so `ductstream-admin flow create
// -file examples/flows/postgres_to_file.json` works on the files as shipped.

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ductstream/codec/codec.h"
#include "ductstream/flow/flow_config.h"
#include "ductstream/v1/flow.pb.h"
#include "ductstream/v1/types.pb.h"

namespace ductstream::admin {

/// "postgres" → ENDPOINT_TYPE_POSTGRES (a canonical name from flow::ParseConnectorType).
/// InvalidArgument for a type the API has no enum value for.
absl::StatusOr<v1::EndpointType> EndpointTypeToProto(absl::string_view connector_type);
/// No format → WIRE_FORMAT_UNSPECIFIED.
v1::WireFormat WireFormatToProto(std::optional<codec::WireFormat> format);

/// The API message for a parsed flow definition. Output-only fields (state, generation, times)
/// stay unset; the server decides them.
absl::StatusOr<v1::Flow> FlowToProto(const flow::FlowDefinition& flow);

/// A CreateFlowRequest from flow JSON in either spelling (flow::ParseFlowJson). A
/// {"flow": {...}, "start_immediately": true} wrapper's start_immediately is honoured;
/// `start` (the -start flag) forces it on.
absl::StatusOr<v1::CreateFlowRequest> CreateRequestFromJson(absl::string_view json, bool start);

}  // namespace ductstream::admin
