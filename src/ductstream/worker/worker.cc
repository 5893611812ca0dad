#include "ductstream/worker/worker.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ductstream/base/logging.h"
#include "ductstream/base/status.h"
#include "ductstream/destination/file_destination.h"

namespace ductstream::worker {

absl::StatusOr<std::vector<std::unique_ptr<runner::Destination>>> MakeDestinations(
    const flow::FlowDefinition& flow) {
  std::vector<std::unique_ptr<runner::Destination>> out;
  for (size_t i = 0; i < flow.destinations.size(); ++i) {
    const flow::Endpoint& d = flow.destinations[i];
    const std::string field = absl::StrCat("destinations[", i, "]");
    if (d.type == "file") {
      DS_ASSIGN_OR_RETURN(flow::FileDestinationOptions o,
                          flow::ParseFileDestinationOptions(d, field));
      destination::FileDestinationConfig config;
      config.name = d.name;
      config.path = o.path;
      config.format = o.format;
      config.encoder.compression = o.compression;
      DS_ASSIGN_OR_RETURN(auto dest, destination::MakeFileDestination(std::move(config)));
      out.push_back(std::move(dest));
      continue;
    }
    return absl::UnimplementedError(
        absl::StrCat(field, ".type: connector \"", d.type,
                     "\" is not available in this build yet (available: file)"));
  }
  return out;
}

absl::StatusOr<PreparedFlow> PrepareFlow(const WorkerFlags& flags, const store::EnvLookup& env) {
  if (!flags.flow_id.empty() && flags.flow_file.empty()) {
    return absl::UnimplementedError(
        "-flow-id needs the control plane, which this build does not include yet; run a flow "
        "from its definition file with -flow FILE");
  }
  if (flags.flow_file.empty()) {
    return absl::InvalidArgumentError("-flow is required: the path of a flow definition (JSON)");
  }
  if (absl::AsciiStrToLower(flags.mode) != "cdc") {
    return absl::UnimplementedError(
        absl::StrCat("-mode ", flags.mode,
                     ": only cdc is available in this build (backfill comes with the "
                     "snapshot feature)"));
  }
  PreparedFlow prepared;
  DS_ASSIGN_OR_RETURN(prepared.definition, flow::LoadFlowFile(flags.flow_file));

  flow::ValidationOptions validation;
  if (auto format = env("DUCTSTREAM_WIRE_FORMAT"); format.has_value() && !format->empty()) {
    auto parsed = codec::ParseWireFormat(*format);
    if (!parsed.ok()) return base::Annotate(parsed.status(), "DUCTSTREAM_WIRE_FORMAT");
    validation.default_wire_format = *parsed;
  }
  if (auto enforce = env("DUCTSTREAM_WIRE_ENFORCE"); enforce.has_value()) {
    // SPEC §2.4: anything unparsable gives the default (true).
    validation.enforce = flow::ParseBoolOption(*enforce).value_or(true);
  }
  DS_RETURN_IF_ERROR(flow::ValidateFlow(prepared.definition, validation));
  DS_ASSIGN_OR_RETURN(prepared.source,
                      flow::ParsePostgresSourceOptions(prepared.definition.source));
  const flow::PostgresSourceOptions& src = prepared.source;
  // Options that parse but whose behaviour this build does not have yet: refuse them rather than
  // run with a different meaning than the user asked for.
  if (src.toast_fill != flow::ToastFill::kNone) {
    return absl::UnimplementedError(
        "source.options.toast_fill: only \"none\" is available in this build (unchanged TOAST "
        "values arrive as null and are listed in __unchanged)");
  }
  if (src.sync_publication) {
    return absl::UnimplementedError(
        "source.options.sync_publication: not available in this build; manage the publication "
        "with ALTER PUBLICATION");
  }

  runner::PipelineOptions& p = prepared.pipeline;
  p.flow =
      FlowId(!prepared.definition.id.empty() ? prepared.definition.id : prepared.definition.name);
  if (p.flow.value().empty()) {
    return absl::InvalidArgumentError(
        "id: required (or name): the flow's checkpoint is stored under it");
  }
  p.max_empty_reads = flags.max_empty_reads;
  p.max_inflight_bytes = src.max_inflight_bytes;
  runner::SourceSettings& s = p.source;
  s.dsn = src.dsn;
  s.slot = src.slot;
  s.publication = src.publication;
  s.publication_tables = src.publication_tables;
  s.publication_schemas = src.publication_schemas;
  s.create_slot = src.create_slot;
  s.ensure_publication = src.ensure_publication;
  s.start_lsn = src.start_lsn;
  if (!flags.start_lsn.empty()) {
    auto lsn = Lsn::Parse(flags.start_lsn);
    if (!lsn.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "-start-lsn: \"", flags.start_lsn, "\" is not an LSN (expected X/Y, e.g. 0/16B3748)"));
    }
    s.start_lsn = *lsn;
  }
  s.binary = src.binary;
  s.messages = src.messages;
  s.batch_rows = src.batch_size;
  s.batch_timeout = src.batch_timeout;
  s.max_batch_bytes = src.max_batch_bytes;
  s.stream_buffer_bytes = src.stream_buffer_bytes;
  s.spill_dir = src.spill_dir;
  s.status_interval = src.status_interval;
  s.heartbeat_interval = src.heartbeat_interval;
  s.reconnect_backoff_max = src.reconnect_backoff_max;

  DS_ASSIGN_OR_RETURN(prepared.destinations, MakeDestinations(prepared.definition));
  return prepared;
}

absl::Status RunWorker(const WorkerFlags& flags, const std::atomic<bool>& stop) {
  auto log = base::GetLogger("worker");
  DS_ASSIGN_OR_RETURN(PreparedFlow prepared, PrepareFlow(flags));
  DS_ASSIGN_OR_RETURN(store::OpenedCheckpointStore checkpoints,
                      store::OpenCheckpointStoreFromEnv(store::DefaultCheckpointBackend::kSqlite));
  log->info("flow {} ({} destination{}), checkpoints: {}", prepared.pipeline.flow.value(),
            prepared.destinations.size(), prepared.destinations.size() == 1 ? "" : "s",
            checkpoints.description);
  runner::Pipeline pipeline(std::move(prepared.pipeline), std::move(prepared.destinations),
                            checkpoints.store.get());
  absl::Status status = pipeline.Run(stop);
  const auto& stats = pipeline.stats();
  log->info("flow {}: {} rows in {} batches written, checkpoint {}, {} reconnects",
            prepared.definition.name, stats.rows_written.load(), stats.batches_written.load(),
            Lsn(stats.persisted_lsn.load()).ToString(), stats.reconnects.load());
  return status;
}

}  // namespace ductstream::worker
