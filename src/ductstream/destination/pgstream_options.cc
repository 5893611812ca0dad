#include "ductstream/destination/pgstream_options.h"

#include <functional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

#include "ductstream/base/status.h"
#include "ductstream/destination/option_table.h"

namespace ductstream::destination {
namespace {

using PgstreamOption = ConnectorOption<PgstreamOptions>;

const std::vector<PgstreamOption>& OptionTable() {
  static const auto* table = new std::vector<PgstreamOption>{
      {{"dsn", "(required)",
        "PostgreSQL conninfo or URI of the stream database; use the control database "
        "(DUCTSTREAM_POSTGRES_DSN) so that the API server's StreamService serves the events"},
       [](absl::string_view v, PgstreamOptions& o) -> std::string {
         o.dsn = std::string(absl::StripAsciiWhitespace(v));
         if (o.dsn.empty()) return "required";
         return "";
       }},
      {{"stream", "(the destination name)", "name of the stream the events are appended to"},
       [](absl::string_view v, PgstreamOptions& o) -> std::string {
         o.stream = std::string(absl::StripAsciiWhitespace(v));
         return "";
       }},
      {{"format", "json",
        "wire format of the event payloads: json (one JSON change per record event, JSON Lines "
        "per batch event), arrow, parquet, avro, proto (the flow's wire_format fills it)"},
       [](absl::string_view v, PgstreamOptions& o) -> std::string {
         auto f = flow::ParseFlowWireFormat(v);
         if (!f.ok()) return std::string(f.status().message());
         if (f->has_value()) o.format = **f;
         return "";
       }},
      {{"payload_mode", "record",
        "record: one event per change (identity: its commit LSN and sequence); batch: one event "
        "per table per batch (identity: its first change)"},
       [](absl::string_view v, PgstreamOptions& o) -> std::string {
         const std::string m = absl::AsciiStrToLower(absl::StripAsciiWhitespace(v));
         if (m == "record") {
           o.payload_mode = PgstreamPayloadMode::kRecord;
         } else if (m == "batch") {
           o.payload_mode = PgstreamPayloadMode::kBatch;
         } else {
           return absl::StrCat("\"", v, "\" is not one of record, batch");
         }
         return "";
       }},
      {{"retention", "168h",
        "events acked by every consumer group of the stream are deleted once older than this "
        "(checked at most once a minute by the writer); 0 keeps every event"},
       [](absl::string_view v, PgstreamOptions& o) -> std::string {
         auto d = flow::ParseDurationOption(v);
         if (!d.has_value()) return absl::StrCat("\"", v, "\" is not a duration (e.g. 24h, 0)");
         o.retention = *d;
         return "";
       }},
  };
  return *table;
}

}  // namespace

std::span<const flow::OptionDoc> PgstreamOptionDocs() {
  static const auto* docs = new std::vector<flow::OptionDoc>(OptionDocsOf(OptionTable()));
  return *docs;
}

absl::StatusOr<PgstreamOptions> ParsePgstreamOptions(const flow::Endpoint& dest,
                                                     absl::string_view field) {
  PgstreamOptions out;
  OptionProblems problems(field);
  auto problem = [&](absl::string_view key, absl::string_view text) { problems.Add(key, text); };
  ApplyOptions(dest, OptionTable(), out, problems,
               [&](const std::string& key, const std::string& value) {
                 if (key != "flow_id") return false;  // the control plane injects it
                 out.flow_id = value;
                 return true;
               });
  if (dest.options.find("dsn") == dest.options.end()) problem("dsn", "required");
  if (out.stream.empty()) out.stream = dest.name;
  if (out.stream.empty()) problem("stream", "required when the destination has no name");
  DS_RETURN_IF_ERROR(problems.ToStatus());
  return out;
}

}  // namespace ductstream::destination
