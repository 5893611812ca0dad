#pragma once

// The `s3` destination: every relation's changes of a batch become one object in the flow's wire
// format, at
//
//   <prefix><schema>.<table>/date=<YYYY-MM-DD>/<commit LSN, 16 hex digits>-<sequence, 10
//   digits>.<ext>
//
// The name is the `file` destination's (FileDestinationPath): it comes from the relation's first
// change in the batch, and the date is that change's commit timestamp (UTC). A replay from the
// checkpoint rebuilds batches that start at the same changes, so it overwrites the objects it
// re-creates instead of duplicating their rows.
//
// Uploads go through Arrow's S3 filesystem (multipart past one part, credentials from the AWS
// default chain: environment, profile files, ...). Parquet is streamed into the upload page by
// page; the other formats are encoded first. An object exists only once its upload completed (S3
// publishes objects atomically), so a batch is durable when Write returns. Retriable failures
// (network, 5xx, throttling) are retried with backoff for `retry_timeout`; nothing is
// acknowledged meanwhile. Thread-compatible: owned by one writer thread.

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ductstream/cdc/change_batch.h"
#include "ductstream/codec/codec.h"
#include "ductstream/destination/s3_options.h"
#include "ductstream/runner/destination.h"

namespace ductstream::destination {

struct S3DestinationConfig {
  std::string name;
  S3DestinationOptions options;
};

/// Validates the configuration and builds the S3 client (no request is sent). Initialises Arrow's
/// S3 support once per process and finalises it at exit.
absl::StatusOr<std::unique_ptr<runner::Destination>> MakeS3Destination(S3DestinationConfig config);

/// The object key (within the bucket) that MakeS3Destination uses for `changes`; `prefix` as
/// normalised by ParseS3DestinationOptions ("" or ending in '/').
std::string S3ObjectKey(absl::string_view prefix, const cdc::RelationChanges& changes,
                        codec::WireFormat format);

/// "YYYY-MM-DD": the UTC date of the commit timestamp of the relation's first change (the first
/// one that has a timestamp); "unknown" when none has one (snapshot rows).
std::string CommitDate(const cdc::RelationChanges& changes);

/// Whether an error of Arrow's S3 filesystem (its message) is worth retrying: network errors,
/// timeouts, 5xx and throttling are; missing buckets, denied access and bad credentials are not.
bool IsRetriableS3Error(absl::string_view message);

}  // namespace ductstream::destination
