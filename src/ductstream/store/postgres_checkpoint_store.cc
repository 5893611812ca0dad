#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "ductstream/base/status.h"
#include "ductstream/postgres/connection.h"
#include "ductstream/store/checkpoint_store.h"

namespace ductstream::store {
namespace {

using postgres::Connection;
using postgres::GetValue;
using postgres::Result;
using postgres::RowCount;

struct Migration {
  const char* version;
  const char* sql;
};

// Applied in order, each in the transaction that records it. Versions are text so that other
// DuctStream modules' conventions (and the Go implementation's table) can coexist; they sort in
// application order. The first one also upgrades a Go-era table (lsn TEXT, no generation) in place:
// CREATE ... IF NOT EXISTS leaves such a table alone, and the ALTERs are no-ops on our own schema.
constexpr Migration kMigrations[] = {
    {"0001_checkpoints",
     "CREATE TABLE IF NOT EXISTS checkpoints ("
     "  flow_id TEXT PRIMARY KEY,"
     "  lsn pg_lsn NOT NULL,"
     "  generation BIGINT NOT NULL DEFAULT 0,"
     "  metadata JSONB NOT NULL DEFAULT '{}',"
     "  updated_at TIMESTAMPTZ NOT NULL DEFAULT now());"
     "ALTER TABLE checkpoints ADD COLUMN IF NOT EXISTS generation BIGINT NOT NULL DEFAULT 0;"
     "ALTER TABLE checkpoints ALTER COLUMN lsn TYPE pg_lsn USING lsn::text::pg_lsn;"
     "CREATE INDEX IF NOT EXISTS checkpoints_updated_at_idx ON checkpoints (updated_at)"},
};

// Serialises migrations across processes. Transaction-scoped, so a crashed opener cannot leave
// it held. The value is arbitrary but fixed: every DuctStream build must use the same one.
constexpr const char* kMigrationLockSql = "SELECT pg_advisory_xact_lock(7277632145961402481)";

// One statement reads everything a Checkpoint needs; millisecond epoch avoids parsing timestamps.
constexpr const char* kColumns =
    "lsn::text, generation, metadata::text, "
    "floor(extract(epoch FROM updated_at) * 1000)::bigint";

absl::Status Context(const absl::Status& status, absl::string_view what) {
  return base::Annotate(status, absl::StrCat("checkpoint store: ", what));
}

absl::StatusOr<Checkpoint> RowToCheckpoint(const Result& result, int row, int first_col) {
  Checkpoint cp;
  const auto lsn = GetValue(result, row, first_col);
  const auto generation = GetValue(result, row, first_col + 1);
  const auto metadata_text = GetValue(result, row, first_col + 2);
  const auto updated_at = GetValue(result, row, first_col + 3);
  if (!lsn || !generation || !metadata_text || !updated_at) {
    return absl::DataLossError("checkpoint row has a NULL column");
  }
  DS_ASSIGN_OR_RETURN(cp.lsn, Lsn::Parse(*lsn));
  if (!absl::SimpleAtoi(*generation, &cp.generation) ||
      !absl::SimpleAtoi(*updated_at, &cp.updated_at_unix_millis)) {
    return absl::DataLossError("checkpoint row has a malformed generation or updated_at");
  }
  auto metadata = nlohmann::json::parse(*metadata_text, nullptr, /*allow_exceptions=*/false);
  if (!metadata.is_object()) return absl::DataLossError("checkpoint metadata is not a JSON object");
  for (const auto& [k, v] : metadata.items()) {
    if (v.is_string()) cp.metadata[k] = v.get<std::string>();
  }
  return cp;
}

/// Thread-safe: one connection guarded by a mutex. Other processes are serialised by PostgreSQL:
/// the advisory lock for migrations, the row lock of the conditional upsert for Put.
class PostgresCheckpointStore final : public CheckpointStore {
 public:
  static absl::StatusOr<std::unique_ptr<CheckpointStore>> Open(const std::string& dsn) {
    std::unique_ptr<PostgresCheckpointStore> store(new PostgresCheckpointStore(dsn));
    absl::MutexLock lock(&store->mu_);
    DS_RETURN_IF_ERROR(store->EnsureConnectedLocked());
    DS_RETURN_IF_ERROR(store->MigrateLocked());
    return store;
  }

  absl::StatusOr<Checkpoint> Get(const FlowId& flow) override {
    absl::MutexLock lock(&mu_);
    DS_RETURN_IF_ERROR(EnsureConnectedLocked());
    const std::array<std::optional<std::string>, 1> params = {flow.value()};
    auto result = conn_->ExecParams(
        absl::StrCat("SELECT ", kColumns, " FROM checkpoints WHERE flow_id = $1"), params);
    if (!result.ok()) {
      return Context(result.status(), absl::StrCat("reading checkpoint for flow ", flow.value()));
    }
    if (RowCount(*result) == 0) {
      return absl::NotFoundError(absl::StrCat("no checkpoint for flow ", flow.value()));
    }
    auto cp = RowToCheckpoint(*result, 0, 0);
    if (!cp.ok()) {
      return Context(cp.status(), absl::StrCat("reading checkpoint for flow ", flow.value()));
    }
    return cp;
  }

  absl::Status Put(const FlowId& flow, const Checkpoint& checkpoint, bool force) override {
    absl::MutexLock lock(&mu_);
    DS_RETURN_IF_ERROR(EnsureConnectedLocked());
    absl::Status s = PutLocked(flow, checkpoint, force);
    if (s.ok() || s.code() == absl::StatusCode::kAborted ||
        s.code() == absl::StatusCode::kFailedPrecondition) {
      return s;  // refusals already explain themselves
    }
    return Context(s, absl::StrCat("writing checkpoint for flow ", flow.value()));
  }

  absl::Status Fence(const FlowId& flow, int64_t generation) override {
    absl::MutexLock lock(&mu_);
    DS_RETURN_IF_ERROR(EnsureConnectedLocked());
    const std::array<std::optional<std::string>, 2> params = {flow.value(),
                                                              absl::StrCat(generation)};
    auto result = conn_->ExecParams(
        "INSERT INTO checkpoints AS c (flow_id, lsn, generation) VALUES ($1, '0/0', $2::bigint) "
        "ON CONFLICT (flow_id) DO UPDATE SET generation = GREATEST(c.generation, "
        "EXCLUDED.generation)",
        params);
    if (!result.ok()) {
      return Context(result.status(), absl::StrCat("fencing checkpoint of flow ", flow.value()));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::pair<FlowId, Checkpoint>>> List() override {
    absl::MutexLock lock(&mu_);
    DS_RETURN_IF_ERROR(EnsureConnectedLocked());
    auto result = conn_->Exec(absl::StrCat("SELECT flow_id, ", kColumns,
                                           " FROM checkpoints ORDER BY updated_at DESC, flow_id"));
    if (!result.ok()) return Context(result.status(), "listing checkpoints");
    std::vector<std::pair<FlowId, Checkpoint>> out;
    const int rows = RowCount(*result);
    out.reserve(rows);
    for (int row = 0; row < rows; ++row) {
      auto cp = RowToCheckpoint(*result, row, 1);
      if (!cp.ok()) return Context(cp.status(), "listing checkpoints");
      out.emplace_back(FlowId(std::string(GetValue(*result, row, 0).value_or(""))), std::move(*cp));
    }
    return out;
  }

 private:
  explicit PostgresCheckpointStore(std::string dsn) : dsn_(std::move(dsn)) {}

  // A store lives as long as its process, so it must survive a server restart or a dropped TCP
  // connection: the caller's retry (IsRetriable sees kUnavailable) gets a fresh connection.
  absl::Status EnsureConnectedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (conn_ != nullptr && PQstatus(conn_->raw()) == CONNECTION_OK) return absl::OkStatus();
    conn_.reset();
    auto conn = Connection::Connect(dsn_);
    if (!conn.ok()) return Context(conn.status(), "connecting");
    conn_ = std::move(*conn);
    return absl::OkStatus();
  }

  absl::Status MigrateLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto begin = conn_->Exec("BEGIN");
    if (!begin.ok()) return Context(begin.status(), "migrating");
    absl::Status s = MigrateInTransactionLocked();
    if (!s.ok()) {
      (void)conn_->Exec("ROLLBACK");
      return s;
    }
    auto commit = conn_->Exec("COMMIT");
    if (!commit.ok()) return Context(commit.status(), "committing migrations");
    return absl::OkStatus();
  }

  absl::Status MigrateInTransactionLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // The lock comes first: CREATE TABLE IF NOT EXISTS is not safe against a concurrent creator
    // (both pass the check, one fails on pg_type's unique index).
    auto lock = conn_->Exec(kMigrationLockSql);
    if (!lock.ok()) return Context(lock.status(), "taking the migration lock");
    auto tracking = conn_->Exec(
        "CREATE TABLE IF NOT EXISTS ductstream_checkpoint_migrations ("
        "  version TEXT PRIMARY KEY,"
        "  applied_at TIMESTAMPTZ NOT NULL DEFAULT now())");
    if (!tracking.ok()) return Context(tracking.status(), "creating the migrations table");
    auto applied = conn_->Exec("SELECT version FROM ductstream_checkpoint_migrations");
    if (!applied.ok()) return Context(applied.status(), "reading applied migrations");
    std::vector<std::string> done;
    for (int row = 0; row < RowCount(*applied); ++row) {
      done.emplace_back(GetValue(*applied, row, 0).value_or(""));
    }
    const std::string latest_known = std::end(kMigrations)[-1].version;
    for (const std::string& version : done) {
      if (version > latest_known) {
        return absl::FailedPreconditionError(absl::StrCat(
            "checkpoint store: database ", conn_->redacted_conninfo(), " has migration ", version,
            " but this build knows only up to ", latest_known, ": upgrade DuctStream"));
      }
    }
    for (const Migration& m : kMigrations) {
      if (std::find(done.begin(), done.end(), m.version) != done.end()) continue;
      auto run = conn_->Exec(m.sql);
      if (!run.ok()) return Context(run.status(), absl::StrCat("applying migration ", m.version));
      const std::array<std::optional<std::string>, 1> params = {std::string(m.version)};
      auto record = conn_->ExecParams(
          "INSERT INTO ductstream_checkpoint_migrations (version) VALUES ($1)", params);
      if (!record.ok()) {
        return Context(record.status(), absl::StrCat("recording migration ", m.version));
      }
    }
    return absl::OkStatus();
  }

  absl::Status PutLocked(const FlowId& flow, const Checkpoint& cp, bool force)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    nlohmann::json metadata = nlohmann::json::object();
    for (const auto& [k, v] : cp.metadata) metadata[k] = v;
    // One statement decides and writes, so two workers racing on the same flow cannot both pass
    // a check that a separate SELECT would have made. The row lock taken by ON CONFLICT orders
    // them; the loser's WHERE sees the winner's row. pg_lsn compares numerically ("0/FFFFFFFF" <
    // "1/0"), which text would get wrong.
    constexpr const char* kUpsert =
        "INSERT INTO checkpoints AS c (flow_id, lsn, generation, metadata, updated_at) "
        "VALUES ($1, $2::pg_lsn, $3::bigint, $4::jsonb, clock_timestamp()) "
        "ON CONFLICT (flow_id) DO UPDATE SET lsn = EXCLUDED.lsn, "
        "generation = EXCLUDED.generation, metadata = EXCLUDED.metadata, "
        "updated_at = EXCLUDED.updated_at "
        "WHERE $5::boolean OR (c.generation <= EXCLUDED.generation AND c.lsn <= EXCLUDED.lsn) "
        "RETURNING 1";
    const std::array<std::optional<std::string>, 5> params = {
        flow.value(), cp.lsn.ToString(), absl::StrCat(cp.generation),
        metadata.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
        force ? "true" : "false"};
    // A refused write is explained by reading the row afterwards. In the meantime an operator's
    // forced rewind may have made the write acceptable, so try again a few times before giving up.
    for (int attempt = 0; attempt < 3; ++attempt) {
      DS_ASSIGN_OR_RETURN(Result written, conn_->ExecParams(kUpsert, params));
      if (RowCount(written) > 0) return absl::OkStatus();
      const std::array<std::optional<std::string>, 1> key = {flow.value()};
      DS_ASSIGN_OR_RETURN(
          Result row, conn_->ExecParams(
                          "SELECT lsn::text, generation FROM checkpoints WHERE flow_id = $1", key));
      if (RowCount(row) == 0) continue;  // deleted meanwhile: the insert will succeed
      DS_ASSIGN_OR_RETURN(Lsn stored, Lsn::Parse(GetValue(row, 0, 0).value_or("")));
      int64_t stored_generation = 0;
      if (!absl::SimpleAtoi(GetValue(row, 0, 1).value_or(""), &stored_generation)) {
        return absl::DataLossError("stored checkpoint has a malformed generation");
      }
      if (cp.generation < stored_generation) {
        return absl::AbortedError(
            absl::StrCat("checkpoint for flow ", flow.value(), " refused: generation ",
                         cp.generation, " is older than the stored generation ", stored_generation,
                         " (this worker was fenced; it must stop)"));
      }
      if (cp.lsn < stored) {
        return absl::FailedPreconditionError(
            absl::StrCat("checkpoint for flow ", flow.value(), " refused: ", cp.lsn.ToString(),
                         " is behind the stored ", stored.ToString(),
                         " (checkpoints only move forward; use an operator override to rewind)"));
      }
    }
    return absl::AbortedError(absl::StrCat("checkpoint for flow ", flow.value(),
                                           " kept changing under concurrent writers; retry"));
  }

  const std::string dsn_;
  absl::Mutex mu_;
  std::unique_ptr<Connection> conn_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<CheckpointStore>> OpenPostgresCheckpointStore(
    const std::string& dsn) {
  return PostgresCheckpointStore::Open(dsn);
}

}  // namespace ductstream::store
