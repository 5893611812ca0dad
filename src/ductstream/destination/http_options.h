#pragma once

// Options of the `http` (webhook) destination (SPEC.md §7.3 plus `payload_mode`). One table
// (HttpOptionDocs) declares every option once: it drives the unknown-option check, the error
// messages and the reference in docs/connectors.md. Parsing is pure validation, no I/O.

#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ductstream/codec/codec.h"
#include "ductstream/flow/flow_config.h"

namespace ductstream::destination {

/// record: one request per change (SPEC §7.3). batch: one request per relation of each batch.
enum class HttpPayloadMode { kRecord, kBatch };

/// Retry schedule shared by the http and grpc destinations: attempt k (1-based) that failed
/// retriably is followed by a wait of min(base·factor^(k-1), max) × a jitter in [0.5, 1.5).
struct PushRetryOptions {
  /// Attempts per request = max_retries + 1.
  int max_retries = 3;
  absl::Duration backoff_base = absl::Milliseconds(200);
  absl::Duration backoff_max = absl::Seconds(5);
  double backoff_factor = 2.0;
};

/// The wait after failed attempt `attempt` (1-based), before jitter.
absl::Duration PushBackoff(const PushRetryOptions& retry, int attempt);
/// `jitter` in [0, 1) maps to the factor 0.5 + jitter.
absl::Duration PushBackoffWithJitter(const PushRetryOptions& retry, int attempt, double jitter);

struct HttpOptions {
  std::string url;
  /// Upper-cased.
  std::string method = "POST";
  codec::WireFormat format = codec::WireFormat::kJson;
  /// Extra request headers, in the order given.
  std::vector<std::pair<std::string, std::string>> headers;
  /// Per request (connect + send + answer).
  absl::Duration timeout = absl::Seconds(10);
  PushRetryOptions retry;
  std::string idempotency_header = "Idempotency-Key";
  HttpPayloadMode payload_mode = HttpPayloadMode::kRecord;
};

/// The documented options, in the order of the reference.
std::span<const flow::OptionDoc> HttpOptionDocs();

/// Parses and checks an http destination's options. `field` names the endpoint in errors
/// ("destinations[0]"); every problem is reported at once, as InvalidArgument.
absl::StatusOr<HttpOptions> ParseHttpOptions(const flow::Endpoint& dest, absl::string_view field);

// Shared by the option tables of the http and grpc destinations: each returns the problem with
// the value, or "" when it is good.
std::string ParsePushDuration(absl::string_view value, absl::Duration& out);
std::string ParsePushRetries(absl::string_view value, int& out);
std::string ParsePushFactor(absl::string_view value, double& out);

}  // namespace ductstream::destination
