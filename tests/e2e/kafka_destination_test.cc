// The kafka (and bufstream) destination end to end: ductstream-worker replicates a real
// PostgreSQL into a real Apache Kafka broker (KRaft, scripts/kafka-sandbox), and a consumer we
// did not write (confluent-kafka, tests/readers/read_kafka.py) reads every message back, decodes
// it with pyarrow / fastavro / protobuf / json and replays the changes, which must equal the
// source rows value by value. Also: headers and keys, the shipped example flows, a broker killed
// and restarted mid-stream, a message over the size limit, and transactions (exactly-once for
// read_committed consumers across worker crashes).

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "ductstream/store/checkpoint_store.h"
#include "tests/e2e/worker_e2e.h"

namespace ductstream::e2e {
namespace {

// A Kafka broker from scripts/kafka-sandbox: the ctest fixture's (state file
// DS_KAFKA_SANDBOX_STATE or $DS_KAFKA_SANDBOX), or one started for this process (a test binary
// run by hand), or a private one that a test may kill and restart.
class KafkaBroker {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaBroker>> Start(const std::string& state) {
    auto out = testing::RunCommand({Script(), "start", state});
    if (!out.ok()) return out.status();
    if (out->exit_code != 0) {
      return absl::UnavailableError(absl::StrCat("scripts/kafka-sandbox start failed (exit ",
                                                 out->exit_code, "):\n", out->err));
    }
    return Attach(state, /*owned=*/true);
  }
  static absl::StatusOr<std::unique_ptr<KafkaBroker>> Attach(const std::string& state, bool owned) {
    std::unique_ptr<KafkaBroker> b(new KafkaBroker(state, owned));
    for (absl::string_view line : absl::StrSplit(ReadFile(state), '\n')) {
      if (absl::ConsumePrefix(&line, "KAFKA_BOOTSTRAP=")) b->bootstrap_ = std::string(line);
    }
    if (b->bootstrap_.empty()) {
      return absl::NotFoundError(absl::StrCat("no KAFKA_BOOTSTRAP in ", state));
    }
    return b;
  }
  ~KafkaBroker() {
    if (owned_) (void)testing::RunCommand({Script(), "stop", state_});
  }
  const std::string& bootstrap() const { return bootstrap_; }
  absl::Status Kill() { return Run("kill"); }
  absl::Status Restart() { return Run("restart"); }

 private:
  KafkaBroker(std::string state, bool owned) : state_(std::move(state)), owned_(owned) {}
  static std::string Script() { return testing::SourceDir() + "/scripts/kafka-sandbox"; }
  absl::Status Run(const char* cmd) {
    auto out = testing::RunCommandOk({Script(), cmd, state_});
    return out.ok() ? absl::OkStatus() : out.status();
  }
  std::string state_;
  bool owned_;
  std::string bootstrap_;
};

KafkaBroker* SharedBroker(std::string* error) {
  static std::unique_ptr<KafkaBroker> broker;
  static std::string failure;
  static bool tried = false;
  if (!tried) {
    tried = true;
    std::string state = getenv("DS_KAFKA_SANDBOX") != nullptr ? getenv("DS_KAFKA_SANDBOX") : "";
    if (state.empty() && fs::exists(DS_KAFKA_SANDBOX_STATE)) state = DS_KAFKA_SANDBOX_STATE;
    absl::StatusOr<std::unique_ptr<KafkaBroker>> b =
        state.empty() ? KafkaBroker::Start((fs::path(::testing::TempDir()) /
                                            testing::PgSandbox::UniqueName("kafka") / "state")
                                               .string())
                      : KafkaBroker::Attach(state, /*owned=*/false);
    if (b.ok()) {
      broker = std::move(*b);
    } else {
      failure = b.status().ToString();
    }
  }
  *error = failure;
  return broker.get();
}

class KafkaE2eTest : public WorkerE2eTest {
 protected:
  void SetUp() override {
    WorkerE2eTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    std::string error;
    broker_ = SharedBroker(&error);
    // A broker that cannot start is a failure, never a skip.
    ASSERT_NE(broker_, nullptr) << "the Kafka sandbox is not available: " << error;
    prefix_ = testing::PgSandbox::UniqueName("k");
  }

  /// A flow from the source database to one kafka destination with `options` (brokers and a
  /// per-test topic template are filled in unless given).
  std::string WriteKafkaFlow(const std::string& format, nlohmann::json options,
                             const std::string& type = "kafka") {
    if (!options.contains("brokers")) options["brokers"] = broker_->bootstrap();
    if (!options.contains("topic")) options["topic"] = prefix_ + ".{schema}.{table}";
    options["delivery_timeout"] = options.value("delivery_timeout", "5s");
    nlohmann::json flow = {
        {"name", "e2e"},
        {"wire_format", format},
        {"source",
         {{"name", "pg"},
          {"type", "postgres"},
          {"options",
           {{"dsn", pg().Dsn(db_)},
            {"slot", slot_},
            {"publication", "e2e_pub"},
            {"batch_timeout", "200ms"},
            {"status_interval", "1s"}}}}},
        {"destinations", {{{"name", "out"}, {"type", type}, {"options", options}}}}};
    const std::string path = (dir_ / "flow.json").string();
    std::ofstream(path) << flow.dump(2);
    return path;
  }

  /// Everything in `topics`, read back by the independent reader.
  nlohmann::json Read(const std::string& format, const std::vector<std::string>& topics,
                      const std::vector<std::string>& tables,
                      const std::string& isolation = "read_uncommitted",
                      const std::string& bootstrap = "") {
    std::vector<std::string> argv = {
        testing::PythonBin(), testing::SourceDir() + "/tests/readers/read_kafka.py",
        "--bootstrap",        bootstrap.empty() ? broker_->bootstrap() : bootstrap,
        "--topics",           absl::StrJoin(topics, ","),
        "--format",           format,
        "--isolation",        isolation};
    for (const std::string& t : tables) argv.insert(argv.end(), {"--table", t});
    auto out = testing::RunCommandOk(argv);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? nlohmann::json::parse(*out) : nlohmann::json::object();
  }

  std::string Topic(absl::string_view table) const {
    return absl::StrCat(prefix_, ".public.", table);
  }

  // The source rendering of replay_changes.py: key → "c1|c2|...", NULL as "NULL".
  nlohmann::json SourceRows(absl::string_view table, const std::vector<std::string>& columns) {
    std::vector<std::string> exprs;
    for (const std::string& c : columns)
      exprs.push_back(absl::StrCat("coalesce(", c, "::text, 'NULL')"));
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

  /// The flow's persisted checkpoint (0/0 when there is none yet).
  Lsn Checkpoint() {
    auto store = store::OpenSqliteCheckpointStore((dir_ / "checkpoints.db").string());
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return Lsn();
    auto cp = (*store)->Get(FlowId("e2e"));
    return cp.ok() ? cp->lsn : Lsn();
  }

  // After a flow failed on table t: the checkpoint may have moved over other databases' WAL but
  // never past t's transaction, and the slot is acknowledged no further than the checkpoint.
  // Proven by behaviour: the same flow in record mode (small messages) then delivers every row.
  void ExpectNothingAcknowledgedPastTheFailure(Lsn checkpoint_before, Lsn confirmed_before) {
    const Lsn checkpoint = Checkpoint();
    EXPECT_GE(checkpoint, checkpoint_before);
    EXPECT_LE(ConfirmedFlush(), std::max(checkpoint, confirmed_before));
    nlohmann::json flow = nlohmann::json::parse(ReadFile((dir_ / "flow.json").string()));
    auto& options = flow["destinations"][0]["options"];
    options["message_mode"] = "record";
    options["topic"] = prefix_ + ".retry.{schema}.{table}";
    std::ofstream((dir_ / "flow.json").string()) << flow.dump(2);
    ASSERT_EQ(RunWorker((dir_ / "flow.json").string()), 0) << ReadFile(Log());
    nlohmann::json got =
        Read("json", {absl::StrCat(prefix_, ".retry.public.t")}, {"public.t=id:id,note"});
    EXPECT_EQ(got["tables"]["public.t"]["rows"], SourceRows("t", {"id", "note"}));
  }

  void MixedChanges() {
    Sql("INSERT INTO t SELECT g, 'note ' || g || ' \"quoted\" ü', g * 1.25, g % 2 = 0, "
        "g::bigint * 1000000000 FROM generate_series(1, 300) g");
    Sql("INSERT INTO other VALUES ('a', 1), ('b', NULL)");
    Sql("UPDATE t SET note = NULL, amount = -amount WHERE id % 10 = 0");
    Sql("UPDATE t SET id = id + 1000 WHERE id % 50 = 1");  // key changes
    Sql("DELETE FROM t WHERE id % 7 = 0");
    Sql("BEGIN; DELETE FROM t; ROLLBACK");
    Sql("UPDATE other SET v = 2 WHERE k = 'b'");
  }

  const std::vector<std::string> t_cols_ = {"id", "note", "amount", "flag", "n"};
  const std::string t_spec_ = "public.t=id:id,note,amount,flag,n";
  const std::string other_spec_ = "public.other=k:k,v";
  KafkaBroker* broker_ = nullptr;
  std::string prefix_;
};

struct ModeFormat {
  const char* mode;
  const char* format;
};
void PrintTo(const ModeFormat& p, std::ostream* os) { *os << p.mode << "/" << p.format; }

class KafkaFormatTest : public KafkaE2eTest, public ::testing::WithParamInterface<ModeFormat> {};

TEST_P(KafkaFormatTest, EveryChangeReadBackByAKafkaConsumerEqualsTheSource) {
  const std::string mode = GetParam().mode;
  const std::string format = GetParam().format;
  Sql("CREATE TABLE t (id int PRIMARY KEY, note text, amount numeric(12,2), flag bool, n bigint)");
  Sql("CREATE TABLE other (k text PRIMARY KEY, v int)");
  const std::string flow = WriteKafkaFlow(format, {{"message_mode", mode}, {"compression", "lz4"}});
  ASSERT_EQ(RunWorker(flow, 1), 0) << ReadFile(Log());  // creates the slot
  MixedChanges();
  ASSERT_EQ(RunWorker(flow), 0) << ReadFile(Log());

  nlohmann::json got = Read(format, {Topic("t"), Topic("other")}, {t_spec_, other_spec_});
  ASSERT_TRUE(got["tables"].contains("public.t")) << got.dump().substr(0, 2000);
  EXPECT_EQ(got["tables"]["public.t"]["rows"], SourceRows("t", t_cols_));
  EXPECT_EQ(got["tables"]["public.t"]["changes"], got["tables"]["public.t"]["distinct"]);
  EXPECT_EQ(got["tables"]["public.other"]["rows"], SourceRows("other", {"k", "v"}));

  // Keys and headers as a consumer sees them.
  int64_t changes = 0;
  for (const nlohmann::json& m : got["messages"]) {
    const nlohmann::json& h = m["headers"];
    const std::string table = h.value("ductstream-table", "");
    EXPECT_EQ(m["topic"], Topic(table));
    EXPECT_EQ(h.value("ductstream-format", ""), format);
    EXPECT_EQ(h.value("ductstream-namespace", ""), "public");
    EXPECT_EQ(h.value("ductstream-schema", ""), "public." + table);
    EXPECT_TRUE(h.contains("ductstream-commit-lsn")) << m.dump();
    EXPECT_TRUE(h.contains("ductstream-seq")) << m.dump();
    changes += m["changes"].get<int64_t>();
    if (mode == "record") {
      ASSERT_EQ(m["changes"], 1) << m.dump();
      EXPECT_EQ(h.value("ductstream-op", ""), m["ops"][0]);
      EXPECT_TRUE(h.contains("ductstream-lsn")) << m.dump();
      ASSERT_TRUE(m["key"].is_string()) << "every change of a keyed table has a key: " << m.dump();
      const nlohmann::json key = nlohmann::json::parse(m["key"].get<std::string>());
      EXPECT_TRUE(key.contains(table == "t" ? "id" : "k")) << m.dump();
      EXPECT_EQ(key.size(), 1u) << m.dump();
    } else {
      EXPECT_EQ(m["key"], "public." + table);
      EXPECT_EQ(h.value("ductstream-rows", ""), absl::StrCat(m["changes"].get<int64_t>()));
    }
  }
  EXPECT_EQ(changes, got["tables"]["public.t"]["changes"].get<int64_t>() +
                         got["tables"]["public.other"]["changes"].get<int64_t>());
}

INSTANTIATE_TEST_SUITE_P(
    ModesAndFormats, KafkaFormatTest,
    ::testing::Values(ModeFormat{"batch", "arrow"}, ModeFormat{"batch", "parquet"},
                      ModeFormat{"batch", "avro"}, ModeFormat{"batch", "json"},
                      ModeFormat{"batch", "proto"}, ModeFormat{"record", "arrow"},
                      ModeFormat{"record", "parquet"}, ModeFormat{"record", "avro"},
                      ModeFormat{"record", "json"}, ModeFormat{"record", "proto"}),
    [](const ::testing::TestParamInfo<ModeFormat>& info) {
      return absl::StrCat(info.param.mode, "_", info.param.format);
    });

class KafkaExampleTest : public KafkaE2eTest, public ::testing::WithParamInterface<const char*> {};

// examples/flows/postgres_to_{kafka,bufstream}.json as shipped, with only the endpoints (DSN,
// brokers), the slot and the topic adjusted to this test's database and broker.
TEST_P(KafkaExampleTest, ExampleFlowWorksAsWritten) {
  const std::string type = GetParam();
  nlohmann::json flow = nlohmann::json::parse(
      ReadFile(testing::SourceDir() + "/examples/flows/postgres_to_" + type + ".json"));
  ASSERT_EQ(flow["destinations"][0]["type"], type);
  auto& src = flow["source"]["options"];
  src["dsn"] = pg().Dsn(db_);
  src["slot"] = slot_;
  src["batch_timeout"] = "200ms";
  auto& dst = flow["destinations"][0]["options"];
  EXPECT_EQ(dst["brokers"], "localhost:9092");
  EXPECT_EQ(dst["topic"], "ductstream.cdc");
  dst["brokers"] = broker_->bootstrap();
  dst["topic"] = prefix_ + ".cdc";
  const std::string path = (dir_ / "flow.json").string();
  std::ofstream(path) << flow.dump(2);

  Sql("CREATE TABLE t (id int PRIMARY KEY, note text, amount numeric(12,2), flag bool, n bigint)");
  Sql("CREATE TABLE other (k text PRIMARY KEY, v int)");
  ASSERT_EQ(RunWorker(path, 1), 0) << ReadFile(Log());
  MixedChanges();
  ASSERT_EQ(RunWorker(path), 0) << ReadFile(Log());
  const std::string format = flow["destinations"][0]["options"]["format"];
  nlohmann::json got = Read(format, {prefix_ + ".cdc"}, {t_spec_, other_spec_});
  EXPECT_EQ(got["tables"]["public.t"]["rows"], SourceRows("t", t_cols_));
  EXPECT_EQ(got["tables"]["public.other"]["rows"], SourceRows("other", {"k", "v"}));
  EXPECT_EQ(got["tables"]["public.t"]["changes"], got["tables"]["public.t"]["distinct"]);
}

INSTANTIATE_TEST_SUITE_P(Types, KafkaExampleTest, ::testing::Values("kafka", "bufstream"));

TEST_F(KafkaE2eTest, BrokerKilledAndRestartedMidStreamLosesNothing) {
  // A private broker: killing the shared one would disturb the tests running beside this one.
  auto own = KafkaBroker::Start((dir_ / "kafka.state").string());
  ASSERT_TRUE(own.ok()) << own.status();
  KafkaBroker& broker = **own;
  Sql("CREATE TABLE t (id int PRIMARY KEY, note text)");
  const std::string flow = WriteKafkaFlow("json", {{"brokers", broker.bootstrap()},
                                                   {"delivery_timeout", "2s"},
                                                   {"retry_backoff", "200ms"},
                                                   {"retry_backoff_max", "1s"}});
  ASSERT_EQ(RunWorker(flow, 1), 0) << ReadFile(Log());
  auto worker = Spawn(flow);
  ASSERT_NE(worker, nullptr);

  int next = 1;
  auto insert = [&](int n) {
    for (int i = 0; i < n; ++i, ++next) {
      Sql(absl::StrCat("INSERT INTO t VALUES (", next, ", 'row ", next, "')"));
    }
  };
  insert(200);
  // Wait until the worker has delivered and checkpointed something.
  for (int i = 0; i < 100 && !Checkpoint().valid(); ++i) absl::SleepFor(absl::Milliseconds(100));
  ASSERT_TRUE(Checkpoint().valid()) << ReadFile(Log());

  ASSERT_TRUE(broker.Kill().ok());
  absl::SleepFor(absl::Seconds(1));  // a batch delivered just before the kill may still persist
  const Lsn during = Checkpoint();
  insert(300);  // produced while the broker is down
  absl::SleepFor(absl::Seconds(6));
  EXPECT_EQ(Checkpoint(), during) << "the checkpoint moved while the broker was down";
  EXPECT_LE(ConfirmedFlush(), during) << "the slot was acknowledged past the checkpoint";
  EXPECT_FALSE(worker->Poll().has_value()) << "the worker gave up: " << ReadFile(Log());
  ASSERT_TRUE(broker.Restart().ok());
  insert(200);
  const Lsn end = ValueLsn("SELECT pg_current_wal_lsn()");
  for (int i = 0; i < 600 && Checkpoint() < end; ++i) absl::SleepFor(absl::Milliseconds(100));
  EXPECT_GE(Checkpoint(), end) << ReadFile(Log());
  worker->Signal(SIGTERM);
  EXPECT_EQ(worker->Wait(), 0) << ReadFile(Log());
  EXPECT_TRUE(absl::StrContains(ReadFile(Log()), "producing again")) << "no retry was needed?";

  nlohmann::json got =
      Read("json", {Topic("t")}, {"public.t=id:id,note"}, "read_uncommitted", broker.bootstrap());
  EXPECT_EQ(got["tables"]["public.t"]["rows"], SourceRows("t", {"id", "note"}));
  EXPECT_EQ(got["tables"]["public.t"]["distinct"], 700);
}

TEST_F(KafkaE2eTest, MessageOverTheSizeLimitFailsTheFlowAndAcknowledgesNothing) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, note text)");
  const std::string flow = WriteKafkaFlow("json", {{"max_message_bytes", "2000"}});
  ASSERT_EQ(RunWorker(flow, 1), 0) << ReadFile(Log());
  const Lsn checkpoint = Checkpoint();
  const Lsn confirmed = ConfirmedFlush();
  Sql("INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 100) g");
  EXPECT_EQ(RunWorker(flow), 1) << ReadFile(Log());
  const std::string log = ReadFile(Log());
  EXPECT_TRUE(absl::StrContains(log, "over the size limit")) << log;
  EXPECT_TRUE(absl::StrContains(log, "max_message_bytes=2000")) << log;
  EXPECT_TRUE(absl::StrContains(log, Topic("t"))) << log;
  ExpectNothingAcknowledgedPastTheFailure(checkpoint, confirmed);
}

TEST_F(KafkaE2eTest, MessageTheBrokerRejectsAsTooLargeFailsTheFlow) {
  // The producer's own limit allows the message; the topic's does not.
  auto created =
      testing::RunCommandOk({testing::PythonBin(), "-c",
                             "import sys\n"
                             "from confluent_kafka.admin import AdminClient, NewTopic\n"
                             "a = AdminClient({'bootstrap.servers': sys.argv[1]})\n"
                             "t = NewTopic(sys.argv[2], num_partitions=1, replication_factor=1,\n"
                             "             config={'max.message.bytes': '3000'})\n"
                             "a.create_topics([t])[sys.argv[2]].result(30)\n",
                             broker_->bootstrap(), Topic("t")});
  ASSERT_TRUE(created.ok()) << created.status();
  Sql("CREATE TABLE t (id int PRIMARY KEY, note text)");
  const std::string flow = WriteKafkaFlow("json", nlohmann::json::object());
  ASSERT_EQ(RunWorker(flow, 1), 0) << ReadFile(Log());
  const Lsn checkpoint = Checkpoint();
  const Lsn confirmed = ConfirmedFlush();
  Sql("INSERT INTO t SELECT g, md5(g::text) || md5((g + 1)::text) FROM generate_series(1, 200) g");
  EXPECT_EQ(RunWorker(flow), 1) << ReadFile(Log());
  const std::string log = ReadFile(Log());
  EXPECT_TRUE(absl::StrContains(log, "the broker rejected it as too large")) << log;
  ExpectNothingAcknowledgedPastTheFailure(checkpoint, confirmed);
}

TEST_F(KafkaE2eTest, TransactionalProducerCommitsEveryBatchForReadCommittedConsumers) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, note text, amount numeric(12,2), flag bool, n bigint)");
  Sql("CREATE TABLE other (k text PRIMARY KEY, v int)");
  const std::string flow =
      WriteKafkaFlow("avro", {{"transactional_id", prefix_ + "-tx"}, {"message_mode", "record"}});
  ASSERT_EQ(RunWorker(flow, 1), 0) << ReadFile(Log());
  MixedChanges();
  ASSERT_EQ(RunWorker(flow), 0) << ReadFile(Log());
  nlohmann::json got =
      Read("avro", {Topic("t"), Topic("other")}, {t_spec_, other_spec_}, "read_committed");
  EXPECT_EQ(got["tables"]["public.t"]["rows"], SourceRows("t", t_cols_));
  EXPECT_EQ(got["tables"]["public.other"]["rows"], SourceRows("other", {"k", "v"}));
  EXPECT_EQ(got["tables"]["public.t"]["changes"], got["tables"]["public.t"]["distinct"]);
}

// Issue 5, point 3: with transactional_id a read_committed consumer sees every change exactly once
// although the worker is killed (SIGKILL) again and again while rows stream, and once exactly
// between the Kafka commit of a batch and the persisting of its checkpoint (the test holds the
// checkpoint store's write lock meanwhile), where a replay from the older checkpoint used to
// produce the batch a second time.
TEST_F(KafkaE2eTest, TransactionalExactlyOnceAcrossWorkerKills) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, note text)");
  const std::string path =
      WriteKafkaFlow("json", {{"transactional_id", prefix_ + "-tx"}, {"message_mode", "record"}});
  {
    // Many small batches (a batch ends at the first commit past batch_size rows): many Kafka
    // transactions, so the kills land between them as well as inside them.
    nlohmann::json flow = nlohmann::json::parse(ReadFile(path));
    flow["source"]["options"]["batch_size"] = "4";
    flow["source"]["options"]["batch_timeout"] = "50ms";
    std::ofstream(path) << flow.dump(2);
  }
  ASSERT_EQ(RunWorker(path, 1), 0) << ReadFile(Log());  // creates the slot

  const unsigned seed = static_cast<unsigned>(absl::ToUnixNanos(absl::Now()));
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 rng(seed);
  int next = 1;         // the next id to insert
  int64_t changes = 0;  // changes made so far (each must be read back exactly once)
  // One source transaction: 1-4 inserts, and an update of an older row.
  auto transaction = [&] {
    const int n = 1 + static_cast<int>(rng() % 4);
    std::string sql =
        absl::StrCat("BEGIN; INSERT INTO t SELECT g, 'row ' || g FROM generate_series(", next, ", ",
                     next + n - 1, ") g;");
    changes += n;
    if (next > 10) {
      absl::StrAppend(&sql, "UPDATE t SET note = note || ' +' WHERE id = ", next - 7, ";");
      ++changes;
    }
    next += n;
    Sql(sql + "COMMIT");
  };
  // Waits until the persisted checkpoint is at least `lsn`.
  auto wait_checkpoint = [&](Lsn lsn, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (Checkpoint() < lsn && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
    return Checkpoint() >= lsn;
  };

  // Kills at random points while rows stream, each once the worker is writing.
  int kills = 0;
  for (int round = 0; round < 4; ++round) {
    const Lsn before = Checkpoint();
    auto worker = Spawn(path);
    ASSERT_NE(worker, nullptr);
    transaction();
    ASSERT_TRUE(wait_checkpoint(Lsn(before.value() + 1), absl::Seconds(60)))
        << "the worker wrote nothing: " << ReadFile(Log());
    const int more = 5 + static_cast<int>(rng() % 25);
    for (int i = 0; i < more; ++i) {
      transaction();
      absl::SleepFor(absl::Milliseconds(10 + rng() % 40));
    }
    worker->Signal(SIGKILL);
    EXPECT_EQ(worker->Wait(), 128 + SIGKILL);
    ++kills;
    transaction();  // while no worker runs
  }

  // The kill between the Kafka commit and the checkpoint: once the worker has caught up, the
  // checkpoint store is locked, so the next batch commits in Kafka but its checkpoint cannot be
  // persisted. One batch per source transaction (batch_size 1), and a long batch_timeout: the
  // worker then seldom persists a checkpoint for an idle period (WAL of other databases), which
  // would take the lock first; when that happens the attempt is repeated.
  {
    nlohmann::json flow = nlohmann::json::parse(ReadFile(path));
    flow["source"]["options"]["batch_size"] = "1";
    flow["source"]["options"]["batch_timeout"] = "2s";
    std::ofstream(path) << flow.dump(2);
  }
  {
    auto worker = Spawn(path);
    ASSERT_NE(worker, nullptr);
    bool committed = false;
    std::string seen;
    for (int attempt = 1; attempt <= 5 && !committed; ++attempt) {
      if (worker->Poll().has_value()) worker = Spawn(path);  // gave up waiting for the lock
      ASSERT_NE(worker, nullptr);
      const Lsn caught_up = ValueLsn("SELECT pg_current_wal_lsn()");
      ASSERT_TRUE(wait_checkpoint(caught_up, absl::Seconds(90))) << ReadFile(Log());
      const Lsn checkpoint = Checkpoint();
      sqlite3* lock = nullptr;
      ASSERT_EQ(sqlite3_open((dir_ / "checkpoints.db").string().c_str(), &lock), SQLITE_OK);
      sqlite3_busy_timeout(lock, 10000);
      ASSERT_EQ(sqlite3_exec(lock, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK)
          << sqlite3_errmsg(lock);
      const int first = next;
      transaction();
      // Wait until a read_committed consumer sees the new rows: Kafka has committed them.
      const absl::Time deadline = absl::Now() + absl::Seconds(6);
      while (!committed && absl::Now() < deadline) {
        nlohmann::json got = Read("json", {Topic("t")}, {"public.t=id:id,note"}, "read_committed");
        const nlohmann::json& rows = got["tables"]["public.t"]["rows"];
        committed = rows.is_object() && rows.contains(absl::StrCat(first));
        seen = absl::StrCat("row ", first, ": ", rows.is_object() ? rows.size() : 0,
                            " rows read in ", got["messages"].size(), " messages");
        if (!committed) absl::SleepFor(absl::Milliseconds(200));
      }
      if (committed) {
        // SIGKILL while the worker waits for the lock to persist the checkpoint.
        worker->Signal(SIGKILL);
        (void)worker->Wait();
        ++kills;
      }
      EXPECT_EQ(sqlite3_exec(lock, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
      sqlite3_close(lock);
      if (committed) {
        EXPECT_EQ(Checkpoint(), checkpoint) << "the checkpoint moved while its store was locked";
      }
    }
    ASSERT_TRUE(committed) << "the new rows never became visible in Kafka (" << seen
                           << "): " << ReadFile(Log());
  }

  // A last run catches up.
  transaction();
  const Lsn end = ValueLsn("SELECT pg_current_wal_lsn()");
  auto worker = Spawn(path);
  ASSERT_NE(worker, nullptr);
  EXPECT_TRUE(wait_checkpoint(end, absl::Seconds(120))) << ReadFile(Log());
  worker->Signal(SIGTERM);
  EXPECT_EQ(worker->Wait(), 0) << ReadFile(Log());
  EXPECT_GE(kills, 5);

  const std::string log = ReadFile(Log());
  // The replay after the locked checkpoint re-read committed changes, and they were skipped:
  // without the progress record they would have been produced again.
  int skips = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    skips += absl::StrContains(line, "that an earlier run already committed in Kafka");
  }
  EXPECT_GE(skips, 1) << log;
  std::cout << changes << " changes, " << kills << " kills, " << skips
            << " batches with replayed changes skipped\n";

  nlohmann::json got = Read("json", {Topic("t")}, {"public.t=id:id,note"}, "read_committed");
  const nlohmann::json& table = got["tables"]["public.t"];
  EXPECT_EQ(table["rows"], SourceRows("t", {"id", "note"}));
  EXPECT_EQ(table["changes"], table["distinct"]) << "a read_committed consumer saw duplicates";
  EXPECT_EQ(table["changes"].get<int64_t>(), changes) << "changes lost or duplicated";
}

}  // namespace
}  // namespace ductstream::e2e
