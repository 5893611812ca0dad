#include "ductstream/worker/worker.h"

#include <unistd.h>

#include <functional>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "ductstream/base/logging.h"
#include "ductstream/base/status.h"
#include "ductstream/control/control_store.h"
#include "ductstream/destination/file_destination.h"
#include "ductstream/destination/grpc_destination.h"
#include "ductstream/destination/http_destination.h"
#include "ductstream/destination/kafka_destination.h"
#include "ductstream/destination/null_destination.h"
#include "ductstream/destination/pgstream_destination.h"
#include "ductstream/destination/s3_destination.h"
#include "ductstream/postgres/connection.h"

namespace ductstream::worker {

namespace {

using DestinationPtr = std::unique_ptr<runner::Destination>;

// One entry per connector this build has: its types, how its options are checked (no I/O) and
// how it is built. MakeDestinations and CheckDestinations both dispatch through this table.
struct Connector {
  std::vector<absl::string_view> types;
  std::function<absl::Status(const flow::Endpoint& d, const std::string& field)> check;
  std::function<absl::StatusOr<DestinationPtr>(const flow::FlowDefinition& flow,
                                               const flow::Endpoint& d, const std::string& field)>
      make;
};

const std::vector<Connector>& Connectors() {
  static const auto* connectors = new std::vector<Connector>{
      {{"file"},
       [](const flow::Endpoint& d, const std::string& field) {
         return flow::ParseFileDestinationOptions(d, field).status();
       },
       [](const flow::FlowDefinition&, const flow::Endpoint& d,
          const std::string& field) -> absl::StatusOr<DestinationPtr> {
         DS_ASSIGN_OR_RETURN(flow::FileDestinationOptions o,
                             flow::ParseFileDestinationOptions(d, field));
         destination::FileDestinationConfig config;
         config.name = d.name;
         config.path = o.path;
         config.format = o.format;
         config.encoder.compression = o.compression;
         return destination::MakeFileDestination(std::move(config));
       }},
      {{"kafka", "bufstream"},
       [](const flow::Endpoint& d, const std::string& field) {
         return destination::ParseKafkaOptions(d, field).status();
       },
       [](const flow::FlowDefinition&, const flow::Endpoint& d,
          const std::string& field) -> absl::StatusOr<DestinationPtr> {
         destination::KafkaDestinationConfig config;
         config.name = d.name;
         config.type = d.type;
         DS_ASSIGN_OR_RETURN(config.options, destination::ParseKafkaOptions(d, field));
         return destination::MakeKafkaDestination(std::move(config));
       }},
      {{"s3"},
       [](const flow::Endpoint& d, const std::string& field) {
         return destination::ParseS3DestinationOptions(d, field).status();
       },
       [](const flow::FlowDefinition&, const flow::Endpoint& d,
          const std::string& field) -> absl::StatusOr<DestinationPtr> {
         destination::S3DestinationConfig config;
         config.name = d.name;
         DS_ASSIGN_OR_RETURN(config.options, destination::ParseS3DestinationOptions(d, field));
         return destination::MakeS3Destination(std::move(config));
       }},
      {{"http"},
       [](const flow::Endpoint& d, const std::string& field) {
         return destination::ParseHttpOptions(d, field).status();
       },
       [](const flow::FlowDefinition&, const flow::Endpoint& d,
          const std::string& field) -> absl::StatusOr<DestinationPtr> {
         destination::HttpDestinationConfig config;
         config.name = d.name;
         DS_ASSIGN_OR_RETURN(config.options, destination::ParseHttpOptions(d, field));
         return destination::MakeHttpDestination(std::move(config));
       }},
      {{"grpc"},
       [](const flow::Endpoint& d, const std::string& field) {
         return destination::ParseGrpcOptions(d, field).status();
       },
       [](const flow::FlowDefinition&, const flow::Endpoint& d,
          const std::string& field) -> absl::StatusOr<DestinationPtr> {
         destination::GrpcDestinationConfig config;
         config.name = d.name;
         if (auto it = d.options.find("flow_id"); it != d.options.end()) {
           config.flow_id = it->second;
         }
         DS_ASSIGN_OR_RETURN(config.options, destination::ParseGrpcOptions(d, field));
         return destination::MakeGrpcDestination(std::move(config));
       }},
      {{"pgstream"},
       [](const flow::Endpoint& d, const std::string& field) {
         return destination::ParsePgstreamOptions(d, field).status();
       },
       [](const flow::FlowDefinition& flow, const flow::Endpoint& d,
          const std::string& field) -> absl::StatusOr<DestinationPtr> {
         destination::PgstreamDestinationConfig config;
         config.name = d.name;
         config.flow_id = flow.id.empty() ? flow.name : flow.id;
         DS_ASSIGN_OR_RETURN(config.options, destination::ParsePgstreamOptions(d, field));
         return destination::MakePgstreamDestination(std::move(config));
       }},
      {{"null"},
       [](const flow::Endpoint& d, const std::string& field) {
         return destination::CheckNullDestinationOptions(d, field);
       },
       [](const flow::FlowDefinition&, const flow::Endpoint& d,
          const std::string& field) -> absl::StatusOr<DestinationPtr> {
         DS_RETURN_IF_ERROR(destination::CheckNullDestinationOptions(d, field));
         return destination::MakeNullDestination(destination::NullDestinationConfig{d.name});
       }},
  };
  return *connectors;
}

// The connector for `type`, or Unimplemented naming the field and what this build has.
absl::StatusOr<const Connector*> FindConnector(absl::string_view type, const std::string& field) {
  std::vector<absl::string_view> available;
  for (const Connector& c : Connectors()) {
    for (absl::string_view t : c.types) {
      if (t == type) return &c;
      available.push_back(t);
    }
  }
  return absl::UnimplementedError(absl::StrCat(
      field, ".type: connector \"", type,
      "\" is not available in this build yet (available: ", absl::StrJoin(available, ", "), ")"));
}

}  // namespace

absl::StatusOr<std::vector<std::unique_ptr<runner::Destination>>> MakeDestinations(
    const flow::FlowDefinition& flow) {
  std::vector<DestinationPtr> out;
  for (size_t i = 0; i < flow.destinations.size(); ++i) {
    const flow::Endpoint& d = flow.destinations[i];
    const std::string field = absl::StrCat("destinations[", i, "]");
    DS_ASSIGN_OR_RETURN(const Connector* connector, FindConnector(d.type, field));
    DS_ASSIGN_OR_RETURN(DestinationPtr dest, connector->make(flow, d, field));
    out.push_back(std::move(dest));
  }
  return out;
}

absl::Status CheckDestinations(const flow::FlowDefinition& flow) {
  std::vector<std::string> problems;
  bool unavailable = false;
  for (size_t i = 0; i < flow.destinations.size(); ++i) {
    const flow::Endpoint& d = flow.destinations[i];
    const std::string field = absl::StrCat("destinations[", i, "]");
    auto connector = FindConnector(d.type, field);
    absl::Status s = connector.ok() ? (*connector)->check(d, field) : connector.status();
    unavailable = unavailable || !connector.ok();
    if (!s.ok()) problems.emplace_back(s.message());
  }
  if (problems.empty()) return absl::OkStatus();
  const std::string message = absl::StrJoin(problems, "; ");
  return unavailable && problems.size() == 1 ? absl::UnimplementedError(message)
                                             : absl::InvalidArgumentError(message);
}

absl::StatusOr<PreparedFlow> PrepareFlow(const WorkerFlags& flags, const store::EnvLookup& env) {
  if (!flags.flow_id.empty() && !flags.flow_file.empty()) {
    return absl::InvalidArgumentError(
        "-flow and -flow-id: give one (a definition file, or a flow of the control plane)");
  }
  if (flags.flow_file.empty()) {
    return absl::InvalidArgumentError("-flow is required: the path of a flow definition (JSON)");
  }
  DS_ASSIGN_OR_RETURN(flow::FlowDefinition definition, flow::LoadFlowFile(flags.flow_file));
  return PrepareDefinition(std::move(definition), flags, env);
}

absl::StatusOr<PreparedFlow> PrepareDefinition(flow::FlowDefinition definition,
                                               const WorkerFlags& flags,
                                               const store::EnvLookup& env) {
  const std::string mode = absl::AsciiStrToLower(flags.mode);
  if (mode != "cdc" && mode != "backfill") {
    return absl::InvalidArgumentError(
        absl::StrCat("-mode ", flags.mode, ": expected cdc or backfill"));
  }
  // SPEC.md §2.2: the flags override the flow's source options.
  auto& options = definition.source.options;
  if (mode == "backfill") {
    options["mode"] = "backfill";
    if (!flags.tables.empty()) {
      options["publication_tables"] = flags.tables;
      options.erase("tables");
    }
    if (!flags.schemas.empty()) options["schemas"] = flags.schemas;
  }
  if (flags.snapshot_workers > 0)
    options["snapshot_workers"] = absl::StrCat(flags.snapshot_workers);
  if (!flags.partition_column.empty()) options["partition_column"] = flags.partition_column;
  if (flags.partition_count > 0) options["partition_count"] = absl::StrCat(flags.partition_count);
  PreparedFlow prepared;
  prepared.definition = std::move(definition);

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
  switch (src.toast_fill) {
    case flow::ToastFill::kNone:
      s.toast_fill = runner::ToastFill::kNone;
      break;
    case flow::ToastFill::kCache:
      s.toast_fill = runner::ToastFill::kCache;
      break;
    case flow::ToastFill::kSource:
      s.toast_fill = runner::ToastFill::kSource;
      break;
  }
  s.toast_cache_bytes = src.toast_cache_bytes;
  if (src.snapshot_state_backend == "postgres") {
    s.excluded_tables.push_back(
        absl::StrCat(src.snapshot_state_schema, ".", src.snapshot_state_table));
  }

  const bool backfill = src.mode == flow::SourceMode::kBackfill;
  if (backfill || src.snapshot != flow::SnapshotMode::kNever) {
    snapshot::SnapshotConfig& c = prepared.snapshot.emplace();
    c.flow = p.flow;
    c.kind = backfill                                    ? snapshot::SnapshotKind::kBackfill
             : src.snapshot == flow::SnapshotMode::kOnly ? snapshot::SnapshotKind::kOnly
                                                         : snapshot::SnapshotKind::kInitial;
    c.dsn = src.dsn;
    c.slot = src.slot;
    c.create_slot = src.create_slot;
    c.publication = src.publication;
    c.publication_tables = src.publication_tables;
    c.publication_schemas = src.publication_schemas;
    c.ensure_publication = src.ensure_publication;
    if (backfill) {
      c.tables = src.publication_tables;
      c.schemas = src.schemas;
    }
    c.workers = src.snapshot_workers;
    c.partition_column = src.partition_column;
    c.partition_count = src.partition_count;
    c.consistent = src.snapshot_consistent;
    c.batch_rows = src.batch_size;
    c.max_batch_bytes = src.max_batch_bytes;
    c.max_inflight_bytes = src.max_inflight_bytes;
    c.chunk_bytes = src.snapshot_chunk_bytes;
    c.excluded_tables = s.excluded_tables;
    if (c.kind == snapshot::SnapshotKind::kOnly && c.publication.empty()) {
      return absl::InvalidArgumentError(
          "source.options.publication: required with snapshot=only (its tables are copied)");
    }
  }

  DS_ASSIGN_OR_RETURN(prepared.destinations, MakeDestinations(prepared.definition));
  return prepared;
}

namespace {

absl::Status RunPrepared(PreparedFlow prepared, store::CheckpointStore* checkpoints,
                         const std::string& checkpoints_description,
                         const std::atomic<bool>& stop) {
  auto log = base::GetLogger("worker");
  log->info("flow {} ({} destination{}), checkpoints: {}", prepared.pipeline.flow.value(),
            prepared.destinations.size(), prepared.destinations.size() == 1 ? "" : "s",
            checkpoints_description);
  const std::string flow = prepared.pipeline.flow.value();
  if (prepared.snapshot.has_value()) {
    const snapshot::SnapshotConfig& config = *prepared.snapshot;
    DS_ASSIGN_OR_RETURN(auto state, OpenSnapshotState(prepared.source));
    std::vector<runner::Destination*> destinations;
    for (auto& d : prepared.destinations) destinations.push_back(d.get());
    absl::StatusOr<snapshot::SnapshotOutcome> outcome =
        snapshot::RunSnapshot(config, destinations, *state, stop);
    const bool exits = config.kind != snapshot::SnapshotKind::kInitial;
    const bool stopped = outcome.ok() && outcome->ran && !outcome->completed;
    if (!outcome.ok() || exits || stopped) {  // the pipeline will not run: close them here
      for (auto& d : prepared.destinations) {
        if (absl::Status closed = d->Close(); !closed.ok()) {
          log->warn("flow {}: closing destination {}: {}", flow, d->name(), closed.ToString());
        }
      }
    }
    DS_RETURN_IF_ERROR(outcome.status());
    if (exits || stopped) {
      log->info("flow {}: {} ({} rows copied)", flow,
                outcome->completed ? "snapshot complete" : "stopped during the snapshot",
                outcome->rows);
      return absl::OkStatus();
    }
  }
  runner::Pipeline pipeline(std::move(prepared.pipeline), std::move(prepared.destinations),
                            checkpoints);
  absl::Status status = pipeline.Run(stop);
  const auto& stats = pipeline.stats();
  log->info(
      "flow {}: {} rows in {} batches written, checkpoint {}, {} reconnects, {:.2f} s waiting "
      "for the destinations, {} batches staged before their commit ({} not: staging busy)",
      flow, stats.rows_written.load(), stats.batches_written.load(),
      Lsn(stats.persisted_lsn.load()).ToString(), stats.reconnects.load(),
      static_cast<double>(stats.reader_blocked_ns.load()) / 1e9, stats.staged_batches.load(),
      stats.staging_skipped.load());
  return status;
}

constexpr absl::string_view kLeasePayload = "type.ductstream.dev/lease";

absl::Status LeaseOutcome(absl::Status s) {
  s.SetPayload(kLeasePayload, absl::Cord("1"));
  return s;
}

std::string LeaseHolderName() {
  char host[256] = {};
  (void)::gethostname(host, sizeof(host) - 1);
  return absl::StrCat(host, ":", ::getpid(), ":", absl::ToUnixMicros(absl::Now()) % 1000000);
}

// Only the lease holder may replicate the flow, so a walsender still streaming its slot belongs
// to a worker that lost the lease (frozen, partitioned, or not yet noticed): end it rather than
// wait for its TCP timeout.
absl::Status TakeOverSlot(const flow::PostgresSourceOptions& source) {
  auto log = base::GetLogger("worker");
  DS_ASSIGN_OR_RETURN(auto conn, postgres::Connection::Connect(source.dsn));
  const std::vector<std::optional<std::string>> params = {source.slot};
  for (int attempt = 0; attempt < 50; ++attempt) {
    DS_ASSIGN_OR_RETURN(
        postgres::Result r,
        conn->ExecParams("SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1 AND "
                         "active_pid IS NOT NULL",
                         params));
    if (postgres::RowCount(r) == 0) return absl::OkStatus();
    const std::string pid(postgres::GetValue(r, 0, 0).value_or(""));
    if (attempt == 0) {
      log->warn("slot {} is streaming to PID {}, a previous holder of this flow; ending it",
                source.slot, pid);
    }
    const std::vector<std::optional<std::string>> pid_param = {pid};
    (void)conn->ExecParams("SELECT pg_terminate_backend($1::int)", pid_param);
    absl::SleepFor(absl::Milliseconds(200));
  }
  return absl::UnavailableError(
      absl::StrCat("slot ", source.slot, " is still in use by another process after 10 s"));
}

absl::Duration LeaseTtl(const store::EnvLookup& env) {
  absl::Duration ttl = absl::Seconds(15);
  if (auto text = env("DUCTSTREAM_WORKER_LEASE_TTL"); text.has_value() && !text->empty()) {
    absl::Duration parsed;
    if (absl::ParseDuration(*text, &parsed) && parsed >= absl::Milliseconds(300)) ttl = parsed;
  }
  return ttl;
}

// -flow-id: the flow comes from the control store, runs under its lease, and stops when the
// lease ends (paused, stopped, deleted, or taken over).
absl::Status RunControlledFlow(const WorkerFlags& flags, const std::atomic<bool>& stop,
                               const store::EnvLookup& env) {
  auto log = base::GetLogger("worker");
  DS_ASSIGN_OR_RETURN(control::StateDatabase where, control::SelectStateDatabase(env));
  DS_ASSIGN_OR_RETURN(auto control_store, control::OpenControlStore(where));
  auto record = control_store->GetFlow(flags.flow_id);
  if (absl::IsNotFound(record.status())) {
    return absl::InvalidArgumentError(absl::StrCat("-flow-id: flow \"", flags.flow_id,
                                                   "\" does not exist in the control store ",
                                                   where.description));
  }
  DS_RETURN_IF_ERROR(record.status());
  if (record->state != control::FlowState::kRunning) {
    return LeaseOutcome(absl::FailedPreconditionError(
        absl::StrCat("flow \"", flags.flow_id, "\" is ", control::FlowStateName(record->state),
                     ", not running: start or resume it first (ductstream-admin flow start|resume ",
                     flags.flow_id, ")")));
  }
  DS_ASSIGN_OR_RETURN(PreparedFlow prepared, PrepareDefinition(record->definition, flags, env));
  prepared.pipeline.flow = FlowId(flags.flow_id);

  const absl::Duration ttl = LeaseTtl(env);
  auto acquired =
      control_store->AcquireLease(flags.flow_id, record->generation, LeaseHolderName(), ttl);
  if (!acquired.ok()) {
    return absl::IsFailedPrecondition(acquired.status()) || absl::IsUnavailable(acquired.status())
               ? LeaseOutcome(acquired.status())
               : acquired.status();
  }
  const control::Lease lease = *acquired;
  log->info("flow {}: lease {} (token {}) for generation {}", flags.flow_id, lease.holder,
            lease.token, lease.generation);
  absl::Status run = [&]() -> absl::Status {
    DS_ASSIGN_OR_RETURN(auto checkpoints, control::OpenCheckpointStore(where));
    DS_RETURN_IF_ERROR(checkpoints->Fence(FlowId(flags.flow_id), lease.token));
    DS_RETURN_IF_ERROR(TakeOverSlot(prepared.source));
    prepared.pipeline.generation = lease.token;

    // The lease keeper renews every ttl/3 and stops the pipeline when the lease ends, or when it
    // could not be renewed for a whole ttl (another worker may hold the flow by then).
    std::atomic<bool> stop_all{false};
    std::atomic<bool> done{false};
    absl::Status lost;
    absl::Mutex lost_mu;
    std::thread keeper([&] {
      absl::Time last_renewed = absl::Now();
      while (!done.load()) {
        for (absl::Time next = absl::Now() + ttl / 3; absl::Now() < next && !done.load();) {
          if (stop.load()) stop_all.store(true);
          absl::SleepFor(absl::Milliseconds(50));
        }
        if (done.load()) break;
        absl::Status renewed = control_store->RenewLease(flags.flow_id, lease, ttl);
        if (renewed.ok()) {
          last_renewed = absl::Now();
          continue;
        }
        if (absl::IsAborted(renewed) || absl::Now() - last_renewed > ttl) {
          log->warn("flow {}: {}; stopping", flags.flow_id, renewed.ToString());
          absl::MutexLock l(&lost_mu);
          lost = LeaseOutcome(absl::AbortedError(renewed.message()));
          stop_all.store(true);
          break;
        }
        log->warn("flow {}: renewing the lease failed ({}); retrying", flags.flow_id,
                  renewed.ToString());
      }
    });
    absl::Status status =
        RunPrepared(std::move(prepared), checkpoints.get(), where.description, stop_all);
    done.store(true);
    keeper.join();
    absl::MutexLock l(&lost_mu);
    if (!lost.ok()) return lost;
    return status;
  }();
  if (absl::Status released = control_store->ReleaseLease(flags.flow_id, lease); !released.ok()) {
    log->warn("flow {}: releasing the lease: {}", flags.flow_id, released.ToString());
  }
  return run;
}

}  // namespace

absl::StatusOr<std::unique_ptr<snapshot::SnapshotState>> OpenSnapshotState(
    const flow::PostgresSourceOptions& src) {
  if (src.snapshot_state_backend == "none") return snapshot::MakeMemorySnapshotState();
  if (src.snapshot_state_backend == "file") {
    return snapshot::MakeFileSnapshotState(src.snapshot_state_path);
  }
  return snapshot::OpenPostgresSnapshotState(
      src.snapshot_state_dsn.empty() ? src.dsn : src.snapshot_state_dsn, src.snapshot_state_schema,
      src.snapshot_state_table);
}

bool IsLeaseOutcome(const absl::Status& status) {
  return status.GetPayload(kLeasePayload).has_value() ||
         (absl::IsAborted(status) && absl::StrContains(status.message(), "fenced"));
}

absl::Status RunWorker(const WorkerFlags& flags, const std::atomic<bool>& stop) {
  if (!flags.flow_id.empty() && flags.flow_file.empty()) {
    return RunControlledFlow(flags, stop, store::ProcessEnv());
  }
  DS_ASSIGN_OR_RETURN(PreparedFlow prepared, PrepareFlow(flags));
  DS_ASSIGN_OR_RETURN(store::OpenedCheckpointStore checkpoints,
                      store::OpenCheckpointStoreFromEnv(store::DefaultCheckpointBackend::kSqlite));
  return RunPrepared(std::move(prepared), checkpoints.store.get(), checkpoints.description, stop);
}

}  // namespace ductstream::worker
