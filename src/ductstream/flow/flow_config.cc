#include "ductstream/flow/flow_config.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "ductstream/base/redact.h"
#include "ductstream/base/status.h"

namespace ductstream::flow {
namespace {

using codec::WireFormat;
using Json = nlohmann::json;

// Index + 1 is the proto EndpointType number (file, 14, is an addition of ours).
constexpr std::array<absl::string_view, 14> kConnectorTypes = {
    "postgres", "snowflake", "s3",      "kafka",  "http",      "grpc",       "proto",
    "pgstream", "snowpipe",  "parquet", "duckdb", "bufstream", "clickhouse", "file"};
constexpr int kLastProtoEndpointType = 14;  // file (ENDPOINT_TYPE_FILE, added)

constexpr std::array<WireFormat, 5> kAllFormats = {WireFormat::kArrow, WireFormat::kParquet,
                                                   WireFormat::kAvro, WireFormat::kProto,
                                                   WireFormat::kJson};

// Accumulates "path: problem" entries so that one run reports everything wrong with a flow.
class Problems {
 public:
  void Add(absl::string_view path, absl::string_view problem) {
    list_.push_back(absl::StrCat(path, ": ", problem));
  }
  bool empty() const { return list_.empty(); }
  absl::Status ToStatus() const {
    if (list_.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrJoin(list_, "; "));
  }

 private:
  std::vector<std::string> list_;
};

std::string Quote(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

std::string FormatList(std::span<const WireFormat> formats) {
  return absl::StrJoin(formats, ", ", [](std::string* out, WireFormat f) {
    absl::StrAppend(out, codec::WireFormatName(f));
  });
}

std::vector<std::string> SplitCsv(absl::string_view text) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (!part.empty()) out.emplace_back(part);
  }
  return out;
}

// Strips a proto enum prefix ("ENDPOINT_TYPE_", "WIRE_FORMAT_") and lower-cases.
std::string Canonical(absl::string_view text, absl::string_view proto_prefix) {
  std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  absl::string_view view = lower;
  absl::ConsumePrefix(&view, proto_prefix);
  return std::string(view);
}

bool IsDsnKey(absl::string_view key) { return key == "dsn" || absl::EndsWith(key, "_dsn"); }

bool IsSecretKey(absl::string_view key) {
  const std::string lower = absl::AsciiStrToLower(key);
  return absl::StrContains(lower, "password") || absl::StrContains(lower, "secret") ||
         absl::StrContains(lower, "token");
}

// ---------------------------------------------------------------------------------------------
// JSON → model

// A JSON scalar as option text. Numbers keep their JSON spelling so "500" and 500 are the same.
std::optional<std::string> ScalarText(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number()) return v.dump();
  return std::nullopt;
}

// Endpoint keys are matched case-insensitively: the control DB persists {"Name","Type","Options"}.
Endpoint ParseEndpoint(const Json& j, const std::string& path, Problems& problems) {
  Endpoint ep;
  if (!j.is_object()) {
    problems.Add(path, "must be an object with name, type and options");
    return ep;
  }
  bool have_type = false;
  for (const auto& [raw_key, value] : j.items()) {
    const std::string key = absl::AsciiStrToLower(raw_key);
    const std::string field = absl::StrCat(path, ".", raw_key);
    if (key == "name") {
      if (value.is_string()) {
        ep.name = value.get<std::string>();
      } else if (!value.is_null()) {
        problems.Add(field, "must be a string");
      }
    } else if (key == "type") {
      have_type = true;
      std::optional<std::string> text = ScalarText(value);
      if (!text.has_value() || value.is_boolean()) {
        problems.Add(field, "must be a string");
        continue;
      }
      auto type = ParseConnectorType(*text);
      if (type.ok()) {
        ep.type = *type;
      } else {
        problems.Add(field, type.status().message());
      }
    } else if (key == "options") {
      if (value.is_null()) continue;
      if (!value.is_object()) {
        problems.Add(field, "must be an object of option names to values");
        continue;
      }
      for (const auto& [option, option_value] : value.items()) {
        std::optional<std::string> text = ScalarText(option_value);
        if (!text.has_value()) {
          problems.Add(absl::StrCat(field, ".", option), "must be a string, number or boolean");
          continue;
        }
        ep.options[option] = std::move(*text);
      }
    } else {
      problems.Add(field, "unknown field (expected name, type, options)");
    }
  }
  if (!have_type) problems.Add(absl::StrCat(path, ".type"), "required");
  return ep;
}

absl::StatusOr<FlowDefinition> ParseFlowObject(const Json& root) {
  const Json* j = &root;
  // The API's CreateFlow payload: {"flow": {...}, "start_immediately": true}.
  if (root.is_object() && root.contains("flow") && !root.contains("source")) {
    for (const auto& [key, value] : root.items()) {
      if (key != "flow" && key != "start_immediately" && key != "startImmediately") {
        return absl::InvalidArgumentError(
            absl::StrCat(key, ": unknown field (expected flow, start_immediately)"));
      }
    }
    j = &root["flow"];
  }
  if (!j->is_object()) return absl::InvalidArgumentError("flow: must be a JSON object");

  FlowDefinition flow;
  Problems problems;
  bool have_source = false;
  bool have_destinations = false;
  for (const auto& [key, value] : j->items()) {
    if (key == "id" || key == "name") {
      if (value.is_null()) continue;
      if (!value.is_string()) {
        problems.Add(key, "must be a string");
        continue;
      }
      (key == "id" ? flow.id : flow.name) = value.get<std::string>();
    } else if (key == "wire_format" || key == "wireFormat") {
      if (value.is_null()) continue;
      std::optional<std::string> text = ScalarText(value);
      if (!text.has_value() || value.is_boolean()) {
        problems.Add(key, "must be a string");
        continue;
      }
      auto format = ParseFlowWireFormat(*text);
      if (format.ok()) {
        flow.wire_format = *format;
      } else {
        problems.Add(key, format.status().message());
      }
    } else if (key == "parallelism") {
      int parallelism = 0;
      if (value.is_number_integer()) {
        const int64_t v = value.get<int64_t>();
        parallelism = static_cast<int>(std::clamp<int64_t>(v, -1, 1 << 20));
      } else if (!value.is_string() || !absl::SimpleAtoi(value.get<std::string>(), &parallelism)) {
        problems.Add(key, absl::StrCat(value.dump(), " is not an integer"));
        continue;
      }
      if (parallelism < 1) {
        problems.Add(key, absl::StrCat("must be at least 1 (got ", value.dump(), ")"));
        continue;
      }
      flow.parallelism = parallelism;
    } else if (key == "source") {
      have_source = true;
      flow.source = ParseEndpoint(value, "source", problems);
    } else if (key == "destinations") {
      have_destinations = true;
      if (!value.is_array()) {
        problems.Add(key, "must be an array of endpoints");
        continue;
      }
      for (size_t i = 0; i < value.size(); ++i) {
        flow.destinations.push_back(
            ParseEndpoint(value[i], absl::StrCat("destinations[", i, "]"), problems));
      }
    } else if (key == "state") {
      // The API's read-only lifecycle state; meaningless in a definition.
    } else {
      problems.Add(key,
                   "unknown field (expected id, name, wire_format, parallelism, source, "
                   "destinations)");
    }
  }
  if (!have_source) problems.Add("source", "required");
  if (!have_destinations) problems.Add("destinations", "required");
  DS_RETURN_IF_ERROR(problems.ToStatus());
  return flow;
}

// ---------------------------------------------------------------------------------------------
// Connector capabilities

struct ConnectorRules {
  std::vector<absl::string_view> required;
  std::vector<WireFormat> formats;
};

ConnectorRules RulesFor(absl::string_view type) {
  ConnectorRules rules;
  rules.formats.assign(kAllFormats.begin(), kAllFormats.end());
  if (type == "postgres" || type == "pgstream") {
    rules.required = {"dsn"};
  } else if (type == "file") {
    rules.required = {"path"};
  } else if (type == "kafka" || type == "bufstream") {
    rules.required = {"brokers", "topic"};
  } else if (type == "s3") {
    rules.required = {"bucket"};
  } else if (type == "http") {
    rules.required = {"url"};
  } else if (type == "grpc") {
    rules.required = {"target"};
  } else if (type == "snowflake" || type == "clickhouse") {
    rules.required = {"dsn"};
  } else if (type == "snowpipe") {
    // Snowflake's COPY reads only these (SPEC §7.8: others fail at open).
    rules.required = {"dsn"};
    rules.formats = {WireFormat::kParquet, WireFormat::kAvro, WireFormat::kJson};
  }
  return rules;
}

// Applies SPEC §6.2 to one endpoint's `format` option: checks the value, enforces or fills the
// flow format, and checks that the connector supports the result.
// `is_source`: the source's option table already reports a malformed format, and the source has
// no supported-format list (its format is informational).
void ResolveFormat(Endpoint& ep, const std::string& path, std::optional<WireFormat> flow_format,
                   bool enforce, bool is_source, Problems& problems) {
  const std::string field = absl::StrCat(path, ".options.format");
  auto it = ep.options.find("format");
  std::optional<WireFormat> own;
  if (it != ep.options.end() && !absl::StripAsciiWhitespace(it->second).empty()) {
    auto parsed = ParseFlowWireFormat(it->second);
    if (!parsed.ok()) {
      if (!is_source) problems.Add(field, parsed.status().message());
      return;
    }
    own = *parsed;
  }
  if (flow_format.has_value()) {
    if (!own.has_value()) {
      ep.options["format"] = std::string(codec::WireFormatName(*flow_format));
      own = flow_format;
    } else if (*own != *flow_format && enforce) {
      problems.Add(field, absl::StrCat(Quote(codec::WireFormatName(*own)),
                                       " differs from the flow wire_format ",
                                       Quote(codec::WireFormatName(*flow_format)),
                                       " (DUCTSTREAM_WIRE_ENFORCE is on; remove the option, match "
                                       "it, or set DUCTSTREAM_WIRE_ENFORCE=false)"));
      return;
    }
  }
  if (!is_source && own.has_value()) {
    const std::vector<WireFormat> supported = RulesFor(ep.type).formats;
    if (std::find(supported.begin(), supported.end(), *own) == supported.end()) {
      problems.Add(field, absl::StrCat(ep.type, " does not support wire format ",
                                       codec::WireFormatName(*own),
                                       " (supported: ", FormatList(supported), ")"));
    }
  }
}

bool Missing(const Endpoint& ep, absl::string_view key) {
  auto it = ep.options.find(std::string(key));
  return it == ep.options.end() || absl::StripAsciiWhitespace(it->second).empty();
}

// ---------------------------------------------------------------------------------------------
// Postgres source options: one table drives parsing, the unknown-key check and the docs.

using Setter =
    std::function<std::optional<std::string>(absl::string_view value, PostgresSourceOptions& out)>;

struct SourceOption {
  OptionDoc doc;
  Setter set;
};

template <typename M>
Setter String(M PostgresSourceOptions::*member) {
  return [member](absl::string_view v, PostgresSourceOptions& o) -> std::optional<std::string> {
    o.*member = std::string(absl::StripAsciiWhitespace(v));
    return std::nullopt;
  };
}

Setter Identifier(std::string PostgresSourceOptions::*member) {
  return [member](absl::string_view v, PostgresSourceOptions& o) -> std::optional<std::string> {
    v = absl::StripAsciiWhitespace(v);
    if (absl::StrContains(v, '.')) {
      return absl::StrCat(Quote(v), " must be a bare name (no \".\")");
    }
    o.*member = std::string(v);
    return std::nullopt;
  };
}

Setter Csv(std::vector<std::string> PostgresSourceOptions::*member) {
  return [member](absl::string_view v, PostgresSourceOptions& o) -> std::optional<std::string> {
    o.*member = SplitCsv(v);
    return std::nullopt;
  };
}

Setter Bool(bool PostgresSourceOptions::*member) {
  return [member](absl::string_view v, PostgresSourceOptions& o) -> std::optional<std::string> {
    std::optional<bool> b = ParseBoolOption(v);
    if (!b.has_value())
      return absl::StrCat(Quote(v), " is not a boolean (true/false, yes/no, 1/0)");
    o.*member = *b;
    return std::nullopt;
  };
}

Setter Duration(absl::Duration PostgresSourceOptions::*member, bool positive) {
  return [member, positive](absl::string_view v,
                            PostgresSourceOptions& o) -> std::optional<std::string> {
    std::optional<absl::Duration> d = ParseDurationOption(v);
    if (!d.has_value())
      return absl::StrCat(Quote(v), " is not a duration (e.g. \"500ms\", \"1s\")");
    if (positive && *d <= absl::ZeroDuration()) return absl::StrCat(Quote(v), " must be positive");
    o.*member = *d;
    return std::nullopt;
  };
}

Setter Bytes(int64_t PostgresSourceOptions::*member) {
  return [member](absl::string_view v, PostgresSourceOptions& o) -> std::optional<std::string> {
    std::optional<int64_t> n = ParseByteSizeOption(v);
    if (!n.has_value() || *n <= 0) {
      return absl::StrCat(Quote(v),
                          " is not a positive byte size (e.g. \"1048576\", \"64KiB\", \"32MB\")");
    }
    o.*member = *n;
    return std::nullopt;
  };
}

template <typename Int>
Setter Positive(Int PostgresSourceOptions::*member) {
  return [member](absl::string_view v, PostgresSourceOptions& o) -> std::optional<std::string> {
    Int n = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(v), &n) || n <= 0) {
      return absl::StrCat(Quote(v), " must be a positive integer");
    }
    o.*member = n;
    return std::nullopt;
  };
}

template <typename E>
Setter Enum(E PostgresSourceOptions::*member, std::vector<std::pair<absl::string_view, E>> values) {
  return [member, values](absl::string_view v,
                          PostgresSourceOptions& o) -> std::optional<std::string> {
    const std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(v));
    std::vector<absl::string_view> names;
    for (const auto& [name, value] : values) {
      if (lower == name) {
        o.*member = value;
        return std::nullopt;
      }
      names.push_back(name);
    }
    return absl::StrCat(Quote(v), " is not one of ", absl::StrJoin(names, ", "));
  };
}

const std::vector<SourceOption>& SourceOptionTable() {
  using O = PostgresSourceOptions;
  static const auto* table = new std::vector<SourceOption>{
      {{"dsn", "(required)", "source connection string (libpq key/value or URI)"}, String(&O::dsn)},
      {{"slot", "(required in cdc mode)", "logical replication slot"}, Identifier(&O::slot)},
      {{"publication", "(required in cdc mode)", "publication name"}, Identifier(&O::publication)},
      {{"publication_tables", "", "CSV of schema.table for publication creation/sync"},
       Csv(&O::publication_tables)},
      {{"tables", "", "alias of publication_tables (also the backfill table list)"},
       Csv(&O::publication_tables)},
      {{"publication_schemas", "", "CSV of schemas whose base tables are published"},
       Csv(&O::publication_schemas)},
      {{"create_slot", "true", "create the slot when missing"}, Bool(&O::create_slot)},
      {{"ensure_publication", "true", "create the publication when missing"},
       Bool(&O::ensure_publication)},
      {{"validate_replication", "true", "check wal_level and other server settings"},
       Bool(&O::validate_replication)},
      {{"sync_publication", "false", "reconcile publication membership on open"},
       Bool(&O::sync_publication)},
      {{"sync_publication_mode", "add", "add (only add tables) or sync (also drop extras)"},
       Enum<SyncPublicationMode>(
           &O::sync_publication_mode,
           {{"add", SyncPublicationMode::kAdd}, {"sync", SyncPublicationMode::kSync}})},
      {{"start_lsn", "", "explicit start position X/Y; overrides the checkpoint"},
       [](absl::string_view v, O& o) -> std::optional<std::string> {
         v = absl::StripAsciiWhitespace(v);
         if (v.empty()) return std::nullopt;
         auto lsn = Lsn::Parse(v);
         if (!lsn.ok()) return absl::StrCat(Quote(v), " is not an LSN (e.g. \"16/B374D848\")");
         o.start_lsn = *lsn;
         return std::nullopt;
       }},
      {{"batch_size", "10000", "max rows per batch"}, Positive(&O::batch_size)},
      {{"batch_timeout", "1s", "flush interval for a partial batch"},
       Duration(&O::batch_timeout, /*positive=*/true)},
      {{"status_interval", "10s", "standby status update period"},
       Duration(&O::status_interval, /*positive=*/true)},
      {{"heartbeat_interval", "0", "source heartbeat period; 0 disables"},
       Duration(&O::heartbeat_interval, /*positive=*/false)},
      {{"toast_fill", "none", "unchanged TOAST values: none, cache or source"},
       Enum<ToastFill>(&O::toast_fill, {{"none", ToastFill::kNone},
                                        {"cache", ToastFill::kCache},
                                        {"source", ToastFill::kSource}})},
      {{"toast_cache_bytes", "64MiB", "memory for the TOAST value cache"},
       Bytes(&O::toast_cache_bytes)},
      {{"max_batch_bytes", "16MiB", "max bytes per batch"}, Bytes(&O::max_batch_bytes)},
      {{"max_inflight_bytes", "32MiB", "max bytes of batches queued for the writer"},
       Bytes(&O::max_inflight_bytes)},
      {{"stream_buffer_bytes", "16MiB",
        "memory for streamed in-progress transactions before spilling to disk"},
       Bytes(&O::stream_buffer_bytes)},
      {{"spill_dir", "", "directory for spilled transactions; empty: $TMPDIR or /tmp"},
       String(&O::spill_dir)},
      {{"binary", "true", "request pgoutput binary values"}, Bool(&O::binary)},
      {{"messages", "true", "request pgoutput logical messages (DDL capture)"}, Bool(&O::messages)},
      {{"reconnect_backoff_max", "30s", "max delay between reconnect attempts"},
       Duration(&O::reconnect_backoff_max, /*positive=*/true)},
      {{"format", "arrow", "wire format stamped on batches (the flow format wins)"},
       [](absl::string_view v, O& o) -> std::optional<std::string> {
         auto f = ParseFlowWireFormat(v);
         if (!f.ok()) return std::string(f.status().message());
         o.format = *f;
         return std::nullopt;
       }},
      {{"emit_empty", "false", "return an empty batch when batch_timeout passes idle"},
       Bool(&O::emit_empty)},
      {{"resolve_types", "true", "resolve type OIDs to names via pg_type"},
       Bool(&O::resolve_types)},
      {{"ensure_state", "true", "maintain the source-state table"}, Bool(&O::ensure_state)},
      {{"state_schema", "ductstream", "source-state schema"}, Identifier(&O::state_schema)},
      {{"state_table", "source_state", "source-state table"}, Identifier(&O::state_table)},
      {{"flow_id", "(injected)", "stable id for the source-state row"}, String(&O::flow_id)},
      {{"mode", "cdc", "cdc or backfill"},
       Enum<SourceMode>(&O::mode,
                        {{"cdc", SourceMode::kCdc}, {"backfill", SourceMode::kBackfill}})},
      {{"snapshot", "initial",
        "initial (copy the tables when the slot is created), never, only "
        "(copy, then exit)"},
       Enum<SnapshotMode>(&O::snapshot, {{"initial", SnapshotMode::kInitial},
                                         {"never", SnapshotMode::kNever},
                                         {"only", SnapshotMode::kOnly}})},
      {{"snapshot_chunk_bytes", "32MiB", "snapshot/backfill: size of a page-range chunk"},
       Bytes(&O::snapshot_chunk_bytes)},
      {{"schemas", "public (when no tables)", "backfill: CSV of schemas to discover tables in"},
       Csv(&O::schemas)},
      {{"snapshot_workers", "1", "snapshot/backfill: parallel COPY connections"},
       Positive(&O::snapshot_workers)},
      {{"parallel_tables", "", "alias of snapshot_workers"}, Positive(&O::snapshot_workers)},
      {{"partition_column", "",
        "snapshot/backfill: hash-partition tables on this column "
        "instead of page ranges"},
       Identifier(&O::partition_column)},
      {{"partition_count", "1", "snapshot/backfill: hash partitions per table"},
       Positive(&O::partition_count)},
      {{"snapshot_consistent", "true", "backfill/only: every worker reads one exported snapshot"},
       Bool(&O::snapshot_consistent)},
      {{"snapshot_state_backend", "postgres",
        "snapshot/backfill progress store: postgres, file or none"},
       [](absl::string_view v, O& o) -> std::optional<std::string> {
         const std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(v));
         if (lower != "postgres" && lower != "file" && lower != "none") {
           return absl::StrCat(Quote(v), " is not one of postgres, file, none");
         }
         o.snapshot_state_backend = lower;
         return std::nullopt;
       }},
      {{"snapshot_state_schema", "ductstream", "backfill state schema"},
       Identifier(&O::snapshot_state_schema)},
      {{"snapshot_state_table", "snapshot_state", "backfill state table"},
       Identifier(&O::snapshot_state_table)},
      {{"snapshot_state_dsn", "(source dsn)", "database of the postgres state backend"},
       String(&O::snapshot_state_dsn)},
      {{"snapshot_state_path", "", "JSON file of the file state backend"},
       String(&O::snapshot_state_path)},
  };
  return *table;
}

void ParseSourceOptionsInto(const Endpoint& source, PostgresSourceOptions& out,
                            Problems& problems) {
  const auto& table = SourceOptionTable();
  // `publication_tables` wins over its alias whatever the map order, so apply aliases first.
  std::vector<std::pair<std::string, std::string>> ordered(source.options.begin(),
                                                           source.options.end());
  std::stable_partition(ordered.begin(), ordered.end(),
                        [](const auto& kv) { return kv.first == "tables"; });
  for (const auto& [key, value] : ordered) {
    const std::string field = absl::StrCat("source.options.", key);
    auto it = std::find_if(table.begin(), table.end(),
                           [&](const SourceOption& o) { return o.doc.name == key; });
    if (it == table.end()) {
      problems.Add(field, "unknown option");
      continue;
    }
    if (key == "publication_tables" && SplitCsv(value).empty()) continue;  // keep the alias
    if (std::optional<std::string> problem = it->set(value, out)) problems.Add(field, *problem);
  }
  if (Missing(source, "dsn")) problems.Add("source.options.dsn", "required");
  if (out.mode == SourceMode::kCdc) {
    if (Missing(source, "slot")) problems.Add("source.options.slot", "required");
    if (Missing(source, "publication")) problems.Add("source.options.publication", "required");
  }
  if (out.mode == SourceMode::kCdc && out.snapshot == SnapshotMode::kInitial &&
      out.snapshot_state_backend == "none") {
    problems.Add("source.options.snapshot_state_backend",
                 "none cannot resume an interrupted initial snapshot: use postgres or file, or "
                 "set snapshot=never");
  }
  if (out.snapshot_state_backend == "file" && out.snapshot_state_path.empty()) {
    problems.Add("source.options.snapshot_state_path", "required when snapshot_state_backend=file");
  }
}

// `report_path_and_format` is false when ValidateFlow has already checked those generically, so
// that each problem is reported once.
void CheckFileOptions(const Endpoint& dest, absl::string_view field, bool report_path_and_format,
                      FileDestinationOptions& out, Problems& problems) {
  for (const auto& [key, value] : dest.options) {
    if (key != "path" && key != "format" && key != "compression" && key != "flow_id") {
      problems.Add(absl::StrCat(field, ".options.", key),
                   "unknown option (expected path, format, compression)");
    }
  }
  if (!Missing(dest, "path")) {
    out.path = std::string(absl::StripAsciiWhitespace(dest.options.at("path")));
  } else if (report_path_and_format) {
    problems.Add(absl::StrCat(field, ".options.path"), "required");
  }
  if (!Missing(dest, "format")) {
    auto format = ParseFlowWireFormat(dest.options.at("format"));
    if (!format.ok()) {
      if (report_path_and_format) {
        problems.Add(absl::StrCat(field, ".options.format"), format.status().message());
      }
      return;
    }
    if (format->has_value()) out.format = **format;
  }
  if (auto it = dest.options.find("compression"); it != dest.options.end()) {
    out.compression = std::string(absl::StripAsciiWhitespace(it->second));
  }
  // The encoder factory is pure validation, so an unknown codec fails here rather than at the
  // first batch.
  codec::EncoderOptions encoder_options;
  encoder_options.compression = out.compression;
  auto encoder = codec::MakeEncoder(out.format, encoder_options);
  if (!encoder.ok()) {
    problems.Add(absl::StrCat(field, ".options.compression"), encoder.status().message());
  }
}

}  // namespace

std::span<const absl::string_view> KnownConnectorTypes() { return kConnectorTypes; }

absl::StatusOr<std::string> ParseConnectorType(absl::string_view text) {
  const std::string type = Canonical(text, "endpoint_type_");
  if (type.empty() || type == "unspecified" || type == "0") {
    return absl::InvalidArgumentError(
        absl::StrCat("required (one of ", absl::StrJoin(kConnectorTypes, ", "), ")"));
  }
  int number = 0;
  if (absl::SimpleAtoi(type, &number) && number >= 1 && number <= kLastProtoEndpointType) {
    return std::string(kConnectorTypes[number - 1]);
  }
  for (absl::string_view known : kConnectorTypes) {
    if (type == known) return type;
  }
  // Not a proto EndpointType (so not part of the numbering above): the `null` destination of
  // the benchmarks, which discards every batch (destination/null_destination.h).
  if (type == "null") return type;
  return absl::InvalidArgumentError(absl::StrCat("unknown connector ", Quote(text),
                                                 " (expected one of ",
                                                 absl::StrJoin(kConnectorTypes, ", "), ")"));
}

absl::StatusOr<std::optional<WireFormat>> ParseFlowWireFormat(absl::string_view text) {
  const std::string name = Canonical(text, "wire_format_");
  if (name.empty() || name == "unspecified" || name == "0") return std::nullopt;
  // Proto enum numbers: ARROW=1 PARQUET=2 PROTO=3 AVRO=4 JSON=5.
  static constexpr std::array<WireFormat, 5> kByNumber = {WireFormat::kArrow, WireFormat::kParquet,
                                                          WireFormat::kProto, WireFormat::kAvro,
                                                          WireFormat::kJson};
  int number = 0;
  if (absl::SimpleAtoi(name, &number) && number >= 1 && number <= 5) return kByNumber[number - 1];
  auto format = codec::ParseWireFormat(name);
  if (!format.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown wire format ", Quote(text), " (expected arrow, parquet, avro, proto or json)"));
  }
  return *format;
}

absl::StatusOr<FlowDefinition> ParseFlowJson(absl::string_view json) {
  Json root;
  try {
    root = Json::parse(json.begin(), json.end());
  } catch (const Json::parse_error& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line 3, column 5: ...".
    absl::string_view what = e.what();
    if (const size_t close = what.find("] "); close != absl::string_view::npos) {
      what.remove_prefix(close + 2);
    }
    return absl::InvalidArgumentError(absl::StrCat("flow JSON: ", what));
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("flow JSON: ", e.what()));
  }
  return ParseFlowObject(root);
}

absl::StatusOr<FlowDefinition> LoadFlowFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("flow file ", path, ": cannot open"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("flow file ", path, ": read error"));
  auto flow = ParseFlowJson(buffer.str());
  if (!flow.ok()) return base::Annotate(flow.status(), path);
  return flow;
}

std::string FlowToJson(const FlowDefinition& flow, bool redact_secrets) {
  auto endpoint = [&](const Endpoint& ep) {
    Json options = Json::object();
    for (const auto& [k, v] : ep.options) {
      if (redact_secrets && IsDsnKey(k)) {
        options[k] = base::RedactDsn(v);
      } else if (redact_secrets && IsSecretKey(k) && !v.empty()) {
        options[k] = "*****";
      } else {
        options[k] = v;
      }
    }
    return Json{{"name", ep.name}, {"type", ep.type}, {"options", std::move(options)}};
  };
  Json j = Json::object();
  if (!flow.id.empty()) j["id"] = flow.id;
  j["name"] = flow.name;
  if (flow.wire_format.has_value()) {
    j["wire_format"] = std::string(codec::WireFormatName(*flow.wire_format));
  }
  j["parallelism"] = flow.parallelism;
  j["source"] = endpoint(flow.source);
  Json destinations = Json::array();
  for (const Endpoint& d : flow.destinations) destinations.push_back(endpoint(d));
  j["destinations"] = std::move(destinations);
  return j.dump(2, ' ', false, Json::error_handler_t::replace);
}

std::vector<WireFormat> SupportedWireFormats(absl::string_view connector_type) {
  if (std::find(kConnectorTypes.begin(), kConnectorTypes.end(), connector_type) ==
      kConnectorTypes.end()) {
    return {};
  }
  return RulesFor(connector_type).formats;
}

absl::Status ValidateFlow(FlowDefinition& flow, const ValidationOptions& options) {
  FlowDefinition resolved = flow;
  Problems problems;
  if (resolved.parallelism < 1) {
    problems.Add("parallelism",
                 absl::StrCat("must be at least 1 (got ", resolved.parallelism, ")"));
  }
  if (!resolved.wire_format.has_value()) resolved.wire_format = options.default_wire_format;

  // Source. API-built flows may carry proto spellings ("ENDPOINT_TYPE_POSTGRES").
  if (auto type = ParseConnectorType(resolved.source.type); type.ok()) resolved.source.type = *type;
  if (resolved.source.type.empty()) {
    problems.Add("source.type", "required (the source must be postgres)");
  } else if (resolved.source.type != "postgres") {
    problems.Add("source.type", absl::StrCat("the source must be postgres (got ",
                                             Quote(resolved.source.type), ")"));
  } else {
    PostgresSourceOptions ignored;
    ParseSourceOptionsInto(resolved.source, ignored, problems);
    ResolveFormat(resolved.source, "source", resolved.wire_format, options.enforce,
                  /*is_source=*/true, problems);
  }

  // Destinations.
  if (resolved.destinations.empty()) {
    problems.Add("destinations", "at least one destination is required");
  }
  absl::flat_hash_map<std::string, size_t> names;
  for (size_t i = 0; i < resolved.destinations.size(); ++i) {
    Endpoint& dest = resolved.destinations[i];
    const std::string path = absl::StrCat("destinations[", i, "]");
    if (absl::StripAsciiWhitespace(dest.name).empty()) {
      problems.Add(absl::StrCat(path, ".name"), "required");
    } else if (auto [it, inserted] = names.emplace(dest.name, i); !inserted) {
      problems.Add(absl::StrCat(path, ".name"),
                   absl::StrCat(Quote(dest.name), " is already used by destinations[", it->second,
                                "] (names must be unique)"));
    }
    if (dest.type.empty()) {
      problems.Add(absl::StrCat(path, ".type"), "required");
      continue;
    }
    if (auto type = ParseConnectorType(dest.type); !type.ok()) {
      problems.Add(absl::StrCat(path, ".type"), type.status().message());
      continue;
    } else {
      dest.type = *type;
    }
    for (absl::string_view key : RulesFor(dest.type).required) {
      if (Missing(dest, key)) problems.Add(absl::StrCat(path, ".options.", key), "required");
    }
    ResolveFormat(dest, path, resolved.wire_format, options.enforce, /*is_source=*/false, problems);
    if (dest.type == "file") {
      FileDestinationOptions unused;
      CheckFileOptions(dest, path, /*report_path_and_format=*/false, unused, problems);
    }
  }

  DS_RETURN_IF_ERROR(problems.ToStatus());
  flow = std::move(resolved);
  return absl::OkStatus();
}

std::span<const OptionDoc> PostgresSourceOptionDocs() {
  static const auto* docs = [] {
    auto* out = new std::vector<OptionDoc>();
    for (const SourceOption& o : SourceOptionTable()) out->push_back(o.doc);
    return out;
  }();
  return *docs;
}

absl::StatusOr<PostgresSourceOptions> ParsePostgresSourceOptions(const Endpoint& source) {
  PostgresSourceOptions out;
  Problems problems;
  ParseSourceOptionsInto(source, out, problems);
  DS_RETURN_IF_ERROR(problems.ToStatus());
  return out;
}

absl::StatusOr<FileDestinationOptions> ParseFileDestinationOptions(const Endpoint& dest,
                                                                   absl::string_view field) {
  FileDestinationOptions out;
  Problems problems;
  CheckFileOptions(dest, field, /*report_path_and_format=*/true, out, problems);
  DS_RETURN_IF_ERROR(problems.ToStatus());
  return out;
}

std::optional<bool> ParseBoolOption(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  if (lower == "true" || lower == "1" || lower == "yes" || lower == "on") return true;
  if (lower == "false" || lower == "0" || lower == "no" || lower == "off") return false;
  return std::nullopt;
}

std::optional<absl::Duration> ParseDurationOption(absl::string_view text) {
  absl::Duration d;
  if (!absl::ParseDuration(absl::StripAsciiWhitespace(text), &d)) return std::nullopt;
  if (d < absl::ZeroDuration() || d == absl::InfiniteDuration()) return std::nullopt;
  return d;
}

std::optional<int64_t> ParseByteSizeOption(absl::string_view text) {
  std::string s = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  absl::string_view view = s;
  size_t digits = 0;
  while (digits < view.size() && absl::ascii_isdigit(static_cast<unsigned char>(view[digits]))) {
    ++digits;
  }
  if (digits == 0) return std::nullopt;
  uint64_t number = 0;
  if (!absl::SimpleAtoi(view.substr(0, digits), &number)) return std::nullopt;
  absl::string_view unit = absl::StripLeadingAsciiWhitespace(view.substr(digits));
  static constexpr std::array<std::pair<absl::string_view, uint64_t>, 10> kUnits = {{
      {"kb", 1000ULL},
      {"kib", 1ULL << 10},
      {"mb", 1000ULL * 1000},
      {"mib", 1ULL << 20},
      {"gb", 1000ULL * 1000 * 1000},
      {"gib", 1ULL << 30},
      {"tb", 1000ULL * 1000 * 1000 * 1000},
      {"tib", 1ULL << 40},
      {"b", 1ULL},
      {"", 1ULL},
  }};
  for (const auto& [name, multiplier] : kUnits) {
    if (unit != name) continue;
    if (number > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / multiplier) {
      return std::nullopt;
    }
    return static_cast<int64_t>(number * multiplier);
  }
  return std::nullopt;
}

}  // namespace ductstream::flow
