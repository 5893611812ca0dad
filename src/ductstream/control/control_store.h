#pragma once

// The control store (DESIGN.md §4): flows, their lifecycle history and the leases that let
// exactly one worker run a flow. One implementation over store::SqlDatabase, so that the embedded
// SQLite file and a shared PostgreSQL database behave identically; migrations run at open under
// the database's migration lock, so any number of servers and workers may open it at once.
//
// Fencing. Every lifecycle transition bumps the flow's `generation`. A worker is started for one
// generation and takes the flow's lease for it; the lease carries a `token` that grows with every
// grant. The worker stamps its checkpoints with that token and raises the stored checkpoint's
// generation to it at takeover (store::CheckpointStore::Fence), so a worker whose lease was taken
// over is refused at its next checkpoint; a lease renewal fails as soon as the flow is no longer
// running at the worker's generation, so a paused or stopped flow's worker exits.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ductstream/control/lifecycle.h"
#include "ductstream/flow/flow_config.h"
#include "ductstream/store/checkpoint_store.h"
#include "ductstream/store/sql_db.h"

namespace ductstream::control {

struct FlowRecord {
  /// id, name, wire_format, parallelism, source, destinations (with secrets: the store is the
  /// only place a worker can read them from; redact before showing).
  flow::FlowDefinition definition;
  FlowState state = FlowState::kCreated;
  int64_t generation = 0;
  /// Set by the transition into kFailed; cleared by the next transition.
  std::string failure_reason;
  int64_t created_at_unix_millis = 0;
  int64_t updated_at_unix_millis = 0;
};

struct Lease {
  std::string holder;
  /// The fencing token: checkpoints are stamped with it.
  int64_t token = 0;
  /// The flow generation the lease was granted for.
  int64_t generation = 0;
  int64_t expires_at_unix_millis = 0;
  bool expired = false;
};

struct StateEvent {
  std::optional<FlowState> from;  // none for the creation
  FlowState to = FlowState::kCreated;
  std::string reason;
  int64_t generation = 0;
  int64_t at_unix_millis = 0;
};

/// A page position for ListFlows: flows are ordered by (created_at, id).
struct FlowCursor {
  int64_t created_at_unix_millis = 0;
  std::string id;
};

/// Thread-safe (one connection under a mutex). Errors: NotFound for an unknown flow,
/// AlreadyExists for a duplicate id, FailedPrecondition for an illegal transition (naming both
/// states) or an update of a running flow, Aborted for a lost lease, Unavailable when the
/// database is unreachable.
class ControlStore {
 public:
  static absl::StatusOr<std::unique_ptr<ControlStore>> Open(std::unique_ptr<store::SqlDatabase> db);
  ~ControlStore();

  /// For logs: "sqlite /path" or "postgres host=... password=*****".
  std::string description() const;

  /// Stores a validated flow (definition.id must be set) in state `created`, generation 1.
  absl::StatusOr<FlowRecord> CreateFlow(const flow::FlowDefinition& definition);
  absl::StatusOr<FlowRecord> GetFlow(const std::string& id);
  /// Up to `limit` flows after `after` (from the start when nullopt), oldest first.
  absl::StatusOr<std::vector<FlowRecord>> ListFlows(const std::optional<FlowCursor>& after,
                                                    int limit);
  /// Replaces the definition of a flow that is not running; state and generation are kept.
  absl::StatusOr<FlowRecord> UpdateFlow(const flow::FlowDefinition& definition);
  /// Deletes the flow and its history; false when there was no such flow.
  absl::StatusOr<bool> DeleteFlow(const std::string& id);

  /// Applies `op` atomically (validated by NextState against the stored state), bumps the
  /// generation and records the event with `reason` (FlowOpName(op) when empty). For kFail,
  /// `reason` is also stored as the failure reason.
  absl::StatusOr<FlowRecord> Transition(const std::string& id, FlowOp op,
                                        const std::string& reason = {});
  /// The flow's history, oldest first.
  absl::StatusOr<std::vector<StateEvent>> ListEvents(const std::string& id);

  /// Grants the flow's lease to `holder` for `ttl` when the flow is running at `generation` and
  /// the lease is free, expired, granted for an older generation (its holder is stale) or already
  /// `holder`'s; returns the new lease (a fresh token).
  /// FailedPrecondition when the flow is not running or has moved to another generation,
  /// Unavailable when another live worker holds it (naming it and when its lease expires).
  absl::StatusOr<Lease> AcquireLease(const std::string& id, int64_t generation,
                                     const std::string& holder, absl::Duration ttl);
  /// Extends `lease`; Aborted when it was lost (taken over, flow no longer running at its
  /// generation, or deleted) — the worker must stop.
  absl::Status RenewLease(const std::string& id, const Lease& lease, absl::Duration ttl);
  /// Gives the lease up (no-op when no longer held).
  absl::Status ReleaseLease(const std::string& id, const Lease& lease);
  /// The current lease, if anyone has held one (`expired` tells whether it still counts).
  absl::StatusOr<std::optional<Lease>> GetLease(const std::string& id);

 private:
  explicit ControlStore(std::unique_ptr<store::SqlDatabase> db);
  class Impl;
  std::unique_ptr<Impl> impl_;
};

/// Where the control store lives, from the environment (SPEC §2.4, §9.1): DUCTSTREAM_POSTGRES_DSN
/// when set; otherwise SQLite at DUCTSTREAM_CHECKPOINT_DSN / DUCTSTREAM_CHECKPOINT_PATH /
/// $HOME/.ductstream/checkpoints.db — the same database as the checkpoints, so a whole single-
/// machine installation is one file.
struct StateDatabase {
  store::SqlDialect dialect = store::SqlDialect::kSqlite;
  /// The SQLite path or the PostgreSQL DSN (with its password).
  std::string target;
  /// Password redacted, for logs.
  std::string description;
};
absl::StatusOr<StateDatabase> SelectStateDatabase(const store::EnvLookup& env);

/// Opens (and migrates) the control store of `where`.
absl::StatusOr<std::unique_ptr<ControlStore>> OpenControlStore(const StateDatabase& where);
/// Opens the checkpoint store of `where` (the same database).
absl::StatusOr<std::unique_ptr<store::CheckpointStore>> OpenCheckpointStore(
    const StateDatabase& where);

}  // namespace ductstream::control
