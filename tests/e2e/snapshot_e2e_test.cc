// Snapshots end to end (docs/architecture.md, "Snapshots"): ductstream-worker copies the
// existing rows of a new flow under the slot's exported snapshot, in parallel chunks, resumes
// after kill -9 with only the chunks not yet durable, backfills chosen tables while a flow
// streams, and delivers every type identically through the snapshot and the stream. Results are
// read back by pyarrow (tests/readers/apply_changes.py, read_change_file.py).
#include <signal.h>

#include <atomic>
#include <functional>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "tests/e2e/worker_e2e.h"

namespace ductstream::e2e {
namespace {

constexpr char kDigestSql[] =
    "SELECT count(*) || ' ' || md5(coalesce(string_agg(id || ':' || coalesce(val::text, 'NULL') "
    "|| ':' || coalesce(note, 'NULL'), ',' ORDER BY id), '')) FROM ";

class SnapshotE2eTest : public WorkerE2eTest {
 protected:
  // public.big: `rows` rows, published by e2e_pub.
  void CreateBigTable(int64_t rows) {
    Sql("CREATE TABLE big (id bigint PRIMARY KEY, val bigint, note text)");
    Sql(absl::StrCat("INSERT INTO big SELECT g, g * 7, 'row ' || g FROM generate_series(1, ", rows,
                     ") g"));
    Sql("CREATE SEQUENCE big_new START 5000000");
    Sql("ANALYZE big");
    Sql("CREATE PUBLICATION e2e_pub FOR TABLE big");
  }

  // Changes public.big until `stop`: updates, inserts and deletes in small transactions.
  std::thread StartWriters(std::atomic<bool>& stop, std::atomic<int64_t>& commits, int64_t rows) {
    return std::thread([this, &stop, &commits, rows] {
      auto conn = postgres::Connection::Connect(pg().Dsn(db_));
      ASSERT_TRUE(conn.ok()) << conn.status();
      std::mt19937_64 rng(42);
      std::uniform_int_distribution<int64_t> id(1, rows);
      while (!stop.load()) {
        const std::string sql = absl::StrCat(
            "BEGIN; UPDATE big SET val = val + 1 WHERE id = ", id(rng),
            "; UPDATE big SET val = val + 1, note = 'changed' WHERE id = ", id(rng),
            "; INSERT INTO big VALUES (nextval('big_new'), 1, 'new'); DELETE FROM big WHERE id = ",
            id(rng), "; COMMIT");
        auto r = (*conn)->Exec(sql);
        ASSERT_TRUE(r.ok()) << r.status();
        commits.fetch_add(1);
      }
    });
  }

  nlohmann::json Applied() {
    auto out = testing::RunCommandOk({testing::PythonBin(),
                                      testing::SourceDir() + "/tests/readers/apply_changes.py",
                                      (dir_ / "out" / "public.big").string(), "id", "val", "note"});
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? nlohmann::json::parse(*out) : nlohmann::json::object();
  }

  std::string SourceDigest() { return Value(absl::StrCat(kDigestSql, "big")); }

  int64_t DoneChunks() {
    auto v = sql_->QueryValue(
        "SELECT count(*) FROM ductstream.snapshot_state WHERE flow_id = 'e2e' AND table_name <> "
        "'' AND status = 'done'");
    int64_t n = 0;
    if (v.ok()) (void)absl::SimpleAtoi(*v, &n);
    return n;
  }

  bool SlotExists() {
    return Value(absl::StrCat("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '",
                              slot_, "'")) == "1";
  }

  bool LogContains(absl::string_view text) { return absl::StrContains(ReadFile(Log()), text); }

  // The slot is listed in pg_replication_slots while CREATE_REPLICATION_SLOT still waits for a
  // consistent point; a writer starting then may commit before it (its row is then copied, not
  // streamed). The worker logs the slot once it and its snapshot exist.
  std::function<bool()> SlotCreated() {
    return [this] { return LogContains("created replication slot"); };
  }

  // Empty batch_timeout periods before the worker stops once the copy is done: the walsender
  // may first spend seconds decoding WAL that tests running beside this one write.
  static constexpr const char* kDrainReads = "25";
};

TEST_F(SnapshotE2eTest, AMillionRowsChangedDuringTheSnapshotArriveExactlyOnce) {
  constexpr int64_t kRows = 1000000;
  CreateBigTable(kRows);
  const std::string flow = WriteFlow({{"snapshot_workers", "2"}, {"snapshot_chunk_bytes", "8MiB"}});
  auto worker = Spawn(flow, {"-max-empty-reads", kDrainReads});
  ASSERT_NE(worker, nullptr);
  // Writers change the table while it is copied, from the moment the slot (and the snapshot the
  // copy reads) exists.
  ASSERT_TRUE(testing::WaitFor(SlotCreated(), absl::Seconds(60)));
  std::atomic<bool> stop{false};
  std::atomic<int64_t> commits{0};
  std::thread writers = StartWriters(stop, commits, kRows);
  const bool finished =
      testing::WaitFor([&] { return LogContains("snapshot complete"); }, absl::Seconds(400));
  stop.store(true);
  writers.join();
  ASSERT_TRUE(finished) << ReadFile(Log());
  ASSERT_EQ(worker->Wait(), 0) << ReadFile(Log());
  EXPECT_GT(commits.load(), 0);

  const nlohmann::json applied = Applied();
  const std::string source = SourceDigest();
  EXPECT_EQ(absl::StrCat(applied["rows"].get<int64_t>(), " ", applied["md5"].get<std::string>()),
            source)
      << applied.dump();
  // Exactly once: every row of the snapshot once, and no row both copied and streamed as an
  // insert (the slot's consistent point separates them).
  EXPECT_EQ(applied["load_duplicate_keys"], 0) << applied.dump();
  EXPECT_EQ(applied["load_and_insert_keys"], 0) << applied.dump();
  EXPECT_GT(applied["ops"]["load"].get<int64_t>(), kRows * 9 / 10);
  EXPECT_LE(applied["ops"]["load"].get<int64_t>(), kRows);
  EXPECT_GT(applied["ops"]["insert"].get<int64_t>(), 0) << "the writers ran during the copy";
  EXPECT_TRUE(LogContains("in 8 chunks") || LogContains("chunks with 2 workers"))
      << ReadFile(Log());
}

TEST_F(SnapshotE2eTest, KilledThreeTimesDuringTheSnapshotResumesWithTheChunksNotYetDurable) {
  constexpr int64_t kRows = 1000000;
  CreateBigTable(kRows);
  const std::string flow = WriteFlow({{"snapshot_workers", "2"}, {"snapshot_chunk_bytes", "2MiB"}});
  std::atomic<bool> stop{false};
  std::atomic<int64_t> commits{0};
  std::thread writers;
  int64_t done_at_kill = 0;
  for (int kill = 0; kill < 3; ++kill) {
    auto worker = Spawn(flow);
    ASSERT_NE(worker, nullptr);
    if (kill == 0) {
      ASSERT_TRUE(testing::WaitFor(SlotCreated(), absl::Seconds(60)));
      writers = StartWriters(stop, commits, kRows);
    }
    // Kill once a few more chunks are durable, mid-snapshot.
    const bool progressed =
        testing::WaitFor([&] { return DoneChunks() >= done_at_kill + 3; }, absl::Seconds(300));
    ASSERT_TRUE(progressed) << ReadFile(Log());
    ASSERT_FALSE(LogContains("snapshot complete")) << "the table copies too fast to be killed";
    worker->Signal(SIGKILL);
    worker->Wait();
    done_at_kill = DoneChunks();
  }
  auto final_run = Spawn(flow, {"-max-empty-reads", kDrainReads});
  ASSERT_NE(final_run, nullptr);
  const bool finished =
      testing::WaitFor([&] { return LogContains("snapshot complete"); }, absl::Seconds(400));
  stop.store(true);
  writers.join();
  ASSERT_TRUE(finished) << ReadFile(Log());
  ASSERT_EQ(final_run->Wait(), 0) << ReadFile(Log());

  // Each restart resumed: it found durable chunks and did not copy them again.
  EXPECT_TRUE(LogContains("resuming the initial snapshot")) << ReadFile(Log());
  EXPECT_FALSE(LogContains("resuming the initial snapshot: 0 of")) << ReadFile(Log());
  const nlohmann::json applied = Applied();
  EXPECT_EQ(absl::StrCat(applied["rows"].get<int64_t>(), " ", applied["md5"].get<std::string>()),
            SourceDigest())
      << applied.dump();
  // Not restarted from scratch: far fewer than 4 copies of the table were written (batches of
  // a chunk killed before it was durable are written again; files are named by chunk and
  // overwritten, so each load row is in the output at most once per chunk).
  EXPECT_LE(applied["ops"]["load"].get<int64_t>(), kRows + commits.load()) << applied.dump();
  // Chunks resumed under a newer snapshot may hold a row again that an update moved out of a
  // chunk copied before the kill, and rows inserted after the slot's consistent point are both
  // loaded and streamed: the stream replays every change after that point, which is why the
  // applied state above still equals the source.
  EXPECT_GT(applied["ops"]["load"].get<int64_t>(), kRows / 2) << applied.dump();
}

TEST_F(SnapshotE2eTest, NeverSkipsTheCopyAndOnlyCopiesWithoutASlot) {
  CreateBigTable(1000);
  ASSERT_EQ(RunWorker(WriteFlow({{"snapshot", "only"}})), 0) << ReadFile(Log());
  EXPECT_FALSE(SlotExists());
  nlohmann::json applied = Applied();
  EXPECT_EQ(applied["ops"]["load"], 1000) << applied.dump();
  EXPECT_EQ(absl::StrCat(applied["rows"].get<int64_t>(), " ", applied["md5"].get<std::string>()),
            SourceDigest());

  std::filesystem::remove_all(dir_ / "out");
  ASSERT_EQ(RunWorker(WriteFlow({{"snapshot", "never"}})), 0) << ReadFile(Log());
  EXPECT_FALSE(std::filesystem::exists(dir_ / "out" / "public.big"));
  Sql("INSERT INTO big VALUES (-1, 0, 'streamed')");
  ASSERT_EQ(RunWorker(WriteFlow({{"snapshot", "never"}})), 0) << ReadFile(Log());
  applied = Applied();
  EXPECT_EQ(applied["ops"].dump(), R"({"insert":1})");
}

TEST_F(SnapshotE2eTest, BackfillRecopiesChosenTablesWhileTheFlowStreams) {
  Sql("CREATE TABLE big (id bigint PRIMARY KEY, val bigint, note text)");
  Sql("INSERT INTO big SELECT g, g, 'x' FROM generate_series(1, 5000) g");
  // No primary key, and a partitioned table published via its root.
  Sql("CREATE TABLE nokey (a int, b text)");
  Sql("INSERT INTO nokey SELECT g, 'n' || g FROM generate_series(1, 300) g");
  Sql("CREATE TABLE parts (id int PRIMARY KEY, v text) PARTITION BY RANGE (id)");
  Sql("CREATE TABLE parts_1 PARTITION OF parts FOR VALUES FROM (0) TO (100)");
  Sql("CREATE TABLE parts_2 PARTITION OF parts FOR VALUES FROM (100) TO (1000)");
  Sql("INSERT INTO parts SELECT g, 'p' || g FROM generate_series(1, 500) g");
  Sql("CREATE PUBLICATION e2e_pub FOR TABLE big, nokey, parts WITH (publish_via_partition_root)");
  const std::string flow = WriteFlow({{"snapshot", "never"}});
  auto streaming = Spawn(flow);
  ASSERT_NE(streaming, nullptr);
  ASSERT_TRUE(testing::WaitFor([&] { return LogContains("streaming slot"); }, absl::Seconds(60)))
      << ReadFile(Log());
  Sql("INSERT INTO big VALUES (100001, 1, 'streamed before')");

  // The backfill runs as its own process beside the streaming worker.
  std::vector<std::string> argv = {DS_WORKER_BIN,
                                   "-flow",
                                   flow,
                                   "-mode",
                                   "backfill",
                                   "-tables",
                                   "public.nokey,public.parts",
                                   "-snapshot-workers",
                                   "2"};
  auto backfill = testing::BackgroundProcess::Spawn(argv, Env(), Log());
  ASSERT_TRUE(backfill.ok()) << backfill.status();
  ASSERT_EQ((*backfill)->Wait(), 0) << ReadFile(Log());
  Sql("INSERT INTO big VALUES (100002, 2, 'streamed after')");
  const Lsn after = ValueLsn("SELECT pg_current_wal_insert_lsn()");
  ASSERT_TRUE(testing::WaitFor([&] { return ConfirmedFlush() >= after; }, absl::Seconds(60)))
      << ReadFile(Log());
  streaming->Signal(SIGTERM);
  ASSERT_EQ(streaming->Wait(), 0) << ReadFile(Log());

  const auto nokey = Changes("nokey");
  ASSERT_EQ(nokey.size(), 300u);
  for (const auto& row : nokey) EXPECT_EQ(row["__op"], "load");
  // Partitions are read leaf by leaf and reported under the root, as the stream reports them.
  EXPECT_EQ(Changes("parts").size(), 500u);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "out" / "public.parts_1"));
  // The streaming flow kept going, and big was not backfilled.
  const auto big = Changes("big");
  ASSERT_EQ(big.size(), 2u) << nlohmann::json(big).dump() << ReadFile(Log());
  EXPECT_EQ(big[0]["note"], "streamed before");
  EXPECT_EQ(big[1]["note"], "streamed after");
  EXPECT_TRUE(LogContains("backfill snapshot complete")) << ReadFile(Log());
}

TEST_F(SnapshotE2eTest, HashPartitionedBackfillCopiesEveryRowOnceIncludingNulls) {
  // Rows whose partition column is NULL or hashes negative belong to a partition too (SPEC.md
  // §16 item 10).
  Sql("CREATE TABLE nokey (a int, b text)");
  Sql("INSERT INTO nokey SELECT g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'n' || g END "
      "FROM generate_series(1, 2000) g");
  Sql("CREATE PUBLICATION e2e_pub FOR TABLE nokey");
  ASSERT_EQ(RunWorker(WriteFlow({{"snapshot", "never"}}), 1,
                      {"-mode", "backfill", "-tables", "nokey", "-partition-column", "b",
                       "-partition-count", "4", "-snapshot-workers", "2"}),
            0)
      << ReadFile(Log());
  const auto rows = Changes("nokey");
  ASSERT_EQ(rows.size(), 2000u);
  std::set<int> seen;
  int nulls = 0;
  for (const auto& row : rows) {
    EXPECT_EQ(row["__op"], "load");
    seen.insert(row["a"].get<int>());
    nulls += row["b"].is_null() ? 1 : 0;
  }
  EXPECT_EQ(seen.size(), 2000u);
  EXPECT_EQ(nulls, 2000 / 7);
  EXPECT_TRUE(LogContains("in 4 chunks")) << ReadFile(Log());
}

TEST_F(SnapshotE2eTest, BackfillOfSchemasCopiesEveryTableInThem) {
  Sql("CREATE SCHEMA sales");
  Sql("CREATE TABLE sales.a (id int PRIMARY KEY)");
  Sql("CREATE TABLE sales.b (id int PRIMARY KEY)");
  Sql("CREATE TABLE public.elsewhere (id int PRIMARY KEY)");
  Sql("INSERT INTO sales.a SELECT generate_series(1, 30)");
  Sql("INSERT INTO sales.b SELECT generate_series(1, 40)");
  Sql("INSERT INTO public.elsewhere SELECT generate_series(1, 50)");
  ASSERT_EQ(
      RunWorker(WriteFlow({{"snapshot", "never"}}), 1, {"-mode", "backfill", "-schemas", "sales"}),
      0)
      << ReadFile(Log());
  auto count = [&](const std::string& folder) {
    auto out = testing::RunCommandOk(
        {testing::PythonBin(), "-c",
         "import glob, sys, pyarrow.parquet as pq; print(sum(pq.read_table(f).num_rows for f in "
         "glob.glob(sys.argv[1] + '/*.parquet')))",
         (dir_ / "out" / folder).string()});
    return out.ok() ? std::string(absl::StripAsciiWhitespace(*out)) : out.status().ToString();
  };
  EXPECT_EQ(count("sales.a"), "30");
  EXPECT_EQ(count("sales.b"), "40");
  EXPECT_FALSE(std::filesystem::exists(dir_ / "out" / "public.elsewhere"));
  EXPECT_TRUE(LogContains("backfill snapshot of 2 tables")) << ReadFile(Log());
}

TEST_F(SnapshotE2eTest, EveryTypeIsIdenticalThroughTheSnapshotAndTheStream) {
  Sql("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')");
  Sql("CREATE DOMAIN posint AS int CHECK (VALUE > 0)");
  Sql("CREATE TYPE pair AS (a int, b text)");
  const std::vector<std::pair<std::string, std::string>> columns = {
      {"c_bool", "bool"},
      {"c_int2", "int2"},
      {"c_int4", "int4"},
      {"c_int8", "int8"},
      {"c_oid", "oid"},
      {"c_float4", "float4"},
      {"c_float8", "float8"},
      {"c_numeric", "numeric(12,3)"},
      {"c_numeric_free", "numeric"},
      {"c_money", "money"},
      {"c_text", "text"},
      {"c_varchar", "varchar(20)"},
      {"c_bpchar", "char(5)"},
      {"c_name", "name"},
      {"c_char", "\"char\""},
      {"c_bytea", "bytea"},
      {"c_uuid", "uuid"},
      {"c_json", "json"},
      {"c_jsonb", "jsonb"},
      {"c_xml", "xml"},
      {"c_date", "date"},
      {"c_time", "time"},
      {"c_timetz", "timetz"},
      {"c_timestamp", "timestamp"},
      {"c_timestamptz", "timestamptz"},
      {"c_interval", "interval"},
      {"c_inet", "inet"},
      {"c_cidr", "cidr"},
      {"c_macaddr", "macaddr"},
      {"c_bit", "bit(4)"},
      {"c_varbit", "varbit"},
      {"c_point", "point"},
      {"c_int4range", "int4range"},
      {"c_tsrange", "tsrange"},
      {"c_tsvector", "tsvector"},
      {"c_pg_lsn", "pg_lsn"},
      {"c_enum", "mood"},
      {"c_domain", "posint"},
      {"c_composite", "pair"},
      {"c_int_array", "int4[]"},
      {"c_text_array", "text[]"},
      {"c_numeric_array", "numeric[]"},
      {"c_2d_array", "int4[]"},
  };
  const std::vector<std::string> values = {
      "true",
      "-32768",
      "2147483647",
      "-9223372036854775808",
      "4294967295",
      "'NaN'",
      "'-Infinity'",
      "123456789.125",
      "'NaN'",
      "'-1234.56'",
      "E'multi\\nline \\u00e9'",
      "'short'",
      "'ab'",
      "'a name'",
      "'x'",
      "'\\x00ff10'::bytea",
      "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'",
      "'{\"b\": [1, 2.50], \"a\": null}'",
      "'{\"b\": [1, 2.50], \"a\": null}'",
      "'<a>x</a>'",
      "'infinity'",
      "'23:59:59.999999'",
      "'12:00:00+05:30'",
      "'1999-12-31 23:59:59.5'",
      "'2038-01-19 03:14:08+02'",
      "'1 year 2 mons -3 days 04:05:06.789'",
      "'192.168.1.1/24'",
      "'10.0.0.0/8'",
      "'08:00:2b:01:02:03'",
      "B'1010'",
      "B'10101'",
      "'(1.5,-2)'",
      "'[1,10)'",
      "'[\"2020-01-01 00:00\",)'",
      "'a fat cat'",
      "'16/B374D848'",
      "'happy'",
      "7",
      "ROW(1, 'two')",
      "'{1,NULL,3}'",
      "'{\"a b\",\"\",NULL}'",
      "'{1.5,NaN}'",
      "'{{1,2},{3,4}}'",
  };
  ASSERT_EQ(columns.size(), values.size());
  std::string ddl = "CREATE TABLE every (id int PRIMARY KEY";
  std::string names = "id", row;
  for (size_t i = 0; i < columns.size(); ++i) {
    absl::StrAppend(&ddl, ", ", columns[i].first, " ", columns[i].second);
    absl::StrAppend(&names, ", ", columns[i].first);
    absl::StrAppend(&row, ", ", values[i]);
  }
  Sql(ddl + ")");
  Sql("SET TimeZone = 'America/New_York'");  // the session zone must not matter
  Sql(absl::StrCat("INSERT INTO every (", names, ") VALUES (1", row, ")"));
  Sql(absl::StrCat("INSERT INTO every (id) VALUES (2)"));  // every column NULL
  Sql("CREATE PUBLICATION e2e_pub FOR TABLE every");

  auto worker = Spawn(WriteFlow({{"snapshot_workers", "2"}}));
  ASSERT_NE(worker, nullptr);
  // The slot is active while it is being created, before its consistent point: wait for the
  // stream itself.
  ASSERT_TRUE(testing::WaitFor([&] { return LogContains("streaming slot"); }, absl::Seconds(60)))
      << ReadFile(Log());
  Sql(absl::StrCat("INSERT INTO every (", names, ") VALUES (3", row, ")"));
  Sql("INSERT INTO every (id) VALUES (4)");
  const Lsn after = ValueLsn("SELECT pg_current_wal_insert_lsn()");
  ASSERT_TRUE(testing::WaitFor([&] { return ConfirmedFlush() >= after; }, absl::Seconds(60)))
      << ReadFile(Log());
  worker->Signal(SIGTERM);
  ASSERT_EQ(worker->Wait(), 0) << ReadFile(Log());

  auto rows = Changes("every");
  ASSERT_EQ(rows.size(), 4u) << nlohmann::json(rows).dump() << ReadFile(Log());
  std::map<int, nlohmann::json> by_id;
  for (auto& r : rows) by_id[r["id"].get<int>()] = r;
  EXPECT_EQ(by_id[1]["__op"], "load");
  EXPECT_EQ(by_id[2]["__op"], "load");
  EXPECT_EQ(by_id[3]["__op"], "insert");
  EXPECT_EQ(by_id[4]["__op"], "insert");
  for (const auto& [name, type] : columns) {
    EXPECT_EQ(by_id[1][name], by_id[3][name]) << name << " " << type;
    EXPECT_EQ(by_id[2][name], by_id[4][name]) << name << " " << type;
    // Only the two-dimensional array does not fit its list type (it is in __exact).
    EXPECT_EQ(by_id[1][name].is_null(), name == "c_2d_array") << name << " " << type;
  }
  // Values the Arrow type cannot hold keep their exact text on both paths.
  EXPECT_EQ(by_id[1]["__exact"], by_id[3]["__exact"]);
  EXPECT_FALSE(by_id[1]["__exact"].is_null());
}

TEST_F(SnapshotE2eTest, AnUnknownModeIsAFlagErrorAndAnUnknownTableIsNamed) {
  CreateBigTable(10);
  const std::string flow = WriteFlow();
  EXPECT_EQ(RunWorker(flow, 3, {"-mode", "sideways"}), 2);
  EXPECT_TRUE(LogContains("-mode sideways: expected cdc or backfill")) << ReadFile(Log());
  EXPECT_EQ(RunWorker(flow, 3, {"-mode", "backfill", "-tables", "public.nope"}), 1);
  EXPECT_TRUE(LogContains("table public.nope does not exist")) << ReadFile(Log());
}

}  // namespace
}  // namespace ductstream::e2e
