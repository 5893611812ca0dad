#include "ductstream/flow/flow_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "ductstream/testing/pg_sandbox.h"

namespace ductstream::flow {
namespace {

using codec::WireFormat;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// A valid flow; tests break one thing at a time with textual replacements.
constexpr const char* kValidFlow = R"json({
  "name": "orders",
  "wire_format": "arrow",
  "source": {"name": "pg", "type": "postgres", "options": {
      "dsn": "postgres://u:s3cret@db:5432/app", "slot": "s", "publication": "p",
      "batch_size": 500, "create_slot": true}},
  "destinations": [
    {"name": "k", "type": "kafka", "options": {"brokers": "b:9092", "topic": "t"}},
    {"name": "f", "type": "file", "options": {"path": "/tmp/out"}}
  ]
})json";

std::string Replace(absl::string_view from, absl::string_view to,
                    absl::string_view json = kValidFlow) {
  std::string out = absl::StrReplaceAll(json, {{from, to}});
  EXPECT_NE(out, json) << "replacement of " << from << " did not apply";
  return out;
}

// Parses and validates; returns the status message ("" when OK).
std::string Problems(const std::string& json, ValidationOptions options = {}) {
  auto flow = ParseFlowJson(json);
  if (!flow.ok()) {
    EXPECT_EQ(flow.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(flow.status().message());
  }
  absl::Status s = ValidateFlow(*flow, options);
  if (!s.ok()) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  }
  return std::string(s.message());
}

TEST(FlowConfigTest, ParsesAndValidatesAValidFlow) {
  auto flow = ParseFlowJson(kValidFlow);
  ASSERT_TRUE(flow.ok()) << flow.status();
  EXPECT_EQ(flow->name, "orders");
  EXPECT_EQ(flow->id, "");
  EXPECT_EQ(flow->parallelism, 1);
  EXPECT_EQ(flow->wire_format, WireFormat::kArrow);
  EXPECT_EQ(flow->source.type, "postgres");
  // JSON numbers and booleans become option strings.
  EXPECT_EQ(flow->source.options.at("batch_size"), "500");
  EXPECT_EQ(flow->source.options.at("create_slot"), "true");
  ASSERT_EQ(flow->destinations.size(), 2u);
  EXPECT_EQ(flow->destinations[0].type, "kafka");
  ASSERT_TRUE(ValidateFlow(*flow).ok());
  // Empty formats are filled from the flow format (SPEC §6.2).
  EXPECT_EQ(flow->source.options.at("format"), "arrow");
  EXPECT_EQ(flow->destinations[0].options.at("format"), "arrow");
  EXPECT_EQ(flow->destinations[1].options.at("format"), "arrow");
}

TEST(FlowConfigTest, ExampleFileParsesAndValidates) {
  const std::string path = testing::SourceDir() + "/examples/flows/postgres_to_file.json";
  auto flow = LoadFlowFile(path);
  ASSERT_TRUE(flow.ok()) << flow.status();
  ASSERT_TRUE(ValidateFlow(*flow).ok()) << ValidateFlow(*flow);
  EXPECT_EQ(flow->wire_format, WireFormat::kParquet);
  auto source = ParsePostgresSourceOptions(flow->source);
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_EQ(source->dsn, "postgres://postgres@localhost:5432/app?sslmode=disable");
  EXPECT_EQ(source->slot, "ductstream_slot");
  EXPECT_EQ(source->publication, "ductstream_pub");
  EXPECT_EQ(source->batch_size, 500);
  ASSERT_EQ(flow->destinations.size(), 1u);
  auto file = ParseFileDestinationOptions(flow->destinations[0], "destinations[0]");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->path, "./out");
  EXPECT_EQ(file->format, WireFormat::kParquet);
}

TEST(FlowConfigTest, LoadFlowFileErrorsNameThePath) {
  auto missing = LoadFlowFile("/nonexistent/flow.json");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("/nonexistent/flow.json"));
}

TEST(FlowConfigTest, JsonSyntaxErrorsGiveLineAndColumn) {
  auto flow = ParseFlowJson("{\n  \"name\": \"x\",\n  \"source\": {,\n}");
  ASSERT_FALSE(flow.ok());
  EXPECT_EQ(flow.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(flow.status().message(),
              AllOf(HasSubstr("flow JSON:"), HasSubstr("line 3, column 14"),
                    Not(HasSubstr("json.exception"))));
  EXPECT_THAT(ParseFlowJson("").status().message(), HasSubstr("flow JSON:"));
  EXPECT_THAT(ParseFlowJson("[1]").status().message(), HasSubstr("flow: must be a JSON object"));
}

TEST(FlowConfigTest, ProtoSpellingsAndTheApiWrapper) {
  const std::string json = R"json({"flow": {
    "id": "f-1", "name": "n", "wireFormat": "WIRE_FORMAT_PARQUET", "parallelism": "2",
    "state": "FLOW_STATE_RUNNING",
    "source": {"Name": "pg", "Type": "ENDPOINT_TYPE_POSTGRES",
               "Options": {"dsn": "host=db", "slot": "s", "publication": "p"}},
    "destinations": [{"name": "s", "type": "ENDPOINT_TYPE_S3", "options": {"bucket": "b"}},
                     {"name": "c", "type": 13, "options": {"dsn": "clickhouse://h"}}]},
    "start_immediately": true})json";
  auto flow = ParseFlowJson(json);
  ASSERT_TRUE(flow.ok()) << flow.status();
  EXPECT_EQ(flow->id, "f-1");
  EXPECT_EQ(flow->wire_format, WireFormat::kParquet);
  EXPECT_EQ(flow->parallelism, 2);
  EXPECT_EQ(flow->source.type, "postgres");
  EXPECT_EQ(flow->source.name, "pg");
  EXPECT_EQ(flow->destinations[0].type, "s3");
  EXPECT_EQ(flow->destinations[1].type, "clickhouse");
  EXPECT_TRUE(ValidateFlow(*flow).ok()) << ValidateFlow(*flow);

  EXPECT_EQ(*ParseFlowWireFormat("wire_format_json"), WireFormat::kJson);
  EXPECT_EQ(*ParseFlowWireFormat("4"), WireFormat::kAvro);
  EXPECT_EQ(*ParseFlowWireFormat("WIRE_FORMAT_UNSPECIFIED"), std::nullopt);
  EXPECT_EQ(*ParseFlowWireFormat(""), std::nullopt);
  EXPECT_FALSE(ParseFlowWireFormat("xml").ok());
  EXPECT_EQ(*ParseConnectorType("Endpoint_Type_Bufstream"), "bufstream");
  EXPECT_EQ(*ParseConnectorType("FILE"), "file");
  EXPECT_FALSE(ParseConnectorType("ENDPOINT_TYPE_UNSPECIFIED").ok());
  EXPECT_EQ(KnownConnectorTypes().size(), 14u);
}

TEST(FlowConfigTest, UnknownConnectorTypesListTheKnownOnes) {
  EXPECT_THAT(Problems(Replace("\"type\": \"kafka\"", "\"type\": \"kafak\"")),
              HasSubstr("destinations[0].type: unknown connector \"kafak\" (expected one of "
                        "postgres, snowflake, s3, kafka, http, grpc, proto, pgstream, snowpipe, "
                        "parquet, duckdb, bufstream, clickhouse, file)"));
}

TEST(FlowConfigTest, StructuralErrorsAreAllReported) {
  const std::string json = R"json({"name": 5, "parallelism": 0, "wire_format": "xml",
    "colour": "red",
    "source": {"type": "postgres", "options": {"dsn": "x", "nested": {"a": 1}, "n": null}},
    "destinations": [{"name": "a", "options": {}}, 7, {"name": "b", "type": "file", "extra": 1}]})json";
  const std::string message = std::string(ParseFlowJson(json).status().message());
  for (const char* expected :
       {"name: must be a string", "parallelism: must be at least 1 (got 0)",
        "wire_format: unknown wire format \"xml\"", "colour: unknown field",
        "source.options.nested: must be a string, number or boolean",
        "source.options.n: must be a string, number or boolean", "destinations[0].type: required",
        "destinations[1]: must be an object", "destinations[2].extra: unknown field"}) {
    EXPECT_THAT(message, HasSubstr(expected));
  }
  EXPECT_EQ(std::vector<std::string>(absl::StrSplit(message, "; ")).size(), 9u) << message;
  EXPECT_THAT(std::string(ParseFlowJson("{}").status().message()),
              AllOf(HasSubstr("source: required"), HasSubstr("destinations: required")));
  EXPECT_THAT(Problems(Replace("\"name\": \"orders\",", "\"parallelism\": \"many\",")),
              HasSubstr("parallelism: \"many\" is not an integer"));
}

TEST(FlowConfigTest, ValidationReportsEveryProblemJoined) {
  std::string json = Replace("\"slot\": \"s\", ", "");
  json = Replace("\"path\": \"/tmp/out\"", "\"paht\": \"/tmp/out\"", json);
  json = Replace("\"batch_size\": 500", "\"batchsize\": 500, \"batch_timeout\": \"ten\"", json);
  json = Replace("\"name\": \"f\"", "\"name\": \"k\"", json);
  const std::string message = Problems(json);
  EXPECT_THAT(message, HasSubstr("source.options.slot: required"));
  EXPECT_THAT(message, HasSubstr("destinations[1].options.path: required"));
  EXPECT_THAT(message,
              HasSubstr("destinations[1].options.paht: unknown option (expected path, format, "
                        "compression)"));
  EXPECT_THAT(message, HasSubstr("source.options.batchsize: unknown option"));
  EXPECT_THAT(message, HasSubstr("source.options.batch_timeout: \"ten\" is not a duration (e.g. "
                                 "\"500ms\", \"1s\")"));
  EXPECT_THAT(message, HasSubstr("destinations[1].name: \"k\" is already used by destinations[0]"));
  EXPECT_EQ(std::vector<std::string>(absl::StrSplit(message, "; ")).size(), 6u) << message;
  // The DSN's password never appears.
  EXPECT_THAT(message, Not(HasSubstr("s3cret")));
}

TEST(FlowConfigTest, SourceMustBePostgresAndDestinationsNamedAndPresent) {
  EXPECT_THAT(Problems(Replace("\"type\": \"postgres\"", "\"type\": \"kafka\"")),
              HasSubstr("source.type: the source must be postgres (got \"kafka\")"));
  EXPECT_THAT(
      Problems(Replace(
          R"(,
    {"name": "f", "type": "file", "options": {"path": "/tmp/out"}})",
          "",
          Replace(
              R"({"name": "k", "type": "kafka", "options": {"brokers": "b:9092", "topic": "t"}})",
              ""))),
      HasSubstr("destinations: at least one destination is required"));
  EXPECT_THAT(Problems(Replace("\"name\": \"k\"", "\"name\": \" \"")),
              HasSubstr("destinations[0].name: required"));
  FlowDefinition flow = *ParseFlowJson(kValidFlow);
  flow.parallelism = 0;
  EXPECT_THAT(std::string(ValidateFlow(flow).message()),
              HasSubstr("parallelism: must be at least 1 (got 0)"));
}

TEST(FlowConfigTest, RequiredOptionsPerConnector) {
  struct Case {
    const char* type;
    const char* missing;
  };
  for (const Case& c :
       {Case{"kafka", "brokers"}, Case{"kafka", "topic"}, Case{"bufstream", "brokers"},
        Case{"s3", "bucket"}, Case{"http", "url"}, Case{"pgstream", "dsn"}, Case{"grpc", "target"},
        Case{"file", "path"}, Case{"snowflake", "dsn"}, Case{"snowpipe", "dsn"}}) {
    FlowDefinition flow = *ParseFlowJson(kValidFlow);
    flow.wire_format = WireFormat::kJson;  // one every connector takes (snowpipe: no arrow)
    flow.destinations.resize(1);
    flow.destinations[0].type = c.type;
    flow.destinations[0].options = {{"brokers", "b"},    {"topic", "t"}, {"bucket", "b"},
                                    {"url", "http://h"}, {"dsn", "x"},   {"target", "h:1"},
                                    {"path", "/p"}};
    if (std::string(c.type) == "file") flow.destinations[0].options = {{"path", "/p"}};
    ASSERT_TRUE(ValidateFlow(flow).ok()) << c.type << ": " << ValidateFlow(flow);
    flow.destinations[0].options.erase(c.missing);
    flow.destinations[0].options.erase("format");
    EXPECT_THAT(std::string(ValidateFlow(flow).message()),
                HasSubstr(absl::StrCat("destinations[0].options.", c.missing, ": required")))
        << c.type;
  }
  // Source: dsn, slot and publication in cdc mode; only dsn for a backfill.
  const std::string message =
      Problems(Replace("\"dsn\": \"postgres://u:s3cret@db:5432/app\", \"slot\": \"s\", "
                       "\"publication\": \"p\",",
                       ""));
  EXPECT_THAT(message, AllOf(HasSubstr("source.options.dsn: required"),
                             HasSubstr("source.options.slot: required"),
                             HasSubstr("source.options.publication: required")));
  EXPECT_EQ(Problems(Replace("\"slot\": \"s\", \"publication\": \"p\",",
                             "\"mode\": \"backfill\","
                             " \"tables\": \"a.b\",")),
            "");
}

TEST(FlowConfigTest, WireFormatEnforcement) {
  const std::string json = Replace("\"topic\": \"t\"", "\"topic\": \"t\", \"format\": \"json\"");
  // Enforce (the default): a different connector format is an error naming both and the switch.
  EXPECT_THAT(Problems(json),
              HasSubstr("destinations[0].options.format: \"json\" differs from the flow "
                        "wire_format \"arrow\" (DUCTSTREAM_WIRE_ENFORCE is on"));
  // Source formats follow the same rule.
  EXPECT_THAT(Problems(Replace("\"slot\": \"s\"", "\"slot\": \"s\", \"format\": \"avro\"")),
              HasSubstr("source.options.format: \"avro\" differs from the flow wire_format"));
  // Enforce off: the connector keeps its own format; empty ones are still filled.
  auto flow = ParseFlowJson(json);
  ASSERT_TRUE(flow.ok());
  ASSERT_TRUE(ValidateFlow(*flow, {.enforce = false}).ok());
  EXPECT_EQ(flow->destinations[0].options.at("format"), "json");
  EXPECT_EQ(flow->destinations[1].options.at("format"), "arrow");
  // The same format spelled differently is not a conflict.
  EXPECT_EQ(
      Problems(Replace("\"topic\": \"t\"", "\"topic\": \"t\", \"format\": \"WIRE_FORMAT_ARROW\"")),
      "");
  // A malformed format is reported once, for the source as for destinations.
  EXPECT_EQ(Problems(Replace("\"slot\": \"s\"", "\"slot\": \"s\", \"format\": \"xml\"")),
            "source.options.format: unknown wire format \"xml\" (expected arrow, parquet, avro, "
            "proto or json)");
  EXPECT_THAT(Problems(Replace("\"topic\": \"t\"", "\"topic\": \"t\", \"format\": \"xml\"")),
              HasSubstr("destinations[0].options.format: unknown wire format \"xml\""));
}

TEST(FlowConfigTest, EnvDefaultWireFormatAppliesOnlyWithoutAFlowFormat) {
  const std::string no_format = Replace("\"wire_format\": \"arrow\",", "");
  auto flow = ParseFlowJson(no_format);
  ASSERT_TRUE(flow.ok());
  EXPECT_FALSE(flow->wire_format.has_value());
  ASSERT_TRUE(ValidateFlow(*flow, {.default_wire_format = WireFormat::kJson}).ok());
  EXPECT_EQ(flow->wire_format, WireFormat::kJson);
  EXPECT_EQ(flow->destinations[0].options.at("format"), "json");
  EXPECT_EQ(flow->source.options.at("format"), "json");

  // The flow's own format wins over the default.
  flow = ParseFlowJson(kValidFlow);
  ASSERT_TRUE(ValidateFlow(*flow, {.default_wire_format = WireFormat::kJson}).ok());
  EXPECT_EQ(flow->wire_format, WireFormat::kArrow);

  // Neither: formats stay empty (connector defaults apply later).
  flow = ParseFlowJson(no_format);
  ASSERT_TRUE(ValidateFlow(*flow).ok());
  EXPECT_FALSE(flow->wire_format.has_value());
  EXPECT_EQ(flow->destinations[0].options.count("format"), 0u);
}

TEST(FlowConfigTest, UnsupportedDestinationFormat) {
  FlowDefinition flow = *ParseFlowJson(kValidFlow);
  flow.destinations.resize(1);
  flow.destinations[0] = {"pipe", "snowpipe", {{"dsn", "u:p@acct/db"}}};
  EXPECT_THAT(std::string(ValidateFlow(flow).message()),
              HasSubstr("destinations[0].options.format: snowpipe does not support wire format "
                        "arrow (supported: parquet, avro, json)"));
  flow.wire_format = WireFormat::kParquet;
  EXPECT_TRUE(ValidateFlow(flow).ok());
  EXPECT_EQ(SupportedWireFormats("kafka").size(), 5u);
  EXPECT_TRUE(SupportedWireFormats("nope").empty());
}

TEST(FlowConfigTest, InvalidFlowIsNotModified) {
  FlowDefinition flow = *ParseFlowJson(Replace("\"slot\": \"s\", ", ""));
  ASSERT_FALSE(ValidateFlow(flow).ok());
  EXPECT_EQ(flow.destinations[0].options.count("format"), 0u);
}

TEST(PostgresSourceOptionsTest, Defaults) {
  Endpoint source{"pg", "postgres", {{"dsn", "host=db"}, {"slot", "s"}, {"publication", "p"}}};
  auto o = ParsePostgresSourceOptions(source);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->batch_size, 10000);
  EXPECT_EQ(o->batch_timeout, absl::Seconds(1));
  EXPECT_EQ(o->status_interval, absl::Seconds(10));
  EXPECT_EQ(o->heartbeat_interval, absl::ZeroDuration());
  EXPECT_EQ(o->reconnect_backoff_max, absl::Seconds(30));
  EXPECT_EQ(o->toast_fill, ToastFill::kNone);
  EXPECT_EQ(o->toast_cache_bytes, 64 << 20);
  EXPECT_EQ(o->max_batch_bytes, 16 << 20);
  EXPECT_EQ(o->max_inflight_bytes, 32 << 20);
  EXPECT_EQ(o->stream_buffer_bytes, 16 << 20);
  EXPECT_TRUE(o->create_slot && o->ensure_publication && o->validate_replication && o->binary &&
              o->messages && o->resolve_types && o->ensure_state);
  EXPECT_FALSE(o->emit_empty);
  EXPECT_FALSE(o->start_lsn.has_value());
  EXPECT_FALSE(o->format.has_value());
  EXPECT_EQ(o->state_schema, "ductstream");
  EXPECT_EQ(o->state_table, "source_state");
  EXPECT_EQ(o->mode, SourceMode::kCdc);
  EXPECT_EQ(o->spill_dir, "");
  // Every documented option is accepted, and the table is what the unknown-key check uses.
  EXPECT_GE(PostgresSourceOptionDocs().size(), 35u);
}

TEST(PostgresSourceOptionsTest, TypedValues) {
  Endpoint source{"pg",
                  "postgres",
                  {{"dsn", "host=db"},
                   {"slot", "s"},
                   {"publication", "p"},
                   {"tables", "public.a, public.b,,"},
                   {"publication_schemas", "s1,s2"},
                   {"create_slot", "NO"},
                   {"binary", "0"},
                   {"emit_empty", "Yes"},
                   {"start_lsn", "16/B374D848"},
                   {"batch_size", "250"},
                   {"batch_timeout", "1m30s"},
                   {"heartbeat_interval", "500ms"},
                   {"toast_fill", "Cache"},
                   {"toast_cache_bytes", "64KB"},
                   {"max_batch_bytes", "64KiB"},
                   {"max_inflight_bytes", "1GiB"},
                   {"stream_buffer_bytes", "1048576"},
                   {"format", "WIRE_FORMAT_AVRO"},
                   {"mode", "CDC"},
                   {"spill_dir", "/var/spill"}}};
  auto o = ParsePostgresSourceOptions(source);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->publication_tables, (std::vector<std::string>{"public.a", "public.b"}));
  EXPECT_EQ(o->publication_schemas, (std::vector<std::string>{"s1", "s2"}));
  EXPECT_FALSE(o->create_slot);
  EXPECT_FALSE(o->binary);
  EXPECT_TRUE(o->emit_empty);
  EXPECT_EQ(o->start_lsn->ToString(), "16/B374D848");
  EXPECT_EQ(o->batch_size, 250);
  EXPECT_EQ(o->batch_timeout, absl::Seconds(90));
  EXPECT_EQ(o->heartbeat_interval, absl::Milliseconds(500));
  EXPECT_EQ(o->toast_fill, ToastFill::kCache);
  EXPECT_EQ(o->toast_cache_bytes, 64000);
  EXPECT_EQ(o->max_batch_bytes, 65536);
  EXPECT_EQ(o->max_inflight_bytes, int64_t{1} << 30);
  EXPECT_EQ(o->stream_buffer_bytes, 1048576);
  EXPECT_EQ(o->format, WireFormat::kAvro);
  EXPECT_EQ(o->spill_dir, "/var/spill");

  // publication_tables wins over its alias.
  source.options["publication_tables"] = "x.y";
  EXPECT_EQ(ParsePostgresSourceOptions(source)->publication_tables,
            (std::vector<std::string>{"x.y"}));
}

TEST(PostgresSourceOptionsTest, EveryBadValueIsReported) {
  Endpoint source{"pg",
                  "postgres",
                  {{"dsn", "postgres://u:hunter2@h/db"},
                   {"publication", "p"},
                   {"create_slot", "maybe"},
                   {"start_lsn", "12345"},
                   {"batch_size", "0"},
                   {"status_interval", "0s"},
                   {"heartbeat_interval", "-1s"},
                   {"toast_fill", "always"},
                   {"max_batch_bytes", "32 parsecs"},
                   {"stream_buffer_bytes", "99999999999999999999"},
                   {"state_table", "a.b"},
                   {"mode", "stream"},
                   {"format", "xml"},
                   {"batchsize", "1"}}};
  auto o = ParsePostgresSourceOptions(source);
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(o.status().message());
  for (const char* expected : {
           "source.options.slot: required",
           "source.options.create_slot: \"maybe\" is not a boolean",
           "source.options.start_lsn: \"12345\" is not an LSN",
           "source.options.batch_size: \"0\" must be a positive integer",
           "source.options.status_interval: \"0s\" must be positive",
           "source.options.heartbeat_interval: \"-1s\" is not a duration",
           "source.options.toast_fill: \"always\" is not one of none, cache, source",
           "source.options.max_batch_bytes: \"32 parsecs\" is not a positive byte size",
           "source.options.stream_buffer_bytes: \"99999999999999999999\" is not a positive byte",
           "source.options.state_table: \"a.b\" must be a bare name",
           "source.options.mode: \"stream\" is not one of cdc, backfill",
           "source.options.format: unknown wire format \"xml\"",
           "source.options.batchsize: unknown option",
       }) {
    EXPECT_THAT(message, HasSubstr(expected));
  }
  EXPECT_THAT(message, Not(HasSubstr("hunter2")));
}

TEST(FileDestinationOptionsTest, ParsesAndChecksTheCompression) {
  Endpoint dest{"f", "file", {{"path", " /data "}, {"format", "parquet"}, {"compression", "zstd"}}};
  auto o = ParseFileDestinationOptions(dest, "destinations[3]");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->path, "/data");
  EXPECT_EQ(o->format, WireFormat::kParquet);
  EXPECT_EQ(o->compression, "zstd");

  dest.options = {{"compression", "brotli-9000"}, {"format", "parquet"}, {"mode", "x"}};
  const std::string message(
      ParseFileDestinationOptions(dest, "destinations[3]").status().message());
  EXPECT_THAT(message, HasSubstr("destinations[3].options.path: required"));
  EXPECT_THAT(message, HasSubstr("destinations[3].options.compression:"));
  EXPECT_THAT(message, HasSubstr("destinations[3].options.mode: unknown option"));

  // Default format when none is given; flow_id (injected by the runner) is accepted.
  dest.options = {{"path", "/p"}, {"flow_id", "f1"}};
  EXPECT_EQ(ParseFileDestinationOptions(dest, "destinations[0]")->format, WireFormat::kArrow);
}

TEST(OptionValueParsersTest, BoolsDurationsAndByteSizes) {
  for (const char* t : {"true", "TRUE", "1", "yes", "Yes", "on"})
    EXPECT_EQ(ParseBoolOption(t), true);
  for (const char* f : {"false", "False", "0", "no", "NO", "off"}) {
    EXPECT_EQ(ParseBoolOption(f), false);
  }
  EXPECT_EQ(ParseBoolOption("2"), std::nullopt);
  EXPECT_EQ(ParseBoolOption(""), std::nullopt);

  EXPECT_EQ(ParseDurationOption("500ms"), absl::Milliseconds(500));
  EXPECT_EQ(ParseDurationOption("1m30s"), absl::Seconds(90));
  EXPECT_EQ(ParseDurationOption("0"), absl::ZeroDuration());
  EXPECT_EQ(ParseDurationOption("10"), std::nullopt);  // Go requires a unit
  EXPECT_EQ(ParseDurationOption("-1s"), std::nullopt);
  EXPECT_EQ(ParseDurationOption("inf"), std::nullopt);

  EXPECT_EQ(ParseByteSizeOption("0"), 0);
  EXPECT_EQ(ParseByteSizeOption("1048576"), 1048576);
  EXPECT_EQ(ParseByteSizeOption("10B"), 10);
  EXPECT_EQ(ParseByteSizeOption("64KB"), 64000);
  EXPECT_EQ(ParseByteSizeOption("64kib"), 65536);
  EXPECT_EQ(ParseByteSizeOption("64 MiB"), 64 << 20);
  EXPECT_EQ(ParseByteSizeOption("2MB"), 2000000);
  EXPECT_EQ(ParseByteSizeOption("1GB"), 1000000000);
  EXPECT_EQ(ParseByteSizeOption("1GiB"), int64_t{1} << 30);
  EXPECT_EQ(ParseByteSizeOption("2TiB"), int64_t{2} << 40);
  EXPECT_EQ(ParseByteSizeOption("8388608TiB"), std::nullopt);  // overflows int64
  EXPECT_EQ(ParseByteSizeOption("-1"), std::nullopt);
  EXPECT_EQ(ParseByteSizeOption("1.5MB"), std::nullopt);
  EXPECT_EQ(ParseByteSizeOption("MB"), std::nullopt);
  EXPECT_EQ(ParseByteSizeOption("5 parsecs"), std::nullopt);
}

TEST(FlowConfigTest, FlowToJsonRoundTripsAndRedacts) {
  FlowDefinition flow = *ParseFlowJson(kValidFlow);
  flow.destinations[0].options["sasl_password"] = "pw";
  const std::string redacted = FlowToJson(flow);
  EXPECT_THAT(redacted, AllOf(Not(HasSubstr("s3cret")), Not(HasSubstr("\"pw\"")),
                              HasSubstr("postgres://u:*****@db:5432/app")));
  auto back = ParseFlowJson(FlowToJson(flow, /*redact_secrets=*/false));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->source.options, flow.source.options);
  EXPECT_EQ(back->destinations[0].options, flow.destinations[0].options);
  EXPECT_EQ(back->wire_format, flow.wire_format);
  EXPECT_EQ(back->name, flow.name);
}

}  // namespace
}  // namespace ductstream::flow
