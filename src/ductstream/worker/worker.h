#pragma once

// ductstream-worker: runs one flow's data path (SPEC.md §2.2), from a flow definition file or
// from the control store under the flow's lease.

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ductstream/flow/flow_config.h"
#include "ductstream/runner/destination.h"
#include "ductstream/runner/pipeline.h"
#include "ductstream/snapshot/snapshotter.h"
#include "ductstream/store/checkpoint_store.h"

namespace ductstream::worker {

struct WorkerFlags {
  std::string flow_file;         // -flow
  std::string flow_id;           // -flow-id (control plane)
  int max_empty_reads = 0;       // -max-empty-reads
  std::string mode = "cdc";      // -mode
  std::string start_lsn;         // -start-lsn
  std::string tables;            // -tables (backfill)
  std::string schemas;           // -schemas (backfill)
  int snapshot_workers = 0;      // -snapshot-workers (0: the flow's snapshot_workers)
  std::string partition_column;  // -partition-column
  int partition_count = 0;       // -partition-count (0: the flow's)
};

/// Everything a flow needs, built and checked before any connection is made.
struct PreparedFlow {
  flow::FlowDefinition definition;
  flow::PostgresSourceOptions source;
  runner::PipelineOptions pipeline;
  std::vector<std::unique_ptr<runner::Destination>> destinations;
  /// The snapshot to run (or resume) before streaming; for kOnly and kBackfill the worker exits
  /// once it is complete. Unset: stream only (snapshot=never).
  std::optional<snapshot::SnapshotConfig> snapshot;
};

/// Loads, validates and builds the flow of `flags`. Errors name the flag or the flow field
/// (`source.options.slot: required`). Reads DUCTSTREAM_WIRE_FORMAT and DUCTSTREAM_WIRE_ENFORCE.
absl::StatusOr<PreparedFlow> PrepareFlow(const WorkerFlags& flags,
                                         const store::EnvLookup& env = store::ProcessEnv());

/// PrepareFlow for a definition already in hand (the control store's): validation, source
/// options, pipeline settings and destinations.
absl::StatusOr<PreparedFlow> PrepareDefinition(flow::FlowDefinition definition,
                                               const WorkerFlags& flags,
                                               const store::EnvLookup& env = store::ProcessEnv());

/// Builds the destinations of a validated flow (only connectors in this build).
absl::StatusOr<std::vector<std::unique_ptr<runner::Destination>>> MakeDestinations(
    const flow::FlowDefinition& flow);

/// Checks every destination's connector options as MakeDestinations will, without building
/// anything or doing I/O: InvalidArgument naming each bad field, Unimplemented for a connector
/// this build does not have. The API server calls it before storing a flow.
absl::Status CheckDestinations(const flow::FlowDefinition& flow);

/// The snapshot progress store the flow's source options select (snapshot_state_backend).
absl::StatusOr<std::unique_ptr<snapshot::SnapshotState>> OpenSnapshotState(
    const flow::PostgresSourceOptions& source);

/// Runs the flow until `stop` (graceful), max-empty-reads, or a fatal error. With -flow-id the
/// flow is read from the control store (DUCTSTREAM_POSTGRES_DSN, else the local SQLite file) and
/// run under its lease: FailedPrecondition when it is not running, Unavailable when another
/// worker holds it, Aborted when the lease ends or is taken over while running (the worker was
/// fenced; the caller should exit).
absl::Status RunWorker(const WorkerFlags& flags, const std::atomic<bool>& stop);

/// Whether a RunWorker error is about the flow's lease (not running, held by another worker,
/// fenced) rather than a failure of the flow: the supervisor retries those without counting them
/// as crashes. ductstream-worker exits with status 3 for them.
bool IsLeaseOutcome(const absl::Status& status);

}  // namespace ductstream::worker
