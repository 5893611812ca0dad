#pragma once

// The `pgstream` destination (SPEC.md §7.4, §12; docs/streams.md): change events appended to a
// Postgres-backed stream that consumer groups read through the API server's StreamService
// (Pull / Ack / Replay) or `ductstream-admin stream pull|ack|replay`.
//
// Events (options in pgstream_options.h):
//   payload_mode=record  one event per change: the change's JSON line (json), or the wire
//                        format's encoding of a one-row slice of the batch (arrow, parquet, avro,
//                        proto), like Kafka's record mode. lsn = the change's LSN; identity =
//                        its commit LSN + sequence.
//   payload_mode=batch   one event per table per batch: the table's changes encoded as one
//                        document. lsn and identity = the first change's.
// namespace / table_name = the PostgreSQL schema and table; wire_format = the format's name.
//
// Durability: the whole batch is appended in one transaction; Write returns after COMMIT. Events
// are unique on (stream, flow_id, commit LSN, seq), so a batch written again after a crash adds
// nothing (record mode always; batch mode when the replayed batch starts at the same change,
// which it does when it is rebuilt from the same checkpoint). Transient database errors are
// retried with backoff before the batch fails. Pruning (`retention`) runs after a write at most
// once a minute.
//
// Thread-compatible: owned by the flow's writer thread.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "ductstream/destination/pgstream_options.h"
#include "ductstream/runner/destination.h"

namespace ductstream::destination {

struct PgstreamDestinationConfig {
  std::string name;
  PgstreamOptions options;
  /// The flow's id when the options carry none (standalone workers).
  std::string flow_id;
};

/// Validates the configuration; connects (and migrates the stream tables) at the first Write.
absl::StatusOr<std::unique_ptr<runner::Destination>> MakePgstreamDestination(
    PgstreamDestinationConfig config);

}  // namespace ductstream::destination
