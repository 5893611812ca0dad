#pragma once

// Options of the `pgstream` destination (SPEC.md §7.4, §12; docs/streams.md). One table
// (PgstreamOptionDocs) drives parsing, the unknown-option check and the reference in
// docs/connectors.md. Parsing is pure validation: no I/O.

#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ductstream/codec/codec.h"
#include "ductstream/flow/flow_config.h"

namespace ductstream::destination {

/// record: one stream event per change; batch: one event per table per batch.
enum class PgstreamPayloadMode { kRecord, kBatch };

struct PgstreamOptions {
  /// The stream database; the API server's StreamService serves the control database
  /// (DUCTSTREAM_POSTGRES_DSN), so point both at the same database.
  std::string dsn;
  /// Empty: the destination's name.
  std::string stream;
  codec::WireFormat format = codec::WireFormat::kJson;
  PgstreamPayloadMode payload_mode = PgstreamPayloadMode::kRecord;
  /// Events acked by every consumer group are deleted once older than this; zero keeps all.
  absl::Duration retention = absl::Hours(168);
  /// The `flow_id` the control plane injects; the identity of the events.
  std::string flow_id;
};

std::span<const flow::OptionDoc> PgstreamOptionDocs();

/// `field` names the endpoint in errors ("destinations[0]"); every problem is reported at once,
/// as InvalidArgument. `stream` defaults to dest.name.
absl::StatusOr<PgstreamOptions> ParsePgstreamOptions(const flow::Endpoint& dest,
                                                     absl::string_view field);

}  // namespace ductstream::destination
