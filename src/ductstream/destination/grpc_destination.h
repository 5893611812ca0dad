#pragma once

// The `grpc` push destination: each relation of each change batch is sent as one
// ductstream.v1.IngestService/IngestBatch call (proto/ductstream/v1/ingest.proto) to a receiver
// the user runs. With format=proto the request carries the typed `Batch` of data.proto; with the
// other formats, the codec's document as `payload` plus its wire_format and content_type. Every
// request names its relation, its first and last change identity (commit LSN + seq) and an
// idempotency key built from them.
//
// Durability: a batch is durable once every call has returned OK. UNAVAILABLE,
// DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED are retried up to max_retries times with jittered
// exponential backoff (then Write fails with Unavailable); any other status fails Write at once
// with FailedPrecondition naming the code and the receiver's message. Nothing of a failed batch
// is acknowledged.
//
// Thread-compatible: owned by the flow's writer thread (gRPC keeps its own threads).

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "ductstream/destination/grpc_options.h"
#include "ductstream/runner/destination.h"

namespace ductstream::destination {

struct GrpcDestinationConfig {
  std::string name;
  /// The flow id when the control plane runs the flow (sent in every request); may be empty.
  std::string flow_id;
  GrpcOptions options;
};

/// Validates the configuration, reads ca_file and creates the channel (it connects lazily).
absl::StatusOr<std::unique_ptr<runner::Destination>> MakeGrpcDestination(
    GrpcDestinationConfig config);

}  // namespace ductstream::destination
