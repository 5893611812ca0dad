#pragma once

// Options of the `s3` destination (SPEC.md §7.2 plus endpoint, path-style addressing and retry
// settings). One table (S3OptionDocs) drives parsing, the unknown-option check and the reference
// in docs/connectors.md. Parsing is pure validation: no I/O, no credentials read.

#include <functional>
#include <optional>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ductstream/codec/codec.h"
#include "ductstream/flow/flow_config.h"

namespace ductstream::destination {

struct S3DestinationOptions {
  std::string bucket;
  /// Normalised: no leading '/', and a trailing '/' unless empty ("cdc" and "/cdc/" → "cdc/").
  std::string prefix;
  /// Empty: the `region` option, else AWS_REGION, else AWS_DEFAULT_REGION; when all are unset
  /// the AWS SDK decides (profile files, else us-east-1).
  std::string region;
  /// host:port of an S3-compatible store, without the scheme; empty for AWS. The `endpoint`
  /// option, else AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL (the AWS SDKs' variables; ignored
  /// when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true).
  std::string endpoint;
  /// "http" or "https" (from the endpoint URL; https when it has none).
  std::string scheme = "https";
  /// Path-style URLs (http://host/bucket/key) rather than virtual-hosted ones
  /// (http://bucket.host/key). Defaults to true with an endpoint, false for AWS.
  bool path_style = false;
  codec::WireFormat format = codec::WireFormat::kParquet;
  /// Passed to the encoder (codec::EncoderOptions): parquet and avro only.
  std::string compression;
  /// How long one object upload is retried on retriable errors (network, 5xx, throttling)
  /// before the write fails and the flow stops; zero retries forever.
  absl::Duration retry_timeout = absl::Minutes(5);
  /// Cap of the exponential backoff between attempts (starts at 200 ms).
  absl::Duration retry_backoff_max = absl::Seconds(30);
};

/// The option table: name, default, meaning.
std::span<const flow::OptionDoc> S3OptionDocs();

/// Reads an environment variable; nullopt when unset.
using S3EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
/// The process environment.
S3EnvLookup ProcessEnv();

/// Parses and checks `dest.options` (a destination of type "s3"), filling the endpoint and region
/// from `env` when the options leave them unset; every problem at once, each naming
/// "<field>.options.<key>" (field is e.g. "destinations[0]"). InvalidArgument.
absl::StatusOr<S3DestinationOptions> ParseS3DestinationOptions(
    const flow::Endpoint& dest, absl::string_view field, const S3EnvLookup& env = ProcessEnv());

}  // namespace ductstream::destination
