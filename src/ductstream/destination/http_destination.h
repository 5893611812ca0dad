#pragma once

// The `http` (webhook) destination: change batches sent to a URL with libcurl.
//
// Requests (options in http_options.h):
//   payload_mode=record  one request per change (SPEC §7.3). Body: the change's JSON object
//                        (codec/row_json.h AppendChange) for json, Content-Type
//                        application/json; for the other formats the format's encoding of a
//                        one-row slice of the batch (a self-contained document), Content-Type
//                        from the codec. Idempotency header: "<commit LSN>:<seq>" (e.g.
//                        "0/16B3748:3"), the change's deterministic identity.
//   payload_mode=batch   one request per relation of each batch: the relation's changes encoded
//                        as one document (JSON Lines for json). Idempotency header:
//                        "<first commit LSN>:<seq>..<last commit LSN>:<seq>"; every JSON line also
//                        carries its own commit_lsn and seq, so a receiver can drop replays per
//                        change even when a replayed batch is cut differently.
//   Headers also: X-Ductstream-Table (schema.table), X-Ductstream-Format, X-Ductstream-Rows, and
//   in record mode X-Ductstream-Op, X-Ductstream-Lsn, X-Ductstream-Commit-Lsn, X-Ductstream-Seq;
//   then the user's `headers`.
//
// Durability: Write sends the requests one after the other and returns once every one has been
// answered with a status < 300. Transport errors (connection refused, timeouts), 408, 429 and
// 5xx are retried up to max_retries times with jittered exponential backoff; then Write fails
// with Unavailable. Any other answer (4xx) fails at once with FailedPrecondition naming the
// status and the start of the response body. Either way nothing of the batch is acknowledged,
// and the next run sends the batch again (the receiver drops what it already has by key).
//
// Thread-compatible: owned by the flow's writer thread.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "ductstream/destination/http_options.h"
#include "ductstream/runner/destination.h"

namespace ductstream::destination {

struct HttpDestinationConfig {
  std::string name;
  HttpOptions options;
};

/// Validates the configuration and prepares the client (no request is sent before Write).
absl::StatusOr<std::unique_ptr<runner::Destination>> MakeHttpDestination(
    HttpDestinationConfig config);

/// Whether an answer with this HTTP status is worth sending again: 408, 429 and 5xx.
bool IsRetriableHttpStatus(long status);

}  // namespace ductstream::destination
