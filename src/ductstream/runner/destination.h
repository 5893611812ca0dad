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

/// Lifecycle: construct (configured, connected lazily or eagerly) → (Stage →) (Prepare or
/// PrepareStaged →) Write* → Close. Write, WritePrepared and Close are called from one writer
/// thread; Stage, Prepare and PrepareStaged run elsewhere.
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

  /// True when the connector can do most of Prepare for a batch of a streamed transaction while
  /// the transaction is still streaming (Stage), leaving only its commit labels for after the
  /// commit (PrepareStaged). Only for connectors that prepare.
  virtual bool stages() const { return false; }
  /// Prepare for `unlabelled`, a batch of a streamed transaction that has not committed yet (and
  /// may abort): its __commit_lsn and __commit_ts hold placeholders. Makes nothing visible; what
  /// it returns is destroyed unused when the transaction aborts. Thread-safe, like Prepare.
  virtual absl::StatusOr<std::unique_ptr<Prepared>> Stage(const cdc::ChangeBatch& /*unlabelled*/) {
    return absl::UnimplementedError("this destination does not stage");
  }
  /// Prepare for `batch`, given what Stage returned for the same batch before its transaction
  /// committed: `batch` is that batch labelled with the commit (otherwise identical). On an
  /// error the data path falls back to Prepare(batch). Thread-safe, like Prepare.
  virtual absl::StatusOr<std::unique_ptr<Prepared>> PrepareStaged(
      const cdc::ChangeBatch& batch, std::unique_ptr<Prepared> /*staged*/) {
    return Prepare(batch);
  }
  virtual absl::Status Close() { return absl::OkStatus(); }
};

}  // namespace ductstream::runner
