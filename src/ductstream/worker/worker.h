#pragma once

// ductstream-worker: runs one flow's data path (SPEC.md §2.2) from a flow definition file.

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
#include "ductstream/store/checkpoint_store.h"

namespace ductstream::worker {

struct WorkerFlags {
  std::string flow_file;     // -flow
  std::string flow_id;       // -flow-id (control plane)
  int max_empty_reads = 0;   // -max-empty-reads
  std::string mode = "cdc";  // -mode
  std::string start_lsn;     // -start-lsn
  std::string tables;        // -tables (backfill)
  std::string schemas;       // -schemas (backfill)
};

/// Everything a flow needs, built and checked before any connection is made.
struct PreparedFlow {
  flow::FlowDefinition definition;
  flow::PostgresSourceOptions source;
  runner::PipelineOptions pipeline;
  std::vector<std::unique_ptr<runner::Destination>> destinations;
};

/// Loads, validates and builds the flow of `flags`. Errors name the flag or the flow field
/// (`source.options.slot: required`). Reads DUCTSTREAM_WIRE_FORMAT and DUCTSTREAM_WIRE_ENFORCE.
absl::StatusOr<PreparedFlow> PrepareFlow(const WorkerFlags& flags,
                                         const store::EnvLookup& env = store::ProcessEnv());

/// Builds the destinations of a validated flow (only connectors in this build).
absl::StatusOr<std::vector<std::unique_ptr<runner::Destination>>> MakeDestinations(
    const flow::FlowDefinition& flow);

/// Runs the flow until `stop` (graceful), max-empty-reads, or a fatal error.
absl::Status RunWorker(const WorkerFlags& flags, const std::atomic<bool>& stop);

}  // namespace ductstream::worker
