#pragma once

// The seam between the data path and a destination connector (SPEC.md §1.2).

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ductstream/cdc/change_batch.h"

namespace ductstream::runner {

/// What Destination::Prepare made of one batch (encoded payloads, staged temp files), handed
/// back to WritePrepared. Destroyed unused when the flow stops first: it must then clean up
/// after itself (remove temp files).
class Prepared {
 public:
  virtual ~Prepared() = default;
};

/// Lifecycle: construct (configured, connected lazily or eagerly) → (Prepare →) Write* → Close.
/// Write, WritePrepared and Close are called from one writer thread; only Prepare runs
/// elsewhere.
class Destination {
 public:
  virtual ~Destination() = default;
  virtual const std::string& name() const = 0;
  /// Writes `batch` and returns only once it is durable at the destination, retrying transient
  /// failures as the connector is configured to. An error stops the flow before the batch's
  /// checkpoint is persisted, so nothing unwritten is ever acknowledged.
  virtual absl::Status Write(const cdc::ChangeBatch& batch) = 0;

  /// True when the connector does the CPU-heavy part of a write (encoding) in Prepare.
  virtual bool prepares() const { return false; }
  /// The part of writing `batch` that needs none of the connector's ordered state and makes
  /// nothing visible: encoding, staging. The data path calls it on its own threads, for a few
  /// batches at once, concurrently with WritePrepared of earlier batches; it must be
  /// thread-safe. Null when there is nothing to prepare.
  virtual absl::StatusOr<std::unique_ptr<Prepared>> Prepare(const cdc::ChangeBatch& /*batch*/) {
    return nullptr;
  }
  /// Write, given what Prepare returned for this batch (batches arrive in order, as for Write).
  virtual absl::Status WritePrepared(const cdc::ChangeBatch& batch,
                                     std::unique_ptr<Prepared> /*prepared*/) {
    return Write(batch);
  }
  virtual absl::Status Close() { return absl::OkStatus(); }
};

}  // namespace ductstream::runner
