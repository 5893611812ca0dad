#pragma once

// What ductstream-admin prints. Text output follows SPEC §2.3 (tables with an upper-case header,
// "No … found." for empty results, one line per state change); -json prints the proto JSON
// mapping with the .proto field names, except where SPEC §2.3 fixes another shape (ddl list,
// stream pull). Pure functions of the messages, so they are unit-tested without a server.

#include <string>
#include <vector>

#include <google/protobuf/message.h>
#include <google/protobuf/repeated_ptr_field.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ductstream/v1/checkpoint.pb.h"
#include "ductstream/v1/ddl.pb.h"
#include "ductstream/v1/flow.pb.h"
#include "ductstream/v1/stream.pb.h"
#include "ductstream/v1/types.pb.h"

namespace ductstream::admin {

template <typename T>
using Repeated = google::protobuf::RepeatedPtrField<T>;

/// "running" for FLOW_STATE_RUNNING (the enum name without its prefix, lower case);
/// "unspecified" for 0 and the number for a value this build does not know.
std::string FlowStateText(int state);
/// "parquet"; "-" when unspecified.
std::string WireFormatText(int format);
/// "postgres".
std::string EndpointTypeText(int type);

/// Proto JSON mapping: .proto field names, enum names, fields with default values included (so
/// scripts can rely on every key). `pretty` indents. No trailing newline.
absl::StatusOr<std::string> ProtoToJson(const google::protobuf::Message& message, bool pretty);

/// Rows with their columns left-aligned two spaces apart; the first row is the header. Every
/// line ends with '\n' and has no trailing spaces.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);

/// Multi-line description of one flow: identity, state, format, endpoints with sorted options.
std::string FlowDetails(const v1::Flow& flow);
/// `ID NAME STATE GENERATION WIRE_FORMAT` table, or "No flows found.".
std::string FlowTable(const Repeated<v1::Flow>& flows);
/// "Created flow <id> (<name>) in state <state>".
std::string CreatedLine(const v1::Flow& flow);
/// "Flow <id> is now <state>".
std::string TransitionLine(const v1::Flow& flow);

std::string CheckpointDetails(const v1::FlowCheckpoint& checkpoint);
/// `FLOW_ID LSN UPDATED` table, or "No checkpoints found.".
std::string CheckpointTable(const Repeated<v1::FlowCheckpoint>& checkpoints);

/// SPEC §2.3 `ddl list` text: `ID STATUS LSN DDL/PLAN`, "plan:" + plan JSON cut to 120 characters,
/// "(no ddl)", a " [FAILED]" suffix for rejected or failed events; "No DDL events found.".
std::string DdlTable(const Repeated<v1::DDLEvent>& events);
/// SPEC §2.3 `ddl list` JSON: {"status","count","events":[{"id","status","lsn","ddl"?,
/// "plan_json"?,"created_at"?}]}.
std::string DdlJson(absl::string_view status, const Repeated<v1::DDLEvent>& events, bool pretty);

/// SPEC §2.3 `stream pull` text: "Pulled N messages:" and "- id=… table=… lsn=… bytes=…" lines,
/// or "No messages available.".
std::string PullText(const Repeated<v1::StreamMessage>& messages);
/// SPEC §2.3 `stream pull` JSON: {"stream","consumer_group","count","messages":[{"id",
/// "namespace","table","lsn","wire_format","payload_base64"}]}.
std::string PullJson(absl::string_view stream, absl::string_view group,
                     const Repeated<v1::StreamMessage>& messages, bool pretty);

/// The one stderr line of a failed command: "error: FAILED_PRECONDITION: <message>" (line breaks
/// in the message become "; "). Ends with '\n'.
std::string ErrorLine(const absl::Status& status);

}  // namespace ductstream::admin
