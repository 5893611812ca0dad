#pragma once

// Durable checkpoints: per flow, the commit end LSN up to which every required destination holds
// the data. The worker persists a checkpoint before acknowledging it to PostgreSQL (DESIGN.md §2).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
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

  /// Raises the flow's stored generation to at least `generation` without moving its LSN (a flow
  /// without a checkpoint gets one at 0/0, which means "from the slot's confirmed position"), so
  /// that every writer of an older generation is refused from now on. A worker calls this when it
  /// takes over a flow's lease, before it reads the checkpoint it resumes from.
  virtual absl::Status Fence(const FlowId& flow, int64_t generation) = 0;

  /// Every flow's checkpoint, most recently updated first.
  virtual absl::StatusOr<std::vector<std::pair<FlowId, Checkpoint>>> List() = 0;
};

/// The embedded store: a SQLite file (created with its directory when missing), migrated on
/// open under SQLite's write lock so that concurrent openers are safe.
absl::StatusOr<std::unique_ptr<CheckpointStore>> OpenSqliteCheckpointStore(const std::string& path);

/// The shared store: table `checkpoints` in a PostgreSQL database (normally the control DB,
/// SPEC §9.2, with `lsn` typed pg_lsn and a `generation` column). Migrations are tracked in
/// `ductstream_checkpoint_migrations` and applied in one transaction under an advisory lock, so
/// any number of processes may open the same database at once. Put is a single conditional upsert,
/// so the monotonic checks hold across processes without a read-modify-write race. A broken
/// connection is re-established on the next call.
absl::StatusOr<std::unique_ptr<CheckpointStore>> OpenPostgresCheckpointStore(
    const std::string& dsn);

/// Environment access, injectable so that backend selection is testable without setenv.
/// Returns std::nullopt for an unset variable.
using EnvLookup = std::function<std::optional<std::string>(absl::string_view name)>;
/// Reads the process environment (getenv).
EnvLookup ProcessEnv();

enum class CheckpointBackend { kNone, kSqlite, kPostgres };

/// What a process without any checkpoint configuration gets: the worker wants a local SQLite file,
/// the API server no store at all.
enum class DefaultCheckpointBackend { kNone, kSqlite };

/// The outcome of SPEC §9.1 backend selection, before anything is opened.
struct CheckpointStoreSelection {
  CheckpointBackend backend = CheckpointBackend::kNone;
  /// The SQLite path or the PostgreSQL DSN (with its password); empty for kNone.
  std::string target;
  /// For logs, password redacted: "sqlite /home/u/.ductstream/checkpoints.db",
  /// "postgres host=db password=*****", "none".
  std::string description;
};

/// Selects the backend from DUCTSTREAM_CHECKPOINT_BACKEND (lower-cased; "postgres", "sqlite",
/// "none"; empty counts as unset), DUCTSTREAM_POSTGRES_DSN, DUCTSTREAM_CHECKPOINT_DSN (a SQLite
/// DSN: a `file:` prefix and `?query` are stripped) and DUCTSTREAM_CHECKPOINT_PATH. When the
/// backend is unset: the control DSN means postgres, else a checkpoint DSN/path means sqlite, else
/// `default_backend` (sqlite at $HOME/.ductstream/checkpoints.db). InvalidArgument for an unknown
/// backend or "postgres" without DUCTSTREAM_POSTGRES_DSN.
absl::StatusOr<CheckpointStoreSelection> SelectCheckpointBackend(
    const EnvLookup& env, DefaultCheckpointBackend default_backend);

struct OpenedCheckpointStore {
  /// nullptr when the selection is "none": the process runs without a checkpoint store.
  std::unique_ptr<CheckpointStore> store;
  /// As CheckpointStoreSelection::description, for a startup log line.
  std::string description;
};

/// SelectCheckpointBackend, then opens (and migrates) the chosen store.
absl::StatusOr<OpenedCheckpointStore> OpenCheckpointStoreFromEnv(
    DefaultCheckpointBackend default_backend, const EnvLookup& env = ProcessEnv());

}  // namespace ductstream::store
