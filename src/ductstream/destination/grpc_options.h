#pragma once

// Options of the `grpc` push destination: change batches sent to a user's endpoint that
// implements ductstream.v1.IngestService (proto/ductstream/v1/ingest.proto). One table
// (GrpcOptionDocs) drives parsing, the unknown-option check and docs/connectors.md.
// Parsing is pure validation: no I/O (ca_file is read when the destination is created).

#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ductstream/codec/codec.h"
#include "ductstream/destination/http_options.h"
#include "ductstream/flow/flow_config.h"

namespace ductstream::destination {

struct GrpcOptions {
  /// host:port (or any gRPC target URI, e.g. dns:///ingest.example.com:443).
  std::string target;
  bool tls = false;
  /// PEM roots for TLS; empty: the system roots.
  std::string ca_file;
  /// Sent as "authorization: Bearer <token>" metadata when set.
  std::string token;
  codec::WireFormat format = codec::WireFormat::kProto;
  /// Deadline of one call.
  absl::Duration timeout = absl::Seconds(10);
  PushRetryOptions retry;
};

std::span<const flow::OptionDoc> GrpcOptionDocs();

/// Parses and checks a grpc destination's options; every problem at once, as InvalidArgument
/// naming "<field>.options.<key>".
absl::StatusOr<GrpcOptions> ParseGrpcOptions(const flow::Endpoint& dest, absl::string_view field);

}  // namespace ductstream::destination
