#pragma once

// The `null` destination: counts the rows and bytes of every batch and discards them. A batch is
// "durable" as soon as Write returns, so the checkpoint follows the stream. It measures the
// source side alone (replication, pgoutput decoding, Arrow batch building): the decode-only mode
// of the benchmarks (docs/benchmarks.md), and a dry run of a flow's source. Takes no options (the
// flow's wire format is accepted and unused).

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ductstream/flow/flow_config.h"
#include "ductstream/runner/destination.h"

namespace ductstream::destination {

struct NullDestinationConfig {
  std::string name;
};

/// What a null destination has discarded so far.
struct NullDestinationCounts {
  int64_t batches = 0;
  int64_t rows = 0;
  int64_t bytes = 0;  // ChangeBatch::bytes, the batches' approximate memory
};

/// Checks a `null` destination's options: none, apart from the `format` and `flow_id` that
/// every destination is given. No I/O.
absl::Status CheckNullDestinationOptions(const flow::Endpoint& dest, const std::string& field);

/// A null destination. `counts`, when given, must outlive it and is updated by every Write
/// (from the writer thread; read it once the destination is closed).
absl::StatusOr<std::unique_ptr<runner::Destination>> MakeNullDestination(
    NullDestinationConfig config, NullDestinationCounts* counts = nullptr);

}  // namespace ductstream::destination
