#pragma once

// The seam between the data path and a destination connector (SPEC.md §1.2).

#include <string>

#include "absl/status/status.h"
#include "ductstream/cdc/change_batch.h"

namespace ductstream::runner {

/// Lifecycle: construct (configured, connected lazily or eagerly) → Write* → Close.
/// Called from one writer thread; implementations need not be thread-safe.
class Destination {
 public:
  virtual ~Destination() = default;
  virtual const std::string& name() const = 0;
  /// Writes `batch` and returns only once it is durable at the destination, retrying transient
  /// failures as the connector is configured to. An error stops the flow before the batch's
  /// checkpoint is persisted, so nothing unwritten is ever acknowledged.
  virtual absl::Status Write(const cdc::ChangeBatch& batch) = 0;
  virtual absl::Status Close() { return absl::OkStatus(); }
};

}  // namespace ductstream::runner
