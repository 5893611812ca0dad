#include <sqlite3.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "ductstream/base/status.h"
#include "ductstream/store/checkpoint_store.h"

namespace ductstream::store {
namespace {

// Versioned migrations; each runs once, in order, inside the same write transaction that records
// it, so a crash mid-migration leaves the previous version intact.
constexpr const char* kMigrations[] = {
    // 1: checkpoints
    "CREATE TABLE checkpoints ("
    "  flow_id TEXT PRIMARY KEY,"
    "  lsn TEXT NOT NULL,"
    "  lsn_value INTEGER NOT NULL,"
    "  generation INTEGER NOT NULL DEFAULT 0,"
    "  metadata TEXT NOT NULL DEFAULT '{}',"
    "  updated_at INTEGER NOT NULL)",
};

absl::Status SqliteError(sqlite3* db, absl::string_view what) {
  const int code = sqlite3_errcode(db);
  const absl::StatusCode status_code = (code == SQLITE_BUSY || code == SQLITE_LOCKED)
                                           ? absl::StatusCode::kUnavailable
                                           : absl::StatusCode::kInternal;
  return absl::Status(status_code, absl::StrCat(what, ": ", sqlite3_errmsg(db)));
}

// A prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

std::string Text(sqlite3_stmt* stmt, int col) {
  const unsigned char* p = sqlite3_column_text(stmt, col);
  return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p));
}

absl::StatusOr<Checkpoint> RowToCheckpoint(sqlite3_stmt* stmt, int first_col) {
  Checkpoint cp;
  DS_ASSIGN_OR_RETURN(cp.lsn, Lsn::Parse(Text(stmt, first_col)));
  cp.generation = sqlite3_column_int64(stmt, first_col + 1);
  auto metadata =
      nlohmann::json::parse(Text(stmt, first_col + 2), nullptr, /*allow_exceptions=*/false);
  if (!metadata.is_object()) return absl::DataLossError("checkpoint metadata is not a JSON object");
  for (const auto& [k, v] : metadata.items()) {
    if (v.is_string()) cp.metadata[k] = v.get<std::string>();
  }
  cp.updated_at_unix_millis = sqlite3_column_int64(stmt, first_col + 3);
  return cp;
}

/// Thread-safe: one connection guarded by a mutex; other processes are serialised by SQLite's
/// file locks (BEGIN IMMEDIATE takes the write lock up front, so check-then-write is atomic).
class SqliteCheckpointStore final : public CheckpointStore {
 public:
  static absl::StatusOr<std::unique_ptr<CheckpointStore>> Open(const std::string& path) {
    std::error_code ec;
    const auto dir = std::filesystem::path(path).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK) {
      absl::Status s = absl::UnavailableError(absl::StrCat(
          "opening checkpoint database ", path, ": ", db ? sqlite3_errmsg(db) : "out of memory"));
      sqlite3_close(db);
      return s;
    }
    std::unique_ptr<SqliteCheckpointStore> store(new SqliteCheckpointStore(db, path));
    DS_RETURN_IF_ERROR(store->Migrate());
    return store;
  }

  ~SqliteCheckpointStore() override { sqlite3_close(db_); }

  absl::StatusOr<Checkpoint> Get(const FlowId& flow) override {
    absl::MutexLock lock(&mu_);
    Statement stmt(
        db_, "SELECT lsn, generation, metadata, updated_at FROM checkpoints WHERE flow_id = ?");
    if (!stmt.ok()) return SqliteError(db_, "preparing checkpoint read");
    sqlite3_bind_text(stmt.get(), 1, flow.value().c_str(), -1, SQLITE_TRANSIENT);
    const int rc = sqlite3_step(stmt.get());
    if (rc == SQLITE_DONE) {
      return absl::NotFoundError(absl::StrCat("no checkpoint for flow ", flow.value()));
    }
    if (rc != SQLITE_ROW) return SqliteError(db_, "reading checkpoint");
    return RowToCheckpoint(stmt.get(), 0);
  }

  absl::Status Put(const FlowId& flow, const Checkpoint& checkpoint, bool force) override {
    absl::MutexLock lock(&mu_);
    DS_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    absl::Status s = PutLocked(flow, checkpoint, force);
    if (!s.ok()) {
      (void)Exec("ROLLBACK");
      return s;
    }
    return Exec("COMMIT");
  }

  absl::Status Fence(const FlowId& flow, int64_t generation) override {
    absl::MutexLock lock(&mu_);
    Statement stmt(db_,
                   "INSERT INTO checkpoints (flow_id, lsn, lsn_value, generation, metadata, "
                   "updated_at) VALUES (?, '0/0', 0, ?, '{}', ?) ON CONFLICT (flow_id) DO UPDATE "
                   "SET generation = max(generation, excluded.generation)");
    if (!stmt.ok()) return SqliteError(db_, "preparing checkpoint fence");
    sqlite3_bind_text(stmt.get(), 1, flow.value().c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt.get(), 2, generation);
    sqlite3_bind_int64(stmt.get(), 3, absl::ToUnixMillis(absl::Now()));
    if (sqlite3_step(stmt.get()) != SQLITE_DONE) return SqliteError(db_, "fencing checkpoint");
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::pair<FlowId, Checkpoint>>> List() override {
    absl::MutexLock lock(&mu_);
    Statement stmt(db_,
                   "SELECT flow_id, lsn, generation, metadata, updated_at FROM checkpoints "
                   "ORDER BY updated_at DESC, flow_id");
    if (!stmt.ok()) return SqliteError(db_, "preparing checkpoint list");
    std::vector<std::pair<FlowId, Checkpoint>> out;
    int rc;
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
      DS_ASSIGN_OR_RETURN(Checkpoint cp, RowToCheckpoint(stmt.get(), 1));
      out.emplace_back(FlowId(Text(stmt.get(), 0)), std::move(cp));
    }
    if (rc != SQLITE_DONE) return SqliteError(db_, "listing checkpoints");
    return out;
  }

 private:
  SqliteCheckpointStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {
    sqlite3_busy_timeout(db_, 10000);
  }

  absl::Status Exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      absl::Status s = SqliteError(db_, absl::StrCat("checkpoint database ", path_, ": ", sql));
      sqlite3_free(err);
      return s;
    }
    return absl::OkStatus();
  }

  absl::Status Migrate() {
    absl::MutexLock lock(&mu_);
    // WAL keeps readers off the writer's back; synchronous=FULL makes every commit durable,
    // which is the point of a checkpoint.
    DS_RETURN_IF_ERROR(Exec("PRAGMA journal_mode=WAL"));
    DS_RETURN_IF_ERROR(Exec("PRAGMA synchronous=FULL"));
    DS_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    absl::Status s = MigrateLocked();
    if (!s.ok()) {
      (void)Exec("ROLLBACK");
      return s;
    }
    return Exec("COMMIT");
  }

  absl::Status MigrateLocked() {
    DS_RETURN_IF_ERROR(
        Exec("CREATE TABLE IF NOT EXISTS ductstream_migrations ("
             "  version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"));
    Statement current(db_, "SELECT coalesce(max(version), 0) FROM ductstream_migrations");
    if (!current.ok() || sqlite3_step(current.get()) != SQLITE_ROW) {
      return SqliteError(db_, "reading the migration version");
    }
    const int64_t applied = sqlite3_column_int64(current.get(), 0);
    const int64_t known = static_cast<int64_t>(std::size(kMigrations));
    if (applied > known) {
      return absl::FailedPreconditionError(
          absl::StrCat("checkpoint database ", path_, " is at migration ", applied,
                       " but this build knows only ", known, ": upgrade DuctStream"));
    }
    for (int64_t v = applied + 1; v <= known; ++v) {
      DS_RETURN_IF_ERROR(Exec(kMigrations[v - 1]));
      Statement record(db_, "INSERT INTO ductstream_migrations VALUES (?, ?)");
      sqlite3_bind_int64(record.get(), 1, v);
      sqlite3_bind_int64(record.get(), 2, absl::ToUnixMillis(absl::Now()));
      if (sqlite3_step(record.get()) != SQLITE_DONE) return SqliteError(db_, "recording migration");
    }
    return absl::OkStatus();
  }

  absl::Status PutLocked(const FlowId& flow, const Checkpoint& cp, bool force)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!force) {
      Statement read(db_, "SELECT lsn, generation FROM checkpoints WHERE flow_id = ?");
      sqlite3_bind_text(read.get(), 1, flow.value().c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(read.get()) == SQLITE_ROW) {
        DS_ASSIGN_OR_RETURN(Lsn stored, Lsn::Parse(Text(read.get(), 0)));
        const int64_t stored_generation = sqlite3_column_int64(read.get(), 1);
        if (cp.generation < stored_generation) {
          return absl::AbortedError(
              absl::StrCat("checkpoint for flow ", flow.value(), " refused: generation ",
                           cp.generation, " is older than the stored generation ",
                           stored_generation, " (this worker was fenced; it must stop)"));
        }
        if (cp.lsn < stored) {
          return absl::FailedPreconditionError(
              absl::StrCat("checkpoint for flow ", flow.value(), " refused: ", cp.lsn.ToString(),
                           " is behind the stored ", stored.ToString(),
                           " (checkpoints only move forward; use an operator override to rewind)"));
        }
      }
    }
    nlohmann::json metadata = nlohmann::json::object();
    for (const auto& [k, v] : cp.metadata) metadata[k] = v;
    Statement upsert(db_,
                     "INSERT INTO checkpoints (flow_id, lsn, lsn_value, generation, metadata, "
                     "updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (flow_id) DO UPDATE SET "
                     "lsn = excluded.lsn, lsn_value = excluded.lsn_value, "
                     "generation = excluded.generation, metadata = excluded.metadata, "
                     "updated_at = excluded.updated_at");
    const std::string lsn_text = cp.lsn.ToString();
    const std::string metadata_text = metadata.dump();
    sqlite3_bind_text(upsert.get(), 1, flow.value().c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(upsert.get(), 2, lsn_text.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(upsert.get(), 3, static_cast<int64_t>(cp.lsn.value()));
    sqlite3_bind_int64(upsert.get(), 4, cp.generation);
    sqlite3_bind_text(upsert.get(), 5, metadata_text.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(upsert.get(), 6, absl::ToUnixMillis(absl::Now()));
    if (sqlite3_step(upsert.get()) != SQLITE_DONE) return SqliteError(db_, "writing checkpoint");
    return absl::OkStatus();
  }

  absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
  const std::string path_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CheckpointStore>> OpenSqliteCheckpointStore(
    const std::string& path) {
  return SqliteCheckpointStore::Open(path);
}

}  // namespace ductstream::store
