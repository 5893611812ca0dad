#include "ductstream/control/control_store.h"

#include <array>
#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "ductstream/base/status.h"

namespace ductstream::control {
namespace {

using store::SqlDatabase;
using store::SqlMigration;
using store::SqlRow;
using Json = nlohmann::json;

// SPEC §10.2's tables, with the columns the corrected lifecycle needs (generation, failure
// reason, lease). Timestamps are Unix milliseconds from the database clock, so both dialects
// store and compare them the same way.
constexpr SqlMigration kMigrations[] = {
    {"0001_flows",
     // SQLite
     "CREATE TABLE flows ("
     "  id TEXT PRIMARY KEY,"
     "  name TEXT NOT NULL,"
     "  source TEXT NOT NULL,"
     "  destinations TEXT NOT NULL,"
     "  wire_format TEXT,"
     "  parallelism INTEGER NOT NULL DEFAULT 1,"
     "  state TEXT NOT NULL,"
     "  generation INTEGER NOT NULL DEFAULT 1,"
     "  failure_reason TEXT,"
     "  lease_holder TEXT,"
     "  lease_token INTEGER NOT NULL DEFAULT 0,"
     "  lease_generation INTEGER,"
     "  lease_expires_at INTEGER,"
     "  created_at INTEGER NOT NULL,"
     "  updated_at INTEGER NOT NULL);"
     "CREATE INDEX flows_state_idx ON flows (state);"
     "CREATE INDEX flows_created_idx ON flows (created_at, id);"
     "CREATE TABLE flow_state_events ("
     "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
     "  flow_id TEXT NOT NULL,"
     "  from_state TEXT,"
     "  to_state TEXT NOT NULL,"
     "  reason TEXT,"
     "  generation INTEGER NOT NULL,"
     "  created_at INTEGER NOT NULL);"
     "CREATE INDEX flow_state_events_flow_idx ON flow_state_events (flow_id, id)",
     // PostgreSQL
     "CREATE TABLE flows ("
     "  id TEXT PRIMARY KEY,"
     "  name TEXT NOT NULL,"
     "  source JSONB NOT NULL,"
     "  destinations JSONB NOT NULL,"
     "  wire_format TEXT,"
     "  parallelism INTEGER NOT NULL DEFAULT 1,"
     "  state TEXT NOT NULL,"
     "  generation BIGINT NOT NULL DEFAULT 1,"
     "  failure_reason TEXT,"
     "  lease_holder TEXT,"
     "  lease_token BIGINT NOT NULL DEFAULT 0,"
     "  lease_generation BIGINT,"
     "  lease_expires_at BIGINT,"
     "  created_at BIGINT NOT NULL,"
     "  updated_at BIGINT NOT NULL);"
     "CREATE INDEX flows_state_idx ON flows (state);"
     "CREATE INDEX flows_created_idx ON flows (created_at, id);"
     "CREATE TABLE flow_state_events ("
     "  id BIGSERIAL PRIMARY KEY,"
     "  flow_id TEXT NOT NULL REFERENCES flows (id) ON DELETE CASCADE,"
     "  from_state TEXT,"
     "  to_state TEXT NOT NULL,"
     "  reason TEXT,"
     "  generation BIGINT NOT NULL,"
     "  created_at BIGINT NOT NULL);"
     "CREATE INDEX flow_state_events_flow_idx ON flow_state_events (flow_id, id)"},
};

constexpr const char* kFlowColumns =
    "id, name, source, destinations, wire_format, parallelism, state, generation, "
    "failure_reason, created_at, updated_at";

using Params = std::vector<std::optional<std::string>>;

int64_t ToInt(const std::optional<std::string>& v) {
  int64_t out = 0;
  if (v.has_value()) (void)absl::SimpleAtoi(*v, &out);
  return out;
}

// The source / destinations columns hold endpoints as the flow JSON spells them.
struct EndpointColumns {
  std::string source;
  std::string destinations;
};

EndpointColumns ToColumns(const flow::FlowDefinition& definition) {
  const Json all = Json::parse(flow::FlowToJson(definition, /*redact_secrets=*/false));
  return {all.at("source").dump(), all.at("destinations").dump()};
}

absl::StatusOr<FlowRecord> RowToFlow(const SqlRow& row) {
  Json j = Json::object();
  j["id"] = row[0].value_or("");
  j["name"] = row[1].value_or("");
  j["source"] = Json::parse(row[2].value_or("{}"), nullptr, /*allow_exceptions=*/false);
  j["destinations"] = Json::parse(row[3].value_or("[]"), nullptr, /*allow_exceptions=*/false);
  if (row[4].has_value()) j["wire_format"] = *row[4];
  j["parallelism"] = ToInt(row[5]);
  auto definition = flow::ParseFlowJson(j.dump());
  if (!definition.ok()) {
    return absl::DataLossError(absl::StrCat("stored flow ", row[0].value_or(""),
                                            " is unreadable: ", definition.status().message()));
  }
  FlowRecord record;
  record.definition = std::move(*definition);
  DS_ASSIGN_OR_RETURN(record.state, ParseFlowState(row[6].value_or("")));
  record.generation = ToInt(row[7]);
  record.failure_reason = row[8].value_or("");
  record.created_at_unix_millis = ToInt(row[9]);
  record.updated_at_unix_millis = ToInt(row[10]);
  return record;
}

std::optional<std::string> WireFormatColumn(const flow::FlowDefinition& d) {
  if (!d.wire_format.has_value()) return std::nullopt;
  return std::string(codec::WireFormatName(*d.wire_format));
}

}  // namespace

class ControlStore::Impl {
 public:
  explicit Impl(std::unique_ptr<SqlDatabase> db) : db_(std::move(db)) {}

  absl::Mutex mu;
  SqlDatabase& db() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return *db_; }
  std::string Now() const { return db_->NowMillisSql(); }

  absl::StatusOr<FlowRecord> Get(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const Params p = {id};
    DS_ASSIGN_OR_RETURN(
        auto rows,
        db_->Query(absl::StrCat("SELECT ", kFlowColumns, " FROM flows WHERE id = $1"), p));
    if (rows.empty()) return absl::NotFoundError(absl::StrCat("flow \"", id, "\" not found"));
    return RowToFlow(rows[0]);
  }

  absl::Status RecordEvent(const std::string& id, std::optional<FlowState> from, FlowState to,
                           absl::string_view reason, int64_t generation)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const Params p = {
        id, from ? std::optional<std::string>(std::string(FlowStateName(*from))) : std::nullopt,
        std::string(FlowStateName(to)), std::string(reason), absl::StrCat(generation)};
    return db_
        ->Query(absl::StrCat("INSERT INTO flow_state_events (flow_id, from_state, to_state, "
                             "reason, generation, created_at) VALUES ($1, $2, $3, $4, $5, ",
                             Now(), ")"),
                p)
        .status();
  }

 private:
  std::unique_ptr<SqlDatabase> db_;
};

ControlStore::ControlStore(std::unique_ptr<SqlDatabase> db)
    : impl_(std::make_unique<Impl>(std::move(db))) {}
ControlStore::~ControlStore() = default;

absl::StatusOr<std::unique_ptr<ControlStore>> ControlStore::Open(std::unique_ptr<SqlDatabase> db) {
  const std::string where = db->description();
  absl::Status migrated = db->Migrate("ductstream_control_migrations", kMigrations);
  if (!migrated.ok()) {
    return base::Annotate(migrated, absl::StrCat("control store ", where, ": migrating"));
  }
  return std::unique_ptr<ControlStore>(new ControlStore(std::move(db)));
}

std::string ControlStore::description() const {
  absl::MutexLock lock(&impl_->mu);
  return absl::StrCat(impl_->db().dialect() == store::SqlDialect::kSqlite ? "sqlite " : "postgres ",
                      impl_->db().description());
}

absl::StatusOr<FlowRecord> ControlStore::CreateFlow(const flow::FlowDefinition& definition) {
  if (definition.id.empty()) return absl::InvalidArgumentError("flow id: required");
  absl::MutexLock lock(&impl_->mu);
  const EndpointColumns cols = ToColumns(definition);
  absl::Status s = store::InTransaction(impl_->db(), [&]() -> absl::Status {
    const Params p = {definition.id,
                      definition.name,
                      cols.source,
                      cols.destinations,
                      WireFormatColumn(definition),
                      absl::StrCat(definition.parallelism)};
    const std::string now = impl_->Now();
    absl::Status inserted =
        impl_->db()
            .Query(absl::StrCat("INSERT INTO flows (id, name, source, destinations, wire_format, "
                                "parallelism, state, generation, created_at, updated_at) VALUES "
                                "($1, $2, $3, $4, $5, $6, 'created', 1, ",
                                now, ", ", now, ")"),
                   p)
            .status();
    if (inserted.code() == absl::StatusCode::kAlreadyExists) {
      return absl::AlreadyExistsError(absl::StrCat("flow \"", definition.id, "\" already exists"));
    }
    DS_RETURN_IF_ERROR(inserted);
    return impl_->RecordEvent(definition.id, std::nullopt, FlowState::kCreated, "create", 1);
  });
  DS_RETURN_IF_ERROR(s);
  return impl_->Get(definition.id);
}

absl::StatusOr<FlowRecord> ControlStore::GetFlow(const std::string& id) {
  absl::MutexLock lock(&impl_->mu);
  return impl_->Get(id);
}

absl::StatusOr<std::vector<FlowRecord>> ControlStore::ListFlows(
    const std::optional<FlowCursor>& after, int limit) {
  absl::MutexLock lock(&impl_->mu);
  Params p = {absl::StrCat(after ? after->created_at_unix_millis : INT64_MIN),
              after ? after->id : std::string(), absl::StrCat(limit)};
  DS_ASSIGN_OR_RETURN(
      auto rows,
      impl_->db().Query(absl::StrCat("SELECT ", kFlowColumns,
                                     " FROM flows WHERE created_at > CAST($1 AS BIGINT) OR "
                                     "(created_at = CAST($1 AS BIGINT) AND id > $2) ORDER BY "
                                     "created_at, id LIMIT CAST($3 AS INTEGER)"),
                        p));
  std::vector<FlowRecord> out;
  out.reserve(rows.size());
  for (const SqlRow& row : rows) {
    DS_ASSIGN_OR_RETURN(FlowRecord record, RowToFlow(row));
    out.push_back(std::move(record));
  }
  return out;
}

absl::StatusOr<FlowRecord> ControlStore::UpdateFlow(const flow::FlowDefinition& definition) {
  absl::MutexLock lock(&impl_->mu);
  const EndpointColumns cols = ToColumns(definition);
  const Params p = {definition.id,
                    definition.name,
                    cols.source,
                    cols.destinations,
                    WireFormatColumn(definition),
                    absl::StrCat(definition.parallelism)};
  // Conditional on the state, so a flow started concurrently is never changed under its worker.
  DS_ASSIGN_OR_RETURN(
      auto rows,
      impl_->db().Query(
          absl::StrCat("UPDATE flows SET name = $2, source = $3, destinations = $4, "
                       "wire_format = $5, parallelism = CAST($6 AS INTEGER), updated_at = ",
                       impl_->Now(),
                       " WHERE id = $1 AND state NOT IN ('running', 'stopping') RETURNING id"),
          p));
  if (rows.empty()) {
    DS_ASSIGN_OR_RETURN(FlowRecord current, impl_->Get(definition.id));
    return absl::FailedPreconditionError(absl::StrCat("flow \"", definition.id, "\" is ",
                                                      FlowStateName(current.state),
                                                      "; pause or stop it before updating it"));
  }
  return impl_->Get(definition.id);
}

absl::StatusOr<bool> ControlStore::DeleteFlow(const std::string& id) {
  absl::MutexLock lock(&impl_->mu);
  bool deleted = false;
  DS_RETURN_IF_ERROR(store::InTransaction(impl_->db(), [&]() -> absl::Status {
    const Params p = {id};
    DS_RETURN_IF_ERROR(
        impl_->db().Query("DELETE FROM flow_state_events WHERE flow_id = $1", p).status());
    DS_ASSIGN_OR_RETURN(auto rows,
                        impl_->db().Query("DELETE FROM flows WHERE id = $1 RETURNING id", p));
    deleted = !rows.empty();
    return absl::OkStatus();
  }));
  return deleted;
}

absl::StatusOr<FlowRecord> ControlStore::Transition(const std::string& id, FlowOp op,
                                                    const std::string& reason) {
  absl::MutexLock lock(&impl_->mu);
  // Read, decide, then write conditionally on what was read (state and generation): a concurrent
  // transition by another server makes the write miss, and the decision is taken again.
  for (int attempt = 0; attempt < 5; ++attempt) {
    DS_ASSIGN_OR_RETURN(FlowRecord current, impl_->Get(id));
    DS_ASSIGN_OR_RETURN(FlowState next, NextState(id, current.state, op));
    const std::string why = reason.empty() ? std::string(FlowOpName(op)) : reason;
    const std::optional<std::string> failure =
        op == FlowOp::kFail ? std::optional<std::string>(why) : std::nullopt;
    bool applied = false;
    DS_RETURN_IF_ERROR(store::InTransaction(impl_->db(), [&]() -> absl::Status {
      const Params p = {id, std::string(FlowStateName(next)), failure,
                        std::string(FlowStateName(current.state)),
                        absl::StrCat(current.generation)};
      DS_ASSIGN_OR_RETURN(
          auto rows,
          impl_->db().Query(absl::StrCat("UPDATE flows SET state = $2, failure_reason = $3, "
                                         "generation = generation + 1, updated_at = ",
                                         impl_->Now(),
                                         " WHERE id = $1 AND state = $4 AND generation = "
                                         "CAST($5 AS BIGINT) RETURNING generation"),
                            p));
      if (rows.empty()) return absl::OkStatus();
      applied = true;
      return impl_->RecordEvent(id, current.state, next, why, ToInt(rows[0][0]));
    }));
    if (applied) return impl_->Get(id);
  }
  return absl::AbortedError(
      absl::StrCat("flow \"", id, "\" kept changing under concurrent transitions; retry"));
}

absl::StatusOr<std::vector<StateEvent>> ControlStore::ListEvents(const std::string& id) {
  absl::MutexLock lock(&impl_->mu);
  const Params p = {id};
  DS_ASSIGN_OR_RETURN(
      auto rows, impl_->db().Query("SELECT from_state, to_state, reason, generation, created_at "
                                   "FROM flow_state_events WHERE flow_id = $1 ORDER BY id",
                                   p));
  std::vector<StateEvent> out;
  for (const SqlRow& row : rows) {
    StateEvent e;
    if (row[0].has_value()) {
      DS_ASSIGN_OR_RETURN(e.from, ParseFlowState(*row[0]));
    }
    DS_ASSIGN_OR_RETURN(e.to, ParseFlowState(row[1].value_or("")));
    e.reason = row[2].value_or("");
    e.generation = ToInt(row[3]);
    e.at_unix_millis = ToInt(row[4]);
    out.push_back(std::move(e));
  }
  return out;
}

absl::StatusOr<Lease> ControlStore::AcquireLease(const std::string& id, int64_t generation,
                                                 const std::string& holder, absl::Duration ttl) {
  absl::MutexLock lock(&impl_->mu);
  const std::string now = impl_->Now();
  const Params p = {id, holder, absl::StrCat(generation),
                    absl::StrCat(absl::ToInt64Milliseconds(ttl))};
  DS_ASSIGN_OR_RETURN(
      auto rows,
      impl_->db().Query(
          absl::StrCat("UPDATE flows SET lease_holder = $2, lease_token = lease_token + 1, "
                       "lease_generation = CAST($3 AS BIGINT), lease_expires_at = ",
                       now,
                       " + CAST($4 AS BIGINT) WHERE id = $1 AND state = 'running' AND generation "
                       "= CAST($3 AS BIGINT) AND (lease_holder IS NULL OR lease_holder = $2 OR "
                       "lease_generation <> CAST($3 AS BIGINT) OR lease_expires_at < ",
                       now, ") RETURNING lease_token, lease_expires_at"),
          p));
  if (!rows.empty()) {
    return Lease{holder, ToInt(rows[0][0]), generation, ToInt(rows[0][1]), false};
  }
  // Explain the refusal.
  DS_ASSIGN_OR_RETURN(FlowRecord current, impl_->Get(id));
  if (current.state != FlowState::kRunning) {
    return absl::FailedPreconditionError(absl::StrCat("flow \"", id, "\" is ",
                                                      FlowStateName(current.state),
                                                      ", not running: no worker may run it"));
  }
  if (current.generation != generation) {
    return absl::FailedPreconditionError(absl::StrCat("flow \"", id, "\" is at generation ",
                                                      current.generation, ", not the requested ",
                                                      generation, ": this worker is stale"));
  }
  const Params q = {id};
  DS_ASSIGN_OR_RETURN(auto lease_rows,
                      impl_->db().Query(absl::StrCat("SELECT lease_holder, lease_expires_at - ",
                                                     now, " FROM flows WHERE id = $1"),
                                        q));
  const std::string other = lease_rows.empty() ? "?" : lease_rows[0][0].value_or("?");
  const int64_t left_ms = lease_rows.empty() ? 0 : ToInt(lease_rows[0][1]);
  return absl::UnavailableError(absl::StrCat("flow \"", id, "\" is held by worker ", other,
                                             " (its lease expires in ", left_ms / 1000.0,
                                             " s unless renewed); only one worker runs a flow"));
}

absl::Status ControlStore::RenewLease(const std::string& id, const Lease& lease,
                                      absl::Duration ttl) {
  absl::MutexLock lock(&impl_->mu);
  const Params p = {id, lease.holder, absl::StrCat(lease.token), absl::StrCat(lease.generation),
                    absl::StrCat(absl::ToInt64Milliseconds(ttl))};
  DS_ASSIGN_OR_RETURN(
      auto rows,
      impl_->db().Query(
          absl::StrCat("UPDATE flows SET lease_expires_at = ", impl_->Now(),
                       " + CAST($5 AS BIGINT) WHERE id = $1 AND lease_holder = $2 AND "
                       "lease_token = CAST($3 AS BIGINT) AND state = 'running' AND generation = "
                       "CAST($4 AS BIGINT) RETURNING id"),
          p));
  if (!rows.empty()) return absl::OkStatus();
  auto current = impl_->Get(id);
  if (!current.ok()) {
    return absl::AbortedError(absl::StrCat("lease on flow \"", id, "\" lost: the flow is gone (",
                                           current.status().message(), ")"));
  }
  if (current->state != FlowState::kRunning || current->generation != lease.generation) {
    return absl::AbortedError(absl::StrCat("lease on flow \"", id, "\" ended: the flow is now ",
                                           FlowStateName(current->state), " (generation ",
                                           current->generation, ")"));
  }
  return absl::AbortedError(
      absl::StrCat("lease on flow \"", id, "\" lost: another worker took it over"));
}

absl::Status ControlStore::ReleaseLease(const std::string& id, const Lease& lease) {
  absl::MutexLock lock(&impl_->mu);
  const Params p = {id, lease.holder, absl::StrCat(lease.token)};
  return impl_->db()
      .Query(
          "UPDATE flows SET lease_holder = NULL, lease_expires_at = NULL WHERE id = $1 AND "
          "lease_holder = $2 AND lease_token = CAST($3 AS BIGINT)",
          p)
      .status();
}

absl::StatusOr<std::optional<Lease>> ControlStore::GetLease(const std::string& id) {
  absl::MutexLock lock(&impl_->mu);
  const Params p = {id};
  DS_ASSIGN_OR_RETURN(
      auto rows,
      impl_->db().Query(
          absl::StrCat("SELECT lease_holder, lease_token, lease_generation, lease_expires_at, ",
                       "CASE WHEN lease_expires_at < ", impl_->Now(),
                       " THEN 1 ELSE 0 END FROM flows WHERE id = $1"),
          p));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("flow \"", id, "\" not found"));
  if (!rows[0][0].has_value()) return std::optional<Lease>();
  return std::optional<Lease>(Lease{*rows[0][0], ToInt(rows[0][1]), ToInt(rows[0][2]),
                                    ToInt(rows[0][3]), ToInt(rows[0][4]) != 0});
}

absl::StatusOr<StateDatabase> SelectStateDatabase(const store::EnvLookup& env) {
  // The control DSN decides alone; DUCTSTREAM_CHECKPOINT_BACKEND only chooses where a server
  // without one keeps checkpoints, and the control store always needs a home.
  const store::EnvLookup without_backend = [&env](absl::string_view name) {
    if (name == "DUCTSTREAM_CHECKPOINT_BACKEND") return std::optional<std::string>();
    return env(name);
  };
  DS_ASSIGN_OR_RETURN(
      store::CheckpointStoreSelection selection,
      store::SelectCheckpointBackend(without_backend, store::DefaultCheckpointBackend::kSqlite));
  StateDatabase out;
  out.dialect = selection.backend == store::CheckpointBackend::kPostgres
                    ? store::SqlDialect::kPostgres
                    : store::SqlDialect::kSqlite;
  out.target = selection.target;
  out.description = selection.description;
  return out;
}

absl::StatusOr<std::unique_ptr<ControlStore>> OpenControlStore(const StateDatabase& where) {
  std::unique_ptr<SqlDatabase> db;
  if (where.dialect == store::SqlDialect::kPostgres) {
    DS_ASSIGN_OR_RETURN(db, store::OpenPostgresDatabase(where.target));
  } else {
    DS_ASSIGN_OR_RETURN(db, store::OpenSqliteDatabase(where.target));
  }
  return ControlStore::Open(std::move(db));
}

absl::StatusOr<std::unique_ptr<store::CheckpointStore>> OpenCheckpointStore(
    const StateDatabase& where) {
  if (where.dialect == store::SqlDialect::kPostgres) {
    return store::OpenPostgresCheckpointStore(where.target);
  }
  return store::OpenSqliteCheckpointStore(where.target);
}

}  // namespace ductstream::control
