#pragma once

// The API's messages (proto/ductstream/v1) ↔ the flow model and control records, and absl::Status
// → grpc::Status. Everything the API returns goes through here, so secrets are redacted in one
// place.

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ductstream/control/control_store.h"
#include "ductstream/flow/flow_config.h"
#include "ductstream/v1/types.pb.h"

namespace ductstream::api {

/// A flow definition from the API's Flow message. Endpoint types and wire formats map one to one
/// (ENDPOINT_TYPE_KAFKA ↔ "kafka"); UNSPECIFIED types are InvalidArgument naming the field
/// (`flow.source.type: required`). Nothing else is checked here: flow::ValidateFlow does that.
absl::StatusOr<flow::FlowDefinition> FlowFromProto(const ductstream::v1::Flow& in);

/// The API's view of a stored flow: DSN passwords and secret-looking options redacted.
void FlowToProto(const control::FlowRecord& record, ductstream::v1::Flow* out);

ductstream::v1::FlowState StateToProto(control::FlowState state);

/// Same code, same message (gRPC and absl share the canonical codes).
grpc::Status ToGrpc(const absl::Status& status);

}  // namespace ductstream::api
