#pragma once

// Shared fixture of the end-to-end tests that run ductstream-worker as a user does: a flow file
// with a `file` destination (parquet), a fresh database on the sandbox PostgreSQL, the worker
// binary (DS_WORKER_BIN), and the files read back by pyarrow (tests/readers/read_change_file.py).

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "ductstream/base/lsn.h"
#include "ductstream/postgres/connection.h"
#include "ductstream/testing/helpers.h"
#include "ductstream/testing/pg_sandbox.h"
#include "ductstream/testing/subprocess.h"

namespace ductstream::e2e {

namespace fs = std::filesystem;
using testing::ReadFile;

class WorkerE2eTest : public testing::PostgresTest {
 protected:
  void SetUp() override {
    testing::PostgresTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    auto db = pg().CreateDatabase("e2e");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *db;
    auto sql = postgres::Connection::Connect(pg().Dsn(db_));
    ASSERT_TRUE(sql.ok()) << sql.status();
    sql_ = std::move(*sql);
    dir_ = fs::path(::testing::TempDir()) / testing::PgSandbox::UniqueName("e2e");
    fs::create_directories(dir_);
    slot_ = testing::PgSandbox::UniqueName("slot");
  }

  void TearDown() override {
    if (sql_ != nullptr) {
      for (const std::string& slot : slots_to_drop_) {
        (void)sql_->Exec(
            absl::StrCat("SELECT pg_drop_replication_slot(slot_name) FROM "
                         "pg_replication_slots WHERE slot_name = '",
                         slot, "' AND NOT active"));
      }
      (void)sql_->Exec(
          absl::StrCat("SELECT pg_drop_replication_slot(slot_name) FROM "
                       "pg_replication_slots WHERE slot_name = '",
                       slot_, "' AND NOT active"));
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void Sql(absl::string_view statement) {
    auto r = sql_->Exec(statement);
    ASSERT_TRUE(r.ok()) << statement << ": " << r.status();
  }

  std::string Value(absl::string_view query) {
    auto v = sql_->QueryValue(query);
    EXPECT_TRUE(v.ok()) << query << ": " << v.status();
    return v.ok() ? *v : "";
  }

  Lsn ValueLsn(absl::string_view query) {
    auto lsn = Lsn::Parse(Value(query));
    EXPECT_TRUE(lsn.ok()) << query << ": " << lsn.status();
    return lsn.ok() ? *lsn : Lsn();
  }

  Lsn ConfirmedFlush() {
    return ValueLsn(absl::StrCat(
        "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '", slot_, "'"));
  }

  /// Writes the flow file; `extra_source` (a JSON object) adds or overrides source options.
  std::string WriteFlow(const nlohmann::json& extra_source = nlohmann::json::object()) {
    nlohmann::json flow = {{"name", "e2e"},
                           {"wire_format", "parquet"},
                           {"source",
                            {{"name", "pg"},
                             {"type", "postgres"},
                             {"options",
                              {{"dsn", pg().Dsn(db_)},
                               {"slot", slot_},
                               {"publication", "e2e_pub"},
                               {"batch_timeout", "200ms"},
                               {"status_interval", "1s"}}}}},
                           {"destinations",
                            {{{"name", "files"},
                              {"type", "file"},
                              {"options", {{"path", (dir_ / "out").string()}}}}}}};
    for (auto& [k, v] : extra_source.items()) flow["source"]["options"][k] = v;
    const std::string path = (dir_ / "flow.json").string();
    std::ofstream(path) << flow.dump(2);
    return path;
  }

  std::vector<std::string> Env() const {
    return {absl::StrCat("DUCTSTREAM_CHECKPOINT_PATH=", (dir_ / "checkpoints.db").string()),
            "DUCTSTREAM_CHECKPOINT_BACKEND=sqlite"};
  }

  std::string Log() const { return (dir_ / "worker.log").string(); }

  std::unique_ptr<testing::BackgroundProcess> Spawn(const std::string& flow,
                                                    std::vector<std::string> extra_args = {}) {
    std::vector<std::string> argv = {DS_WORKER_BIN, "-flow", flow};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    auto p = testing::BackgroundProcess::Spawn(argv, Env(), Log());
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? std::move(*p) : nullptr;
  }

  /// Runs the worker until `empty_reads` empty reads in a row; returns its exit code.
  int RunWorker(const std::string& flow, int empty_reads = 3,
                std::vector<std::string> extra_args = {}) {
    extra_args.insert(extra_args.begin(), {"-max-empty-reads", absl::StrCat(empty_reads)});
    auto p = Spawn(flow, std::move(extra_args));
    return p != nullptr ? p->Wait() : -1;
  }

  /// Every change row written for public.`table`, read back by pyarrow, in transaction order:
  /// one JSON object per row, column name → canonical value.
  std::vector<nlohmann::json> Changes(absl::string_view table) {
    std::vector<nlohmann::json> rows;
    const fs::path folder = dir_ / "out" / absl::StrCat("public.", table);
    if (!fs::exists(folder)) return rows;
    for (const auto& entry : fs::directory_iterator(folder)) {
      if (entry.path().extension() != ".parquet") continue;
      auto out = testing::RunCommandOk({testing::PythonBin(),
                                        testing::SourceDir() + "/tests/readers/read_change_file.py",
                                        "parquet", entry.path().string()});
      EXPECT_TRUE(out.ok()) << out.status();
      if (!out.ok()) continue;
      const nlohmann::json file = nlohmann::json::parse(*out);
      const int64_t n = file["num_rows"].get<int64_t>();
      for (int64_t r = 0; r < n; ++r) {
        nlohmann::json row = nlohmann::json::object();
        for (auto& [name, values] : file["columns"].items()) row[name] = values[r];
        rows.push_back(std::move(row));
      }
    }
    std::sort(rows.begin(), rows.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
      return std::make_tuple(a["__commit_lsn"].get<uint64_t>(), a["__seq"].get<int64_t>()) <
             std::make_tuple(b["__commit_lsn"].get<uint64_t>(), b["__seq"].get<int64_t>());
    });
    return rows;
  }

  std::string db_, slot_;
  std::vector<std::string> slots_to_drop_;  // extra slots a test created
  fs::path dir_;
  std::unique_ptr<postgres::Connection> sql_;
};

}  // namespace ductstream::e2e
