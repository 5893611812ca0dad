// ductstream-worker replicating to a real S3-compatible server (moto, scripts/s3-sandbox): objects
// listed and read back by clients we did not write (boto3, pyarrow, fastavro via
// tests/readers/read_s3.py and replay_changes.py) and compared value by value with the source;
// the key layout; a replay of the same WAL overwrites and never duplicates; a server outage is
// retried without moving the checkpoint and loses nothing; the shipped example flow as written.

#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/e2e/worker_e2e.h"

namespace ductstream::e2e {
namespace {

// An S3 sandbox's address and credentials, from the state file scripts/s3-sandbox writes.
struct S3Server {
  std::string state_file;
  std::map<std::string, std::string> vars;  // S3_ENDPOINT, AWS_ACCESS_KEY_ID, ...
  bool owned = false;

  const std::string& endpoint() const { return vars.at("S3_ENDPOINT"); }

  /// KEY=VALUE entries for a client of this server (never the machine's own AWS settings).
  std::vector<std::string> Env(const fs::path& scratch) const {
    std::vector<std::string> env;
    for (const char* k :
         {"S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"}) {
      env.push_back(absl::StrCat(k, "=", vars.at(k)));
    }
    env.push_back("AWS_EC2_METADATA_DISABLED=true");
    env.push_back(absl::StrCat("AWS_CONFIG_FILE=", (scratch / "no-aws-config").string()));
    env.push_back(
        absl::StrCat("AWS_SHARED_CREDENTIALS_FILE=", (scratch / "no-aws-credentials").string()));
    return env;
  }

  static absl::StatusOr<S3Server> Load(const std::string& state_file) {
    S3Server s;
    s.state_file = state_file;
    const std::string text = ReadFile(state_file);
    for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
      std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
      s.vars[kv.first] = kv.second;
    }
    if (!s.vars.contains("S3_ENDPOINT")) {
      return absl::NotFoundError(absl::StrCat("no S3 sandbox state in ", state_file));
    }
    // Alive? Any HTTP answer will do.
    auto r = testing::RunCommand({"curl", "-s", "-o", "/dev/null", "-m", "5", s.endpoint()});
    if (!r.ok() || r->exit_code != 0) {
      return absl::UnavailableError(
          absl::StrCat("the S3 sandbox of ", state_file, " does not answer at ", s.endpoint()));
    }
    return s;
  }

  static absl::StatusOr<S3Server> Start(const std::string& state_file) {
    auto out =
        testing::RunCommandOk({testing::SourceDir() + "/scripts/s3-sandbox", "start", state_file});
    if (!out.ok()) return out.status();
    auto s = Load(state_file);
    if (s.ok()) s->owned = true;
    return s;
  }

  absl::Status Run(absl::string_view command) const {
    return testing::RunCommandOk(
               {testing::SourceDir() + "/scripts/s3-sandbox", std::string(command), state_file})
        .status();
  }
};

// The shared sandbox: the ctest fixture's (NEEDS_S3), or one of our own when run by hand.
absl::StatusOr<S3Server*> SharedS3() {
  static absl::StatusOr<S3Server>* shared = [] {
    const char* env = std::getenv("DS_S3_SANDBOX");
    auto s = S3Server::Load(env != nullptr ? env : DS_S3_SANDBOX_STATE);
    if (!s.ok()) {
      s = S3Server::Start(
          (fs::path(::testing::TempDir()) / testing::PgSandbox::UniqueName("s3-sandbox")).string());
      if (s.ok()) {
        static const std::string state = s->state_file;
        std::atexit([] {
          (void)testing::RunCommand({testing::SourceDir() + "/scripts/s3-sandbox", "stop", state});
        });
      }
    }
    return new absl::StatusOr<S3Server>(std::move(s));
  }();
  if (!shared->ok()) return shared->status();
  return &**shared;
}

class S3E2eTest : public WorkerE2eTest {
 protected:
  void SetUp() override {
    WorkerE2eTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    auto s3 = SharedS3();
    if (!s3.ok()) {
      if (std::string(std::getenv("DS_REQUIRE_SERVERS") ? std::getenv("DS_REQUIRE_SERVERS")
                                                        : "1") == "0") {
        GTEST_SKIP() << "S3 sandbox unavailable and DS_REQUIRE_SERVERS=0: " << s3.status();
      }
      FAIL() << "S3 sandbox unavailable: " << s3.status();
    }
    s3_ = *s3;
    // Bucket names are lower case letters, digits and '-'.
    bucket_ = absl::StrReplaceAll(testing::PgSandbox::UniqueName("ds-e2e"), {{"_", "-"}});
    ASSERT_TRUE(Reader(*s3_, {"mkbucket", bucket_}).ok());
  }

  void TearDown() override {
    if (own_s3_.has_value()) (void)own_s3_->Run("stop");
    WorkerE2eTest::TearDown();
  }

  /// tests/readers/read_s3.py against `server`.
  absl::StatusOr<std::string> Reader(const S3Server& server, std::vector<std::string> args) {
    std::vector<std::string> argv = {"env"};
    for (std::string& e : server.Env(dir_)) argv.push_back(std::move(e));
    argv.push_back(testing::PythonBin());
    argv.push_back(testing::SourceDir() + "/tests/readers/read_s3.py");
    argv.insert(argv.end(), args.begin(), args.end());
    auto out = testing::RunCommandOk(argv);
    EXPECT_TRUE(out.ok()) << out.status();
    return out;
  }

  nlohmann::json List(const S3Server& server, const std::string& prefix = "cdc/") {
    auto out = Reader(server, {"list", bucket_, prefix});
    return out.ok() ? nlohmann::json::parse(*out) : nlohmann::json::array();
  }

  /// The destination's objects downloaded and replayed by the independent readers:
  /// {"changes", "distinct", "rows": {key: "c1|c2|..."}} for public.`table`.
  nlohmann::json Replay(const S3Server& server, absl::string_view format, absl::string_view table,
                        const std::vector<std::string>& columns,
                        const std::string& prefix = "cdc/") {
    const fs::path local = dir_ / testing::PgSandbox::UniqueName("download");
    if (!Reader(server, {"download", bucket_, prefix, local.string()}).ok()) return {};
    std::vector<std::string> argv = {
        testing::PythonBin(), testing::SourceDir() + "/tests/readers/replay_changes.py",
        std::string(format), local.string(), absl::StrCat("public.", table)};
    argv.insert(argv.end(), columns.begin(), columns.end());
    auto out = testing::RunCommandOk(argv);
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok()) return {};
    nlohmann::json all = nlohmann::json::parse(*out);
    const std::string name = absl::StrCat("public.", table);
    return all.contains(name) ? all[name] : nlohmann::json::object();
  }

  /// The same rendering from the source: key → "c1|c2|...", NULL as "NULL".
  nlohmann::json SourceRows(absl::string_view table, const std::vector<std::string>& columns) {
    std::vector<std::string> exprs;
    for (size_t i = 1; i < columns.size(); ++i) {
      exprs.push_back(absl::StrCat("coalesce(", columns[i], "::text, 'NULL')"));
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

  /// A flow replicating the database to `server`'s bucket under "cdc/".
  std::string WriteS3Flow(const S3Server& server, absl::string_view format,
                          const nlohmann::json& extra_source = nlohmann::json::object(),
                          const nlohmann::json& extra_dest = nlohmann::json::object(),
                          absl::string_view name = "e2e") {
    nlohmann::json flow = {{"name", std::string(name)},
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
                            {{{"name", "lake"},
                              {"type", "s3"},
                              {"options",
                               {{"bucket", bucket_},
                                {"prefix", "cdc/"},
                                {"region", "us-east-1"},
                                {"endpoint", server.endpoint()}}}}}}};
    for (auto& [k, v] : extra_source.items()) flow["source"]["options"][k] = v;
    for (auto& [k, v] : extra_dest.items()) flow["destinations"][0]["options"][k] = v;
    const std::string path = (dir_ / absl::StrCat(name, ".flow.json")).string();
    std::ofstream(path) << flow.dump(2);
    return path;
  }

  std::unique_ptr<testing::BackgroundProcess> SpawnS3(const S3Server& server,
                                                      const std::string& flow,
                                                      std::vector<std::string> extra_args = {}) {
    std::vector<std::string> argv = {DS_WORKER_BIN, "-flow", flow};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    std::vector<std::string> env = Env();
    for (std::string& e : server.Env(dir_)) env.push_back(std::move(e));
    auto p = testing::BackgroundProcess::Spawn(argv, env, Log());
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? std::move(*p) : nullptr;
  }

  int RunS3(const S3Server& server, const std::string& flow, int empty_reads = 3) {
    auto p = SpawnS3(server, flow, {"-max-empty-reads", absl::StrCat(empty_reads)});
    return p != nullptr ? p->Wait() : -1;
  }

  std::string UtcDate() { return Value("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')"); }

  // Inserts, updates (one to NULL) and deletes across several transactions.
  void WriteChanges(absl::string_view table, int from, int to) {
    for (int i = from; i < to; i += 3) {
      Sql(absl::StrCat("INSERT INTO ", table, " SELECT g, 'note ' || g, g * 1.25, g % 2 = 0 ",
                       "FROM generate_series(", i, ", ", std::min(i + 2, to - 1), ") g"));
    }
    Sql(absl::StrCat("UPDATE ", table, " SET note = 'changed', amount = NULL WHERE id = ", from));
    Sql(absl::StrCat("DELETE FROM ", table, " WHERE id = ", from + 1));
  }

  const std::vector<std::string> kColumns = {"id", "note", "amount", "flag"};
  const S3Server* s3_ = nullptr;
  std::optional<S3Server> own_s3_;
  std::string bucket_;
};

struct FormatCase {
  std::string format;
  std::string extension;
  std::string content_type;
};

void PrintTo(const FormatCase& c, std::ostream* os) { *os << c.format; }

class S3FormatTest : public S3E2eTest, public ::testing::WithParamInterface<FormatCase> {};

TEST_P(S3FormatTest, ReplicatesToTheBucketReadBackByIndependentReaders) {
  const FormatCase& c = GetParam();
  Sql("CREATE TABLE items (id int PRIMARY KEY, note text, amount numeric(12,2), flag boolean)");
  const std::string flow = WriteS3Flow(*s3_, c.format);
  ASSERT_EQ(RunS3(*s3_, flow, 1), 0) << ReadFile(Log());  // creates the slot and publication
  const std::string first_date = UtcDate();
  WriteChanges("items", 1, 40);
  const std::string last_date = UtcDate();
  ASSERT_EQ(RunS3(*s3_, flow), 0) << ReadFile(Log());

  const nlohmann::json objects = List(*s3_);
  ASSERT_FALSE(objects.empty()) << ReadFile(Log());
  const std::regex layout(absl::StrCat(
      R"(cdc/public\.items/date=(\d{4}-\d{2}-\d{2})/[0-9A-F]{16}-\d{10}\.)", c.extension));
  for (const auto& o : objects) {
    const std::string key = o["key"];
    std::smatch m;
    ASSERT_TRUE(std::regex_match(key, m, layout)) << key;
    EXPECT_TRUE(m[1] == first_date || m[1] == last_date) << key;
    EXPECT_EQ(o["content_type"], c.content_type) << key;
    EXPECT_GT(o["size"].get<int64_t>(), 0) << key;
  }

  const nlohmann::json replayed = Replay(*s3_, c.format, "items", kColumns);
  ASSERT_TRUE(replayed.contains("rows")) << replayed.dump();
  EXPECT_EQ(replayed["rows"], SourceRows("items", kColumns));
  EXPECT_EQ(replayed["changes"], replayed["distinct"]) << "a change was delivered twice";
  EXPECT_EQ(replayed["changes"].get<int>(), 39 + 2);  // inserts, one update, one delete
}

INSTANTIATE_TEST_SUITE_P(
    Formats, S3FormatTest,
    ::testing::Values(FormatCase{"parquet", "parquet", "application/vnd.apache.parquet"},
                      FormatCase{"arrow", "arrows", "application/vnd.apache.arrow.stream"},
                      FormatCase{"avro", "avro", "application/avro"},
                      FormatCase{"json", "jsonl", "application/x-ndjson"}),
    [](const ::testing::TestParamInfo<FormatCase>& info) { return info.param.format; });

TEST_F(S3E2eTest, AReplayOfTheSameWalOverwritesObjectsAndNeverDuplicates) {
  Sql("CREATE TABLE items (id int PRIMARY KEY, note text, amount numeric(12,2), flag boolean)");
  Sql("CREATE PUBLICATION e2e_pub FOR ALL TABLES");
  Sql(absl::StrCat("SELECT pg_create_logical_replication_slot('", slot_, "', 'pgoutput')"));
  // A copy of the slot at the same position: a second run from it receives the same WAL again,
  // as a worker restarted from an older checkpoint does.
  const std::string replay_slot = testing::PgSandbox::UniqueName("replay");
  slots_to_drop_.push_back(replay_slot);
  Sql(absl::StrCat("SELECT pg_copy_logical_replication_slot('", slot_, "', '", replay_slot, "')"));
  WriteChanges("items", 1, 40);

  // Batches cut by row count (the whole backlog is read well within batch_timeout), so both runs
  // cut the WAL alike.
  const nlohmann::json source = {{"batch_size", "5"}, {"batch_timeout", "2s"}};
  ASSERT_EQ(RunS3(*s3_, WriteS3Flow(*s3_, "parquet", source), 2), 0) << ReadFile(Log());
  const nlohmann::json first = List(*s3_);
  ASSERT_GT(first.size(), 3u) << first.dump();
  double first_newest = 0;
  std::set<std::string> first_keys;
  for (const auto& o : first) {
    first_keys.insert(o["key"].get<std::string>());
    first_newest = std::max(first_newest, o["last_modified"].get<double>());
  }
  const nlohmann::json once = Replay(*s3_, "parquet", "items", kColumns);

  absl::SleepFor(absl::Milliseconds(1100));  // LastModified has a resolution of one second
  nlohmann::json replay_source = source;
  replay_source["slot"] = replay_slot;
  const std::string replay_flow = WriteS3Flow(*s3_, "parquet", replay_source, {}, "e2e-replay");
  ASSERT_EQ(RunS3(*s3_, replay_flow, 2), 0) << ReadFile(Log());

  const nlohmann::json second = List(*s3_);
  std::set<std::string> second_keys;
  for (const auto& o : second) {
    second_keys.insert(o["key"].get<std::string>());
    EXPECT_GT(o["last_modified"].get<double>(), first_newest)
        << o["key"] << " was not rewritten by the replay";
  }
  EXPECT_EQ(second_keys, first_keys) << "the replay named its objects differently";
  const nlohmann::json twice = Replay(*s3_, "parquet", "items", kColumns);
  EXPECT_EQ(twice["rows"], SourceRows("items", kColumns));
  EXPECT_EQ(twice["changes"], once["changes"]) << "the replay added rows";
  EXPECT_EQ(twice["changes"], twice["distinct"]);
}

TEST_F(S3E2eTest, AServerOutageIsRetriedHoldsTheCheckpointAndLosesNothing) {
  // A server of this test's own: freezing it must not disturb the other tests.
  auto own = S3Server::Start((dir_ / "s3.state").string());
  ASSERT_TRUE(own.ok()) << own.status();
  own_s3_ = *own;
  const S3Server& server = *own_s3_;
  ASSERT_TRUE(Reader(server, {"mkbucket", bucket_}).ok());

  Sql("CREATE TABLE items (id int PRIMARY KEY, note text, amount numeric(12,2), flag boolean)");
  const std::string flow = WriteS3Flow(server, "parquet");
  ASSERT_EQ(RunS3(server, flow, 1), 0) << ReadFile(Log());
  auto worker = SpawnS3(server, flow);
  ASSERT_NE(worker, nullptr);

  auto wait_for = [&](const std::function<bool()>& done, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (done()) return true;
      absl::SleepFor(absl::Milliseconds(200));
    }
    return done();
  };
  auto checkpoint = [&]() -> Lsn {
    auto out = testing::RunCommand({"sqlite3", (dir_ / "checkpoints.db").string(),
                                    "SELECT lsn FROM checkpoints WHERE flow_id = 'e2e'"});
    if (!out.ok() || out->exit_code != 0) return Lsn();
    auto lsn = Lsn::Parse(absl::StripAsciiWhitespace(out->out));
    return lsn.ok() ? *lsn : Lsn();
  };

  WriteChanges("items", 1, 10);
  const Lsn a = ValueLsn("SELECT pg_current_wal_insert_lsn()");
  ASSERT_TRUE(wait_for([&] { return ConfirmedFlush() >= a; }, absl::Seconds(60)))
      << ReadFile(Log());

  ASSERT_TRUE(server.Run("pause").ok());
  const Lsn held = checkpoint();
  ASSERT_TRUE(held.valid());
  // Until the outage's changes arrive, an idle flow may still advance to keepalive positions
  // (other tests share the server's WAL). Those may even fall inside the first transaction
  // written now (the walsender reports how far it has decoded, and with synchronous_commit=off
  // the WAL is flushed in pieces): that is safe, PostgreSQL resends every transaction whose
  // commit is past the restart position. What must never happen is a checkpoint at or past the
  // commit of a transaction the bucket does not hold: `first_commit` bounds the first one.
  Sql("INSERT INTO items SELECT g, 'note ' || g, g * 1.25, true FROM generate_series(98, 99) g");
  const Lsn first_commit = ValueLsn("SELECT pg_current_wal_insert_lsn()");
  WriteChanges("items", 100, 130);
  const Lsn b = ValueLsn("SELECT pg_current_wal_insert_lsn()");
  const bool retried = wait_for([&] { return absl::StrContains(ReadFile(Log()), "retrying in"); },
                                absl::Seconds(90));
  // Whatever happens below, the server must run again.
  const Lsn during_checkpoint = checkpoint();
  const Lsn during_confirmed = ConfirmedFlush();
  EXPECT_EQ(worker->Poll(), std::nullopt) << "the worker gave up\n" << ReadFile(Log());
  ASSERT_TRUE(server.Run("resume").ok());
  EXPECT_TRUE(retried) << ReadFile(Log());
  for (absl::string_view line : absl::StrSplit(ReadFile(Log()), '\n')) {
    if (absl::StrContains(line, "retrying in")) {
      RecordProperty("first_retry", std::string(line));  // how the outage looked to the worker
      break;
    }
  }
  EXPECT_LT(during_checkpoint, first_commit)
      << "the checkpoint passed a transaction the bucket does not hold (held at " << held.ToString()
      << " when the server froze)";
  EXPECT_LT(during_confirmed, b) << "PostgreSQL was told of changes the bucket does not hold";

  ASSERT_TRUE(
      wait_for([&] { return ConfirmedFlush() >= b && checkpoint() >= b; }, absl::Seconds(120)))
      << ReadFile(Log());
  worker->Signal(SIGTERM);
  EXPECT_EQ(worker->Wait(), 0) << ReadFile(Log());

  const nlohmann::json replayed = Replay(server, "parquet", "items", kColumns);
  ASSERT_TRUE(replayed.contains("rows")) << replayed.dump();
  EXPECT_EQ(replayed["rows"], SourceRows("items", kColumns));
  EXPECT_EQ(replayed["changes"], replayed["distinct"]);
}

TEST_F(S3E2eTest, TheExampleFlowWorksAsWritten) {
  // examples/flows/postgres_to_s3_parquet.json as shipped, with the source DSN pointed at the
  // sandbox; the S3 endpoint and credentials come from the standard AWS variables.
  nlohmann::json flow = nlohmann::json::parse(
      ReadFile(testing::SourceDir() + "/examples/flows/postgres_to_s3_parquet.json"));
  flow["source"]["options"]["dsn"] = pg().Dsn(db_);
  const std::string slot = flow["source"]["options"]["slot"];
  slots_to_drop_.push_back(slot);
  const std::string bucket = flow["destinations"][0]["options"]["bucket"];
  const std::string path = (dir_ / "example.json").string();
  std::ofstream(path) << flow.dump(2);
  bucket_ = bucket;
  ASSERT_TRUE(Reader(*s3_, {"mkbucket", bucket_}).ok());
  Sql("CREATE TABLE example_orders (id int PRIMARY KEY, note text, amount numeric(12,2), "
      "flag boolean)");

  auto run = [&] {
    std::vector<std::string> env = Env();
    for (std::string& e : s3_->Env(dir_)) env.push_back(std::move(e));
    env.push_back(absl::StrCat("AWS_ENDPOINT_URL_S3=", s3_->endpoint()));
    auto p = testing::BackgroundProcess::Spawn(
        {DS_WORKER_BIN, "-flow", path, "-max-empty-reads", "2"}, env, Log());
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? (*p)->Wait() : -1;
  };
  ASSERT_EQ(run(), 0) << ReadFile(Log());
  WriteChanges("example_orders", 1, 20);
  ASSERT_EQ(run(), 0) << ReadFile(Log());

  const nlohmann::json objects = List(*s3_, "cdc/public.example_orders/");
  ASSERT_FALSE(objects.empty()) << ReadFile(Log());
  for (const auto& o : objects) {
    EXPECT_TRUE(absl::EndsWith(o["key"].get<std::string>(), ".parquet")) << o.dump();
    auto codecs = Reader(*s3_, {"parquet-codecs", bucket_, o["key"]});
    ASSERT_TRUE(codecs.ok());
    EXPECT_EQ(nlohmann::json::parse(*codecs), nlohmann::json::array({"GZIP"})) << o["key"];
  }
  const nlohmann::json replayed = Replay(*s3_, "parquet", "example_orders", kColumns);
  ASSERT_TRUE(replayed.contains("rows")) << replayed.dump();
  EXPECT_EQ(replayed["rows"], SourceRows("example_orders", kColumns));
}

}  // namespace
}  // namespace ductstream::e2e
