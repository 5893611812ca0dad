#include "ductstream/snapshot/state.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ductstream/base/status.h"
#include "ductstream/postgres/replication.h"
#include "ductstream/store/sql_db.h"
#include "nlohmann/json.hpp"

namespace ductstream::snapshot {
namespace {

int64_t NowMillis() { return absl::ToUnixMillis(absl::Now()); }

absl::StatusOr<RunStatus> ParseRunStatus(absl::string_view s) {
  if (s == "planning") return RunStatus::kPlanning;
  if (s == "copying") return RunStatus::kCopying;
  if (s == "done") return RunStatus::kDone;
  return absl::DataLossError(absl::StrCat("snapshot state: unknown run status \"", s, "\""));
}

class MemoryState : public SnapshotState {
 public:
  explicit MemoryState(std::string description) : description_(std::move(description)) {}
  const std::string& description() const override { return description_; }

  absl::StatusOr<std::optional<SnapshotRun>> Load(const std::string& key) override {
    auto it = runs_.find(key);
    if (it == runs_.end()) return std::optional<SnapshotRun>();
    return std::optional<SnapshotRun>(it->second);
  }
  absl::Status Save(const SnapshotRun& run) override {
    SnapshotRun copy = run;
    copy.updated_at_unix_millis = NowMillis();
    runs_[run.key] = std::move(copy);
    return Persist();
  }
  absl::Status MarkChunkDone(const std::string& key, const Chunk& chunk) override {
    DS_ASSIGN_OR_RETURN(SnapshotRun * run, Find(key));
    for (Chunk& c : run->chunks) {
      if (c.table == chunk.table && c.index == chunk.index) {
        c.done = true;
        c.rows = chunk.rows;
        c.bytes = chunk.bytes;
        run->updated_at_unix_millis = NowMillis();
        return Persist();
      }
    }
    return absl::NotFoundError(
        absl::StrCat("snapshot state: no chunk ", chunk.table, " #", chunk.index, " in run ", key));
  }
  absl::Status SetStatus(const std::string& key, RunStatus status) override {
    DS_ASSIGN_OR_RETURN(SnapshotRun * run, Find(key));
    run->status = status;
    run->updated_at_unix_millis = NowMillis();
    return Persist();
  }

 protected:
  virtual absl::Status Persist() { return absl::OkStatus(); }

  absl::StatusOr<SnapshotRun*> Find(const std::string& key) {
    auto it = runs_.find(key);
    if (it == runs_.end()) {
      return absl::NotFoundError(absl::StrCat("snapshot state: no run ", key));
    }
    return &it->second;
  }

  std::string description_;
  std::map<std::string, SnapshotRun> runs_;
};

// The whole file is small (one entry per chunk), so every change rewrites it; the rename makes
// each rewrite atomic and the fsyncs make it durable before the caller moves on.
class FileState final : public MemoryState {
 public:
  explicit FileState(std::string path) : MemoryState(absl::StrCat("file ", path)), path_(path) {}

  absl::StatusOr<std::optional<SnapshotRun>> Load(const std::string& key) override {
    if (!loaded_) {
      DS_RETURN_IF_ERROR(Read());
      loaded_ = true;
    }
    return MemoryState::Load(key);
  }

 private:
  absl::Status Read() {
    std::ifstream in(path_);
    if (!in) return absl::OkStatus();  // no file yet: nothing stored
    nlohmann::json doc;
    try {
      in >> doc;
      for (const auto& [key, j] : doc.items()) {
        SnapshotRun run;
        run.key = key;
        run.kind = j.at("kind").get<std::string>();
        DS_ASSIGN_OR_RETURN(run.status, ParseRunStatus(j.at("status").get<std::string>()));
        if (auto lsn = j.value("lsn", std::string()); !lsn.empty()) {
          DS_ASSIGN_OR_RETURN(run.lsn, Lsn::Parse(lsn));
        }
        run.updated_at_unix_millis = j.value("updated_at_unix_millis", int64_t{0});
        for (const auto& c : j.at("chunks")) {
          Chunk chunk;
          chunk.table = c.at("table").get<std::string>();
          chunk.index = c.at("index").get<int>();
          chunk.count = c.at("count").get<int>();
          chunk.range = c.at("range").get<std::string>();
          chunk.done = c.at("done").get<bool>();
          chunk.rows = c.value("rows", int64_t{0});
          chunk.bytes = c.value("bytes", int64_t{0});
          chunk.rows_estimate = c.value("rows_estimate", int64_t{0});
          chunk.bytes_estimate = c.value("bytes_estimate", int64_t{0});
          run.chunks.push_back(std::move(chunk));
        }
        runs_[key] = std::move(run);
      }
    } catch (const nlohmann::json::exception& e) {
      return absl::DataLossError(absl::StrCat("snapshot state file ", path_,
                                              " is not valid: ", e.what(),
                                              " (delete it to restart the snapshot from scratch)"));
    }
    return absl::OkStatus();
  }

  absl::Status Persist() override {
    nlohmann::json doc = nlohmann::json::object();
    for (const auto& [key, run] : runs_) {
      nlohmann::json chunks = nlohmann::json::array();
      for (const Chunk& c : run.chunks) {
        chunks.push_back({{"table", c.table},
                          {"index", c.index},
                          {"count", c.count},
                          {"range", c.range},
                          {"done", c.done},
                          {"rows", c.rows},
                          {"bytes", c.bytes},
                          {"rows_estimate", c.rows_estimate},
                          {"bytes_estimate", c.bytes_estimate}});
      }
      doc[key] = {{"kind", run.kind},
                  {"status", std::string(RunStatusName(run.status))},
                  {"lsn", run.lsn.valid() ? run.lsn.ToString() : std::string()},
                  {"updated_at_unix_millis", run.updated_at_unix_millis},
                  {"chunks", std::move(chunks)}};
    }
    const std::string text = doc.dump(2);
    std::error_code ec;
    const std::filesystem::path path(path_);
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
    const std::string tmp = path_ + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return absl::InternalError(absl::StrCat("snapshot state: cannot write ", tmp));
    size_t written = 0;
    while (written < text.size()) {
      const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
      if (n <= 0) {
        ::close(fd);
        return absl::InternalError(absl::StrCat("snapshot state: writing ", tmp, " failed"));
      }
      written += static_cast<size_t>(n);
    }
    const bool synced = ::fsync(fd) == 0;
    ::close(fd);
    if (!synced || std::rename(tmp.c_str(), path_.c_str()) != 0) {
      return absl::InternalError(absl::StrCat("snapshot state: replacing ", path_, " failed"));
    }
    return absl::OkStatus();
  }

  std::string path_;
  bool loaded_ = false;
};

class PostgresState final : public SnapshotState {
 public:
  PostgresState(std::unique_ptr<store::SqlDatabase> db, std::string schema, std::string table)
      : db_(std::move(db)),
        schema_(std::move(schema)),
        table_(absl::StrCat(postgres::QuoteIdent(schema_), ".", postgres::QuoteIdent(table))),
        description_(absl::StrCat("table ", table_, " in ", db_->description())) {}

  const std::string& description() const override { return description_; }

  absl::StatusOr<std::optional<SnapshotRun>> Load(const std::string& key) override {
    // A flow that never snapshotted needs no table (nor the right to create one): a missing
    // table holds no run.
    if (!created_) {
      const std::vector<std::optional<std::string>> name = {table_};
      DS_ASSIGN_OR_RETURN(auto found, db_->Query("SELECT to_regclass($1)::text", name));
      if (found.empty() || !found[0][0].has_value()) return std::optional<SnapshotRun>();
    }
    const std::vector<std::optional<std::string>> params = {key};
    DS_ASSIGN_OR_RETURN(
        auto rows,
        db_->Query(absl::StrCat("SELECT table_name, partition_index, partition_count, cursor, "
                                "status, rows_done, bytes_done, rows_estimate, bytes_estimate, "
                                "snapshot_lsn, (extract(epoch from updated_at) * 1000)::bigint "
                                "FROM ",
                                table_, " WHERE flow_id = $1 ORDER BY table_name, partition_index"),
                   params));
    std::optional<SnapshotRun> run;
    std::vector<Chunk> chunks;
    for (const store::SqlRow& row : rows) {
      auto text = [&](int i) { return row[i].value_or(""); };
      auto number = [&](int i) {
        int64_t v = 0;
        (void)absl::SimpleAtoi(text(i), &v);
        return v;
      };
      if (text(0).empty()) {
        run.emplace();
        run->key = key;
        run->kind = text(3);
        DS_ASSIGN_OR_RETURN(run->status, ParseRunStatus(text(4)));
        if (!text(9).empty()) {
          DS_ASSIGN_OR_RETURN(run->lsn, Lsn::Parse(text(9)));
        }
        run->updated_at_unix_millis = number(10);
        continue;
      }
      Chunk c;
      c.table = text(0);
      c.index = static_cast<int>(number(1));
      c.count = static_cast<int>(number(2));
      c.range = text(3);
      c.done = text(4) == "done";
      c.rows = number(5);
      c.bytes = number(6);
      c.rows_estimate = number(7);
      c.bytes_estimate = number(8);
      chunks.push_back(std::move(c));
    }
    if (run.has_value()) run->chunks = std::move(chunks);
    return run;
  }

  absl::Status Save(const SnapshotRun& run) override {
    DS_RETURN_IF_ERROR(EnsureTable());
    return store::InTransaction(*db_, [&]() -> absl::Status {
      const std::vector<std::optional<std::string>> key = {run.key};
      DS_RETURN_IF_ERROR(
          db_->Query(absl::StrCat("DELETE FROM ", table_, " WHERE flow_id = $1"), key).status());
      const std::string insert = absl::StrCat(
          "INSERT INTO ", table_,
          " (flow_id, table_name, partition_index, partition_count, cursor, status, rows_done, "
          "bytes_done, rows_estimate, bytes_estimate, snapshot_lsn) "
          "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)");
      const std::vector<std::optional<std::string>> head = {
          run.key,
          std::string(),
          "0",
          "1",
          run.kind,
          std::string(RunStatusName(run.status)),
          "0",
          "0",
          "0",
          "0",
          run.lsn.valid() ? std::optional<std::string>(run.lsn.ToString()) : std::nullopt};
      DS_RETURN_IF_ERROR(db_->Query(insert, head).status());
      for (const Chunk& c : run.chunks) {
        const std::vector<std::optional<std::string>> p = {run.key,
                                                           c.table,
                                                           absl::StrCat(c.index),
                                                           absl::StrCat(c.count),
                                                           c.range,
                                                           c.done ? "done" : "pending",
                                                           absl::StrCat(c.rows),
                                                           absl::StrCat(c.bytes),
                                                           absl::StrCat(c.rows_estimate),
                                                           absl::StrCat(c.bytes_estimate),
                                                           std::nullopt};
        DS_RETURN_IF_ERROR(db_->Query(insert, p).status());
      }
      return absl::OkStatus();
    });
  }

  absl::Status MarkChunkDone(const std::string& key, const Chunk& chunk) override {
    const std::vector<std::optional<std::string>> p = {key, chunk.table, absl::StrCat(chunk.index),
                                                       absl::StrCat(chunk.rows),
                                                       absl::StrCat(chunk.bytes)};
    DS_ASSIGN_OR_RETURN(
        auto rows,
        db_->Query(absl::StrCat("UPDATE ", table_,
                                " SET status = 'done', rows_done = $4, bytes_done = $5, "
                                "updated_at = now() WHERE flow_id = $1 AND table_name = $2 AND "
                                "partition_index = $3 RETURNING flow_id"),
                   p));
    if (rows.empty()) {
      return absl::NotFoundError(absl::StrCat("snapshot state: no chunk ", chunk.table, " #",
                                              chunk.index, " in run ", key, " (", description_,
                                              ")"));
    }
    return absl::OkStatus();
  }

  absl::Status SetStatus(const std::string& key, RunStatus status) override {
    const std::vector<std::optional<std::string>> p = {key, std::string(RunStatusName(status))};
    return db_
        ->Query(absl::StrCat("UPDATE ", table_,
                             " SET status = $2, updated_at = now() WHERE flow_id = $1 AND "
                             "table_name = ''"),
                p)
        .status();
  }

 private:
  // Created on the first write. IF NOT EXISTS under a transaction-scoped advisory lock: workers
  // racing to create it are serialised.
  absl::Status EnsureTable() {
    if (created_) return absl::OkStatus();
    absl::Status created = store::InTransaction(*db_, [&]() -> absl::Status {
      DS_RETURN_IF_ERROR(db_->Execute("SELECT pg_advisory_xact_lock(7277632145961402483)"));
      return db_->Execute(absl::StrCat(
          "CREATE SCHEMA IF NOT EXISTS ", postgres::QuoteIdent(schema_),
          "; CREATE TABLE IF NOT EXISTS ", table_,
          " (flow_id TEXT NOT NULL, table_name TEXT NOT NULL, partition_index INTEGER NOT NULL "
          "DEFAULT 0, partition_count INTEGER NOT NULL DEFAULT 1, cursor TEXT, status TEXT NOT "
          "NULL DEFAULT 'running', updated_at TIMESTAMPTZ NOT NULL DEFAULT now(), rows_done "
          "BIGINT NOT NULL DEFAULT 0, bytes_done BIGINT NOT NULL DEFAULT 0, rows_estimate BIGINT "
          "NOT NULL DEFAULT 0, bytes_estimate BIGINT NOT NULL DEFAULT 0, snapshot_lsn TEXT, "
          "PRIMARY KEY (flow_id, table_name, partition_index))"));
    });
    if (!created.ok()) {
      return base::Annotate(created, absl::StrCat("creating the snapshot state table ", table_,
                                                  " (set source.options.snapshot_state_dsn to a "
                                                  "database where the worker may create tables, "
                                                  "or snapshot_state_backend=file)"));
    }
    created_ = true;
    return absl::OkStatus();
  }

  std::unique_ptr<store::SqlDatabase> db_;
  std::string schema_;
  std::string table_;
  std::string description_;
  bool created_ = false;
};

}  // namespace

absl::string_view RunStatusName(RunStatus status) {
  switch (status) {
    case RunStatus::kPlanning:
      return "planning";
    case RunStatus::kCopying:
      return "copying";
    case RunStatus::kDone:
      return "done";
  }
  return "unknown";
}

int64_t SnapshotRun::chunks_done() const {
  int64_t n = 0;
  for (const Chunk& c : chunks) n += c.done ? 1 : 0;
  return n;
}

std::vector<TableProgress> SummarizeByTable(const SnapshotRun& run) {
  std::vector<TableProgress> out;
  std::map<std::string, size_t> index;
  for (const Chunk& c : run.chunks) {
    auto [it, added] = index.emplace(c.table, out.size());
    if (added) out.push_back(TableProgress{c.table});
    TableProgress& t = out[it->second];
    ++t.chunks_total;
    if (c.done) {
      ++t.chunks_done;
      t.rows_done += c.rows;
      t.bytes_done += c.bytes;
    }
    t.rows_total += c.done ? c.rows : c.rows_estimate;
    t.bytes_total += c.done ? c.bytes : c.bytes_estimate;
  }
  return out;
}

std::unique_ptr<SnapshotState> MakeMemorySnapshotState() {
  return std::make_unique<MemoryState>("memory (snapshot_state_backend none)");
}

std::unique_ptr<SnapshotState> MakeFileSnapshotState(std::string path) {
  return std::make_unique<FileState>(std::move(path));
}

absl::StatusOr<std::unique_ptr<SnapshotState>> OpenPostgresSnapshotState(const std::string& dsn,
                                                                         const std::string& schema,
                                                                         const std::string& table) {
  DS_ASSIGN_OR_RETURN(auto db, store::OpenPostgresDatabase(dsn));
  return std::unique_ptr<SnapshotState>(new PostgresState(std::move(db), schema, table));
}

}  // namespace ductstream::snapshot
