// ductstream-worker as a user runs it: a flow file, a real PostgreSQL, files read back by
// readers we did not write (tests/readers/replay_changes.py: pyarrow, fastavro, protobuf, json),
// SIGTERM, and kill -9 at random moments.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "ductstream/postgres/connection.h"
#include "ductstream/store/checkpoint_store.h"
#include "ductstream/testing/helpers.h"
#include "ductstream/testing/pg_sandbox.h"
#include "ductstream/testing/subprocess.h"

namespace ductstream {
namespace {

namespace fs = std::filesystem;
using postgres::Connection;
using testing::ReadFile;

class WorkerTest : public testing::PostgresTest {
 protected:
  void SetUp() override {
    testing::PostgresTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    auto db = pg().CreateDatabase("wrk");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *db;
    auto sql = Connection::Connect(pg().Dsn(db_));
    ASSERT_TRUE(sql.ok()) << sql.status();
    sql_ = std::move(*sql);
    dir_ = fs::path(::testing::TempDir()) / testing::PgSandbox::UniqueName("worker");
    fs::create_directories(dir_);
    slot_ = testing::PgSandbox::UniqueName("slot");
  }

  void TearDown() override {
    if (sql_ != nullptr) {
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

  std::string WriteFlow(absl::string_view format, absl::string_view extra_source = "") {
    nlohmann::json flow = {{"name", "e2e"},
                           {"wire_format", std::string(format)},
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
    if (!extra_source.empty()) {
      const nlohmann::json extra = nlohmann::json::parse(extra_source);
      for (auto& [k, v] : extra.items()) {
        flow["source"]["options"][k] = v;
      }
    }
    const std::string path = (dir_ / "flow.json").string();
    std::ofstream(path) << flow.dump(2);
    return path;
  }

  std::vector<std::string> Env() const {
    return {absl::StrCat("DUCTSTREAM_CHECKPOINT_PATH=", (dir_ / "checkpoints.db").string()),
            "DUCTSTREAM_CHECKPOINT_BACKEND=sqlite"};
  }

  // Runs the worker to completion (-max-empty-reads) and returns its exit code; the log is in
  // dir_/worker.log.
  int RunWorker(const std::string& flow, int empty_reads = 3) {
    auto p = testing::BackgroundProcess::Spawn(
        {DS_WORKER_BIN, "-flow", flow, "-max-empty-reads", absl::StrCat(empty_reads)}, Env(),
        Log());
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? (*p)->Wait() : -1;
  }

  std::string Log() const { return (dir_ / "worker.log").string(); }

  // The destination replayed by the independent reader.
  nlohmann::json Replay(absl::string_view format, absl::string_view table,
                        const std::vector<std::string>& columns) {
    std::vector<std::string> argv = {
        testing::PythonBin(), testing::SourceDir() + "/tests/readers/replay_changes.py",
        std::string(format), (dir_ / "out").string(), absl::StrCat("public.", table)};
    argv.insert(argv.end(), columns.begin(), columns.end());
    auto out = testing::RunCommandOk(argv);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? nlohmann::json::parse(*out) : nlohmann::json::object();
  }

  // The same rendering from the source: key → "c1|c2|...", NULL as "NULL".
  nlohmann::json SourceRows(absl::string_view table, const std::vector<std::string>& columns) {
    std::vector<std::string> exprs;
    for (size_t i = 1; i < columns.size(); ++i) {
      const std::string& c = columns[i];
      exprs.push_back(absl::StrCat("coalesce(", c, "::text, 'NULL')"));
    }
    auto r = sql_->Exec(absl::StrCat("SELECT ", columns[0], "::text, ",
                                     absl::StrJoin(exprs, " || '|' || "), " FROM ", table));
    EXPECT_TRUE(r.ok()) << r.status();
    nlohmann::json rows = nlohmann::json::object();
    if (!r.ok()) return rows;
    for (int i = 0; i < postgres::RowCount(*r); ++i) {
      rows[std::string(*postgres::GetValue(*r, i, 0))] = std::string(*postgres::GetValue(*r, i, 1));
    }
    return rows;
  }

  std::string db_, slot_;
  fs::path dir_;
  std::unique_ptr<Connection> sql_;
};

TEST_F(WorkerTest, InvalidFlowFailsBeforeAnyConnectionNamingTheField) {
  const std::string path = (dir_ / "bad.json").string();
  // The DSN points at a port nothing listens on: validation must fail first.
  std::ofstream(path) << R"({"name": "bad", "source": {"name": "pg", "type": "postgres",
      "options": {"dsn": "host=127.0.0.1 port=1 password=hunter2", "publication": "p",
                  "batch_timeout": "soon"}},
    "destinations": [{"name": "files", "type": "file", "options": {}}]})";
  auto p = testing::BackgroundProcess::Spawn({DS_WORKER_BIN, "-flow", path}, Env(), Log());
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->Wait(), 2);
  const std::string log = ReadFile(Log());
  EXPECT_TRUE(absl::StrContains(log, "source.options.slot: required")) << log;
  EXPECT_TRUE(absl::StrContains(log, "source.options.batch_timeout")) << log;
  EXPECT_TRUE(absl::StrContains(log, "destinations[0].options.path: required")) << log;
  EXPECT_FALSE(absl::StrContains(log, "hunter2")) << "passwords must never reach a log line";
  EXPECT_FALSE(absl::StrContains(log, "connect")) << log;
}

class WorkerFormatTest : public WorkerTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(WorkerFormatTest, EveryChangeReadBackByAnIndependentReaderEqualsTheSource) {
  const std::string format = GetParam();
  Sql("CREATE TABLE t (id int PRIMARY KEY, note text, amount numeric(12,2), flag bool, n bigint)");
  Sql("CREATE TABLE other (k text PRIMARY KEY, v int)");
  const std::string flow = WriteFlow(format);
  ASSERT_EQ(RunWorker(flow, 1), 0) << ReadFile(Log());  // creates the slot
  Sql("INSERT INTO t SELECT g, 'note ' || g || ' \"quoted\" ü', g * 1.25, g % 2 = 0, "
      "g::bigint * 1000000000 FROM generate_series(1, 500) g");
  Sql("INSERT INTO other VALUES ('a', 1), ('b', NULL)");
  Sql("UPDATE t SET note = NULL, amount = -amount WHERE id % 10 = 0");
  Sql("UPDATE t SET id = id + 1000 WHERE id % 50 = 1");  // key changes
  Sql("DELETE FROM t WHERE id % 7 = 0");
  Sql("BEGIN; DELETE FROM t; ROLLBACK");
  Sql("UPDATE other SET v = 2 WHERE k = 'b'");
  ASSERT_EQ(RunWorker(flow), 0) << ReadFile(Log());

  const std::vector<std::string> t_cols = {"id", "note", "amount", "flag", "n"};
  nlohmann::json replayed = Replay(format, "t", t_cols);
  ASSERT_TRUE(replayed.contains("public.t")) << replayed.dump();
  EXPECT_EQ(replayed["public.t"]["rows"], SourceRows("t", t_cols));
  EXPECT_EQ(replayed["public.t"]["changes"], replayed["public.t"]["distinct"]);
  nlohmann::json other = Replay(format, "other", {"k", "v"});
  EXPECT_EQ(other["public.other"]["rows"], SourceRows("other", {"k", "v"}));
}

INSTANTIATE_TEST_SUITE_P(Formats, WorkerFormatTest,
                         ::testing::Values("parquet", "arrow", "avro", "json", "proto"));

TEST_F(WorkerTest, SigtermFinishesInFlightBatchesCheckpointsAndExitsZero) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, note text)");
  const std::string flow = WriteFlow("parquet");
  ASSERT_EQ(RunWorker(flow, 1), 0) << ReadFile(Log());
  const size_t first_run_log = ReadFile(Log()).size();
  auto worker = testing::BackgroundProcess::Spawn({DS_WORKER_BIN, "-flow", flow}, Env(), Log());
  ASSERT_TRUE(worker.ok());
  // Streaming (not still starting up: on a loaded machine that can take a while).
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        const std::string log = ReadFile(Log());
        return log.size() > first_run_log &&
               log.find("streaming slot", first_run_log) != std::string::npos;
      },
      absl::Seconds(60)))
      << ReadFile(Log());
  for (int i = 1; i <= 50; ++i) Sql(absl::StrCat("INSERT INTO t VALUES (", i, ", 'x')"));
  absl::SleepFor(absl::Milliseconds(300));
  (*worker)->Signal(SIGTERM);
  EXPECT_EQ((*worker)->Wait(), 0) << ReadFile(Log());

  auto store = store::OpenSqliteCheckpointStore((dir_ / "checkpoints.db").string());
  ASSERT_TRUE(store.ok());
  auto cp = (*store)->Get(FlowId("e2e"));
  ASSERT_TRUE(cp.ok()) << cp.status();
  auto confirmed = sql_->QueryValue(absl::StrCat(
      "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '", slot_, "'"));
  ASSERT_TRUE(confirmed.ok());
  EXPECT_EQ(*confirmed, cp->lsn.ToString()) << "the slot is acknowledged up to the checkpoint";

  // Whatever the first run did not finish, the next delivers; nothing twice.
  ASSERT_EQ(RunWorker(flow), 0);
  nlohmann::json replayed = Replay("parquet", "t", {"id", "note"});
  EXPECT_EQ(replayed["public.t"]["rows"], SourceRows("t", {"id", "note"}));
  EXPECT_EQ(replayed["public.t"]["changes"], 50);
}

TEST_F(WorkerTest, KillNineTwentyTimesLosesNothing) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, note text)");
  Sql("CREATE TABLE u (id int PRIMARY KEY, v int)");
  const std::string flow = WriteFlow("parquet", R"({"batch_size": "200"})");
  ASSERT_EQ(RunWorker(flow, 1), 0) << ReadFile(Log());

  // A writer commits a known sequence while the worker is killed at random moments.
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    auto conn = Connection::Connect(pg().Dsn(db_));
    ASSERT_TRUE(conn.ok());
    // Throttled so that the final state stays small enough to compare quickly (~2 000 commits
    // per second at most).
    for (int i = 1; writing.load() && i <= 40000; ++i) {
      if (i % 4 == 0) absl::SleepFor(absl::Milliseconds(2));
      std::string txn = absl::StrCat("BEGIN; INSERT INTO t VALUES (", i, ", 'v0'); ");
      if (i % 3 == 0) absl::StrAppend(&txn, "UPDATE t SET note = 'v1' WHERE id = ", i - 1, "; ");
      if (i % 7 == 0) absl::StrAppend(&txn, "DELETE FROM t WHERE id = ", i - 5, "; ");
      if (i % 5 == 0) {
        absl::StrAppend(&txn, "INSERT INTO u SELECT g, ", i, " FROM generate_series(", i * 100,
                        ", ", i * 100 + 99, ") g; ");
      }
      absl::StrAppend(&txn, "COMMIT");
      auto r = (*conn)->Exec(txn);
      ASSERT_TRUE(r.ok()) << r.status();
    }
  });
  std::mt19937 rng(20261121);
  std::uniform_int_distribution<int> wait_ms(50, 900);
  int kills = 0;
  for (int round = 0; round < 20; ++round) {
    auto worker = testing::BackgroundProcess::Spawn({DS_WORKER_BIN, "-flow", flow}, Env(), Log());
    ASSERT_TRUE(worker.ok());
    absl::SleepFor(absl::Milliseconds(wait_ms(rng)));
    if (!(*worker)->Poll().has_value()) {
      (*worker)->Signal(SIGKILL);
      ++kills;
    }
    const int code = (*worker)->Wait();
    ASSERT_TRUE(code == 128 + SIGKILL || code == 0) << "exit " << code << "\n" << ReadFile(Log());
  }
  writing = false;
  writer.join();
  EXPECT_EQ(kills, 20);
  ASSERT_EQ(RunWorker(flow), 0) << ReadFile(Log());

  nlohmann::json t = Replay("parquet", "t", {"id", "note"});
  nlohmann::json u = Replay("parquet", "u", {"id", "v"});
  const nlohmann::json t_src = SourceRows("t", {"id", "note"});
  const nlohmann::json u_src = SourceRows("u", {"id", "v"});
  ASSERT_GT(t_src.size(), 100u);
  EXPECT_EQ(t["public.t"]["rows"], t_src);
  EXPECT_EQ(u["public.u"]["rows"], u_src);
  const int64_t dup_t =
      t["public.t"]["changes"].get<int64_t>() - t["public.t"]["distinct"].get<int64_t>();
  const int64_t dup_u =
      u["public.u"]["changes"].get<int64_t>() - u["public.u"]["distinct"].get<int64_t>();
  std::cout << "[ crash test ] " << kills << " kill -9, " << t_src.size() + u_src.size()
            << " source rows, changes delivered twice: t=" << dup_t << " u=" << dup_u << "\n";
  RecordProperty("duplicates", static_cast<int>(dup_t + dup_u));
}

}  // namespace
}  // namespace ductstream
