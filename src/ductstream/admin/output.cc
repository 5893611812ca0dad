#include "ductstream/admin/output.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"

namespace ductstream::admin {
namespace {

// An enum value's name without `prefix`, lower case; the number when the name is unknown.
std::string EnumText(const std::string& name, int value, absl::string_view prefix) {
  if (name.empty()) return absl::StrCat(value);
  absl::string_view view = name;
  absl::ConsumePrefix(&view, prefix);
  return absl::AsciiStrToLower(view);
}

bool IsSet(const google::protobuf::Timestamp& ts) { return ts.seconds() != 0 || ts.nanos() != 0; }

absl::Time ToTime(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

// Text output: whole seconds, UTC.
std::string TimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%SZ", t, absl::UTCTimeZone());
}
std::string TimeText(const google::protobuf::Timestamp& ts) {
  return IsSet(ts) ? TimeText(ToTime(ts)) : "-";
}
std::string MillisText(int64_t millis) {
  return millis > 0 ? TimeText(absl::FromUnixMillis(millis)) : "-";
}

// Go's time.RFC3339Nano in UTC: fractional seconds without trailing zeros, "Z".
std::string Rfc3339Nano(const google::protobuf::Timestamp& ts) {
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E*SZ", ToTime(ts), absl::UTCTimeZone());
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

void AppendEndpoint(std::string* out, const v1::Endpoint& ep, absl::string_view indent) {
  absl::StrAppend(out, OrDash(ep.name()), " (", EndpointTypeText(ep.type()), ")\n");
  const std::map<std::string, std::string> sorted(ep.options().begin(), ep.options().end());
  for (const auto& [key, value] : sorted) absl::StrAppend(out, indent, key, "=", value, "\n");
}

std::string Dump(const nlohmann::json& j, bool pretty) {
  return j.dump(pretty ? 2 : -1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string FlowStateText(int state) {
  return EnumText(v1::FlowState_IsValid(state)
                      ? v1::FlowState_Name(static_cast<v1::FlowState>(state))
                      : std::string(),
                  state, "FLOW_STATE_");
}

std::string WireFormatText(int format) {
  if (format == v1::WIRE_FORMAT_UNSPECIFIED) return "-";
  return EnumText(v1::WireFormat_IsValid(format)
                      ? v1::WireFormat_Name(static_cast<v1::WireFormat>(format))
                      : std::string(),
                  format, "WIRE_FORMAT_");
}

std::string EndpointTypeText(int type) {
  return EnumText(v1::EndpointType_IsValid(type)
                      ? v1::EndpointType_Name(static_cast<v1::EndpointType>(type))
                      : std::string(),
                  type, "ENDPOINT_TYPE_");
}

absl::StatusOr<std::string> ProtoToJson(const google::protobuf::Message& message, bool pretty) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  const auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("printing ", message.GetTypeName(), " as JSON: ", status.ToString()));
  }
  if (!pretty) return out;
  // protobuf's add_whitespace indents by one space; re-indent by two, keeping the field order.
  return nlohmann::ordered_json::parse(out).dump(2, ' ', false,
                                                 nlohmann::json::error_handler_t::replace);
}

std::string FormatTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    absl::StrAppend(&out, absl::StripTrailingAsciiWhitespace(line), "\n");
  }
  return out;
}

std::string FlowDetails(const v1::Flow& flow) {
  std::string out;
  absl::StrAppend(&out, "ID:           ", flow.id(), "\n");
  absl::StrAppend(&out, "Name:         ", OrDash(flow.name()), "\n");
  absl::StrAppend(&out, "State:        ", FlowStateText(flow.state()), "\n");
  if (!flow.failure_reason().empty()) {
    absl::StrAppend(&out, "Failure:      ", flow.failure_reason(), "\n");
  }
  absl::StrAppend(&out, "Generation:   ", flow.generation(), "\n");
  absl::StrAppend(&out, "Wire format:  ", WireFormatText(flow.wire_format()), "\n");
  absl::StrAppend(&out, "Parallelism:  ", flow.parallelism(), "\n");
  absl::StrAppend(&out, "Created:      ", TimeText(flow.created_at()), "\n");
  absl::StrAppend(&out, "Updated:      ", TimeText(flow.updated_at()), "\n");
  absl::StrAppend(&out, "Source:       ");
  AppendEndpoint(&out, flow.source(), "  ");
  absl::StrAppend(&out, "Destinations: ", flow.destinations_size(), "\n");
  for (const v1::Endpoint& dest : flow.destinations()) {
    absl::StrAppend(&out, "- ");
    AppendEndpoint(&out, dest, "  ");
  }
  return out;
}

std::string FlowTable(const Repeated<v1::Flow>& flows) {
  if (flows.empty()) return "No flows found.\n";
  std::vector<std::vector<std::string>> rows = {
      {"ID", "NAME", "STATE", "GENERATION", "WIRE_FORMAT"}};
  for (const v1::Flow& f : flows) {
    rows.push_back({f.id(), OrDash(f.name()), FlowStateText(f.state()),
                    absl::StrCat(f.generation()), WireFormatText(f.wire_format())});
  }
  return FormatTable(rows);
}

std::string CreatedLine(const v1::Flow& flow) {
  return absl::StrCat("Created flow ", flow.id(), " (", OrDash(flow.name()), ") in state ",
                      FlowStateText(flow.state()), "\n");
}

std::string TransitionLine(const v1::Flow& flow) {
  return absl::StrCat("Flow ", flow.id(), " is now ", FlowStateText(flow.state()), "\n");
}

std::string CheckpointDetails(const v1::FlowCheckpoint& checkpoint) {
  std::string out;
  absl::StrAppend(&out, "Flow:     ", checkpoint.flow_id(), "\n");
  absl::StrAppend(&out, "LSN:      ", OrDash(checkpoint.checkpoint().lsn()), "\n");
  absl::StrAppend(&out, "Updated:  ", MillisText(checkpoint.checkpoint().timestamp_unix_millis()),
                  "\n");
  const auto& metadata = checkpoint.checkpoint().metadata();
  const std::map<std::string, std::string> sorted(metadata.begin(), metadata.end());
  for (const auto& [key, value] : sorted) absl::StrAppend(&out, "  ", key, "=", value, "\n");
  return out;
}

std::string CheckpointTable(const Repeated<v1::FlowCheckpoint>& checkpoints) {
  if (checkpoints.empty()) return "No checkpoints found.\n";
  std::vector<std::vector<std::string>> rows = {{"FLOW_ID", "LSN", "UPDATED"}};
  for (const v1::FlowCheckpoint& c : checkpoints) {
    rows.push_back({c.flow_id(), OrDash(c.checkpoint().lsn()),
                    MillisText(c.checkpoint().timestamp_unix_millis())});
  }
  return FormatTable(rows);
}

std::string DdlTable(const Repeated<v1::DDLEvent>& events) {
  if (events.empty()) return "No DDL events found.\n";
  constexpr size_t kPlanWidth = 120;
  std::vector<std::vector<std::string>> rows = {{"ID", "STATUS", "LSN", "DDL/PLAN"}};
  for (const v1::DDLEvent& e : events) {
    std::string text;
    if (!e.ddl().empty()) {
      text = absl::StrReplaceAll(e.ddl(), {{"\n", " "}});
    } else if (!e.plan_json().empty()) {
      text = e.plan_json().size() > kPlanWidth
                 ? absl::StrCat("plan:", e.plan_json().substr(0, kPlanWidth), "...")
                 : absl::StrCat("plan:", e.plan_json());
    } else {
      text = "(no ddl)";
    }
    if (e.status() == "rejected" || e.status() == "failed") absl::StrAppend(&text, " [FAILED]");
    rows.push_back({absl::StrCat(e.id()), e.status(), OrDash(e.lsn()), text});
  }
  return FormatTable(rows);
}

std::string DdlJson(absl::string_view status, const Repeated<v1::DDLEvent>& events, bool pretty) {
  nlohmann::json list = nlohmann::json::array();
  for (const v1::DDLEvent& e : events) {
    nlohmann::json j = {{"id", e.id()}, {"status", e.status()}, {"lsn", e.lsn()}};
    if (!e.ddl().empty()) j["ddl"] = e.ddl();
    if (!e.plan_json().empty()) j["plan_json"] = e.plan_json();
    if (e.has_created_at() && IsSet(e.created_at())) j["created_at"] = Rfc3339Nano(e.created_at());
    list.push_back(std::move(j));
  }
  return Dump({{"status", std::string(status)}, {"count", events.size()}, {"events", list}},
              pretty);
}

std::string PullText(const Repeated<v1::StreamMessage>& messages) {
  if (messages.empty()) return "No messages available.\n";
  std::string out = absl::StrCat("Pulled ", messages.size(), " messages:\n");
  for (const v1::StreamMessage& m : messages) {
    absl::StrAppend(&out, "- id=", m.id(), " table=", m.table(), " lsn=", m.lsn(),
                    " bytes=", m.payload().size(), "\n");
  }
  return out;
}

std::string PullJson(absl::string_view stream, absl::string_view group,
                     const Repeated<v1::StreamMessage>& messages, bool pretty) {
  nlohmann::json list = nlohmann::json::array();
  for (const v1::StreamMessage& m : messages) {
    list.push_back({{"id", m.id()},
                    {"namespace", m.namespace_()},
                    {"table", m.table()},
                    {"lsn", m.lsn()},
                    {"wire_format", m.wire_format()},
                    {"payload_base64", absl::Base64Escape(m.payload())}});
  }
  return Dump({{"stream", std::string(stream)},
               {"consumer_group", std::string(group)},
               {"count", messages.size()},
               {"messages", list}},
              pretty);
}

std::string ErrorLine(const absl::Status& status) {
  std::string message(absl::StripAsciiWhitespace(status.message()));
  // libpq continues its messages on tab-indented lines.
  absl::StrReplaceAll({{"\r\n", "\n"}, {"\n\t", "\n"}}, &message);
  absl::StrReplaceAll({{"\n", "; "}}, &message);
  return absl::StrCat("error: ", absl::StatusCodeToString(status.code()), ": ", message, "\n");
}

}  // namespace ductstream::admin
