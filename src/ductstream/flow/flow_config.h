#pragma once

// Flow definitions (SPEC §4): the JSON model shared by the example files, the worker and the
// control plane, and the up-front validation that the Go implementation lacked (SPEC §16.17):
// known connectors, required options, supported wire formats, the wire-format "enforce" rule
// (§6.2) and typed PostgreSQL source options (§5.1, §5.9).
//
// Every error is InvalidArgument and names the JSON path of each problem, all problems at once:
//   "source.options.slot: required; destinations[0].type: unknown connector \"kafak\" (...)"
// DSNs never appear in error text unredacted.

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ductstream/base/lsn.h"
#include "ductstream/codec/codec.h"

namespace ductstream::flow {

/// A source or destination: connector type plus its string options (JSON numbers and booleans
/// are kept in their JSON text, e.g. 500 → "500", true → "true").
struct Endpoint {
  std::string name;
  /// Canonical lowercase connector type ("postgres", "kafka", ...).
  std::string type;
  std::map<std::string, std::string> options;
};

struct FlowDefinition {
  /// Empty when the server should generate one.
  std::string id;
  std::string name;
  /// The flow's wire format; overrides connector defaults (SPEC §6.2).
  std::optional<codec::WireFormat> wire_format;
  /// Max destinations written concurrently per batch.
  int parallelism = 1;
  Endpoint source;
  std::vector<Endpoint> destinations;
};

/// Every connector type the flow model knows, in SPEC order: postgres, snowflake, s3, kafka, http,
/// grpc, proto, pgstream, snowpipe, parquet, duckdb, bufstream, clickhouse, file.
std::span<const absl::string_view> KnownConnectorTypes();

/// Canonical type for "kafka", "KAFKA", "ENDPOINT_TYPE_KAFKA" or the proto enum number as text
/// ("4"); InvalidArgument listing the known types otherwise.
absl::StatusOr<std::string> ParseConnectorType(absl::string_view text);

/// Wire format from "parquet", "WIRE_FORMAT_PARQUET" (any case) or the proto enum number; empty,
/// "WIRE_FORMAT_UNSPECIFIED" and "0" mean "no format" (nullopt).
absl::StatusOr<std::optional<codec::WireFormat>> ParseFlowWireFormat(absl::string_view text);

/// Parses a flow object: {"id","name","wire_format","parallelism","source","destinations"}.
/// Also accepts the API's spellings: a {"flow": {...}, "start_immediately": ...} wrapper,
/// "wireFormat", proto enum names or numbers, an ignored "state", and the persisted endpoint keys
/// "Name"/"Type"/"Options". Unknown fields are errors (they are usually typos). Checks structure
/// and connector types only; ValidateFlow checks the rest. JSON syntax errors give line and column.
absl::StatusOr<FlowDefinition> ParseFlowJson(absl::string_view json);
/// ParseFlowJson on a file's contents; errors are prefixed with the path.
absl::StatusOr<FlowDefinition> LoadFlowFile(const std::string& path);

/// Serialises a flow in the example files' form (lowercase names). With `redact_secrets`, DSN
/// options are passed through base::RedactDsn and options named like passwords, secrets or tokens
/// are masked, for logs and API responses.
std::string FlowToJson(const FlowDefinition& flow, bool redact_secrets = true);

struct ValidationOptions {
  /// DUCTSTREAM_WIRE_FORMAT: the format of flows that have none.
  std::optional<codec::WireFormat> default_wire_format;
  /// DUCTSTREAM_WIRE_ENFORCE (default true): a connector `format` that differs from the flow's is
  /// an error; when false it is left alone.
  bool enforce = true;
};

/// Checks a parsed (or API-built) flow and resolves its formats (SPEC §6.2): fills
/// `flow.wire_format` from the default, and every empty source/destination `format` option from
/// the flow format. Checks: parallelism ≥ 1; the source is postgres with valid typed options;
/// at least one destination; destination names non-empty and unique; known connector types;
/// required options per connector; each destination's format is one the connector supports; the
/// enforce rule. `flow` is modified only when it is valid.
absl::Status ValidateFlow(FlowDefinition& flow, const ValidationOptions& options = {});

/// Supported wire formats of a destination connector (all five for most; snowpipe takes only
/// parquet, avro and json). Empty for an unknown type.
std::vector<codec::WireFormat> SupportedWireFormats(absl::string_view connector_type);

enum class SourceMode { kCdc, kBackfill };
/// How values of unchanged TOASTed columns are filled in: not at all (reported as unchanged),
/// from an in-memory cache of recent values, or by querying the source table.
enum class ToastFill { kNone, kCache, kSource };
enum class SyncPublicationMode { kAdd, kSync };
/// The initial copy of a cdc flow (docs/connectors.md, "Snapshots").
enum class SnapshotMode { kInitial, kNever, kOnly };

/// Typed options of the postgres source (SPEC §5.1 CDC, §5.9 backfill). Byte sizes are in bytes.
struct PostgresSourceOptions {
  std::string dsn;
  std::string slot;
  std::string publication;
  /// `publication_tables`, else its alias `tables`: "schema.table" entries.
  std::vector<std::string> publication_tables;
  std::vector<std::string> publication_schemas;
  bool create_slot = true;
  bool ensure_publication = true;
  bool validate_replication = true;
  bool sync_publication = false;
  SyncPublicationMode sync_publication_mode = SyncPublicationMode::kAdd;
  /// Explicit start position; overrides the stored checkpoint.
  std::optional<Lsn> start_lsn;
  int64_t batch_size = 10000;
  absl::Duration batch_timeout = absl::Seconds(1);
  absl::Duration status_interval = absl::Seconds(10);
  /// Zero: no heartbeats.
  absl::Duration heartbeat_interval = absl::ZeroDuration();
  ToastFill toast_fill = ToastFill::kNone;
  int64_t toast_cache_bytes = int64_t{64} << 20;
  // The three byte budgets below bound the worker's data memory whatever the transaction size
  // (DESIGN.md §2 invariant 4); docs/benchmarks.md measures them against one 5M-row transaction.
  /// Arrow memory of one batch; a larger transaction is cut into several batches.
  int64_t max_batch_bytes = int64_t{16} << 20;
  /// Batches built and queued for the writer (the batch being written comes on top).
  int64_t max_inflight_bytes = int64_t{32} << 20;
  /// Memory for streamed (in-progress) transactions before they spill to disk.
  int64_t stream_buffer_bytes = int64_t{16} << 20;
  /// Empty: $TMPDIR, else /tmp (resolved by the source, not here).
  std::string spill_dir;
  /// pgoutput `binary 'true'`.
  bool binary = true;
  /// pgoutput `messages 'true'` (logical decoding messages, used for DDL capture).
  bool messages = true;
  absl::Duration reconnect_backoff_max = absl::Seconds(30);
  std::optional<codec::WireFormat> format;
  bool emit_empty = false;
  bool resolve_types = true;
  bool ensure_state = true;
  std::string state_schema = "ductstream";
  std::string state_table = "source_state";
  std::string flow_id;
  SourceMode mode = SourceMode::kCdc;

  /// initial: copy the published tables when the slot is created (resuming an unfinished copy);
  /// never: stream only; only: copy and exit, without a slot.
  SnapshotMode snapshot = SnapshotMode::kInitial;
  /// Page-range chunks of about this size (the unit of parallelism and of resumption).
  int64_t snapshot_chunk_bytes = int64_t{32} << 20;

  // Snapshots (initial, only) and backfill (mode=backfill).
  std::vector<std::string> schemas;
  int snapshot_workers = 1;
  std::string partition_column;
  int partition_count = 1;
  bool snapshot_consistent = true;
  /// postgres | file | none.
  std::string snapshot_state_backend = "postgres";
  std::string snapshot_state_schema = "ductstream";
  std::string snapshot_state_table = "snapshot_state";
  /// Empty: the source dsn.
  std::string snapshot_state_dsn;
  std::string snapshot_state_path;
};

/// One documented option; the same table drives parsing, the unknown-key check and docs.
struct OptionDoc {
  absl::string_view name;
  absl::string_view default_value;
  absl::string_view description;
};
std::span<const OptionDoc> PostgresSourceOptionDocs();

/// Parses and checks `source.options`; errors name "source.options.<key>". slot and publication are
/// required in cdc mode only.
absl::StatusOr<PostgresSourceOptions> ParsePostgresSourceOptions(const Endpoint& source);

/// Options of the `file` destination: one file per batch under `path`.
struct FileDestinationOptions {
  std::string path;
  /// `format`, defaulting to arrow (ValidateFlow fills it from the flow format first).
  codec::WireFormat format = codec::WireFormat::kArrow;
  /// Passed to the encoder (codec::EncoderOptions); checked here.
  std::string compression;
};
/// `field` names the endpoint in errors, e.g. "destinations[0]".
absl::StatusOr<FileDestinationOptions> ParseFileDestinationOptions(const Endpoint& dest,
                                                                   absl::string_view field);

/// Value parsers used for options, exposed for other connectors' option tables.
/// true/false, yes/no, 1/0, on/off (any case).
std::optional<bool> ParseBoolOption(absl::string_view text);
/// Go duration syntax ("500ms", "1m30s", "0"); negative durations are rejected.
std::optional<absl::Duration> ParseDurationOption(absl::string_view text);
/// "1048576", "64KB" (×1000), "64KiB" (×1024), MB/MiB, GB/GiB, TB/TiB, optional "B" suffix, any
/// case, optional space before the unit. Negative or overflowing sizes are rejected.
std::optional<int64_t> ParseByteSizeOption(absl::string_view text);

}  // namespace ductstream::flow
