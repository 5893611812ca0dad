#pragma once

// Durable checkpoints: per flow, the commit end LSN up to which every required destination holds
// the data. The worker persists a checkpoint before acknowledging it to PostgreSQL (DESIGN.md §2).

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "ductstream/base/ids.h"
#include "ductstream/base/lsn.h"

namespace ductstream::store {

struct Checkpoint {
  Lsn lsn;
  /// Lifecycle generation of the worker that wrote it (DESIGN.md §2 invariant 5).
  int64_t generation = 0;
  /// Set by the store on every write.
  int64_t updated_at_unix_millis = 0;
  std::map<std::string, std::string> metadata;
};

/// Reads and writes checkpoints. Implementations are thread-safe and safe to share between
/// processes (the database serialises writers).
class CheckpointStore {
 public:
  virtual ~CheckpointStore() = default;

  /// NotFound when the flow has no checkpoint yet.
  virtual absl::StatusOr<Checkpoint> Get(const FlowId& flow) = 0;

  /// Persists `checkpoint` durably before returning. Refused with FailedPrecondition when it
  /// would move the flow backwards (a lower LSN), and with Aborted when its generation is lower
  /// than the stored one (a fenced, stale worker: it must stop). `force` is the operator's
  /// override (PutCheckpoint API) and skips both checks.
  virtual absl::Status Put(const FlowId& flow, const Checkpoint& checkpoint,
                           bool force = false) = 0;

  /// Every flow's checkpoint, most recently updated first.
  virtual absl::StatusOr<std::vector<std::pair<FlowId, Checkpoint>>> List() = 0;
};

/// The embedded store: a SQLite file (created with its directory when missing), migrated on
/// open under SQLite's write lock so that concurrent openers are safe.
absl::StatusOr<std::unique_ptr<CheckpointStore>> OpenSqliteCheckpointStore(const std::string& path);

}  // namespace ductstream::store
