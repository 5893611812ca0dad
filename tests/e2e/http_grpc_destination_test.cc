// The http and grpc push destinations end to end: ductstream-worker replicates a real
// PostgreSQL into
//   - a local webhook receiver (tests/readers/http_receiver.py, Python's http.server) that fails
//     every Nth request with 500 or 429, answers some requests only after the client's timeout
//     (the body is stored, the answer lost: a replay), or rejects everything with 400;
//   - a gRPC receiver in this process implementing ductstream.v1.IngestService that answers the
//     first calls with UNAVAILABLE.
// What arrives, deduplicated by idempotency key, must be exactly the source's changes; a 400
// fails the worker with the answer in its log and acknowledges nothing.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "ductstream/store/checkpoint_store.h"
#include "ductstream/v1/ingest.grpc.pb.h"
#include "tests/e2e/worker_e2e.h"

namespace ductstream::e2e {
namespace {

// The source table as the test expects to find it at the receiver: id → note.
using Rows = std::map<int64_t, std::string>;

// Applies one change (the json row format: op, after, key) to `rows`.
void Apply(const nlohmann::json& change, Rows& rows) {
  const std::string op = change["op"].get<std::string>();
  if (op == "insert" || op == "update") {
    rows[change["after"]["id"].get<int64_t>()] = change["after"]["note"].get<std::string>();
  } else if (op == "delete") {
    rows.erase(change["key"]["id"].get<int64_t>());
  }
}

class PushE2eTest : public WorkerE2eTest {
 protected:
  Rows SourceRows() {
    Rows rows;
    auto r = sql_->Exec("SELECT id, note FROM t ORDER BY id");
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return rows;
    for (int i = 0; i < postgres::RowCount(*r); ++i) {
      rows[std::stoll(std::string(*postgres::GetValue(*r, i, 0)))] =
          std::string(*postgres::GetValue(*r, i, 1));
    }
    return rows;
  }

  void Changes() {
    Sql("INSERT INTO t SELECT g, 'note ' || g FROM generate_series(1, 120) g");
    Sql("UPDATE t SET note = note || ' updated' WHERE id % 5 = 0");
    Sql("DELETE FROM t WHERE id % 7 = 0");
    for (int i = 200; i < 230; ++i)
      Sql(absl::StrCat("INSERT INTO t VALUES (", i, ", 'one ", i, "')"));
  }

  std::string WritePushFlow(const std::string& type, const std::string& format,
                            const nlohmann::json& options) {
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

  Lsn Checkpoint() {
    auto store = store::OpenSqliteCheckpointStore((dir_ / "checkpoints.db").string());
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return Lsn();
    auto cp = (*store)->Get(FlowId("e2e"));
    return cp.ok() ? cp->lsn : Lsn();
  }
};

// --- http -------------------------------------------------------------------------------------

class HttpE2eTest : public PushE2eTest {
 protected:
  void StartReceiver(std::vector<std::string> flags) {
    const std::string port_file = (dir_ / "receiver.port").string();
    std::vector<std::string> argv = {testing::PythonBin(),
                                     testing::SourceDir() + "/tests/readers/http_receiver.py",
                                     "--port-file",
                                     port_file,
                                     "--log",
                                     ReceivedLog()};
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto p = testing::BackgroundProcess::Spawn(argv, {}, (dir_ / "receiver.out").string());
    ASSERT_TRUE(p.ok()) << p.status();
    receiver_ = std::move(*p);
    for (int i = 0; i < 200 && !fs::exists(port_file); ++i) absl::SleepFor(absl::Milliseconds(50));
    ASSERT_TRUE(fs::exists(port_file)) << ReadFile((dir_ / "receiver.out").string());
    url_ = absl::StrCat("http://127.0.0.1:", ReadFile(port_file), "/hook?team=data");
  }

  void TearDown() override {
    if (receiver_ != nullptr) {
      receiver_->Signal(SIGTERM);
      receiver_->Wait();
    }
    PushE2eTest::TearDown();
  }

  std::string ReceivedLog() const { return (dir_ / "received.jsonl").string(); }

  // Every request the receiver logged, in arrival order.
  std::vector<nlohmann::json> Requests() {
    std::vector<nlohmann::json> out;
    for (absl::string_view line :
         absl::StrSplit(ReadFile(ReceivedLog()), '\n', absl::SkipEmpty())) {
      out.push_back(nlohmann::json::parse(line));
    }
    return out;
  }

  static std::string Body(const nlohmann::json& request) {
    std::string body;
    EXPECT_TRUE(absl::Base64Unescape(request["body_b64"].get<std::string>(), &body));
    return body;
  }

  std::unique_ptr<testing::BackgroundProcess> receiver_;
  std::string url_;
};

TEST_F(HttpE2eTest, RecordModeRetriesFailuresAndTheReceiverDeduplicatesEveryReplay) {
  // Every 4th request fails (500, then 429 alternately); every 11th is stored but answered after
  // the client's 1s timeout, so the destination sends it again: a replay.
  StartReceiver(
      {"--fail-every", "4", "--alt-status", "429", "--slow-every", "11", "--slow-seconds", "2"});
  Sql("CREATE TABLE t (id int PRIMARY KEY, note text)");
  const std::string flow = WritePushFlow("http", "json",
                                         {{"url", url_},
                                          {"timeout", "1s"},
                                          {"headers", "Authorization:Bearer token123,X-Team:data"},
                                          {"max_retries", "6"},
                                          {"backoff_base", "10ms"},
                                          {"backoff_max", "100ms"}});
  ASSERT_EQ(RunWorker(flow, 1), 0) << ReadFile(Log());  // creates the slot
  Changes();
  ASSERT_EQ(RunWorker(flow), 0) << ReadFile(Log());
  const std::string log = ReadFile(Log());
  EXPECT_TRUE(absl::StrContains(log, "http destination status 500")) << log;
  EXPECT_TRUE(absl::StrContains(log, "http destination status 429")) << log;
  EXPECT_TRUE(absl::StrContains(log, "sending again")) << log;

  std::map<std::string, nlohmann::json> by_key;  // the receiver's dedup by idempotency key
  int stored = 0;
  for (const nlohmann::json& r : Requests()) {
    EXPECT_EQ(r["method"], "POST");
    EXPECT_EQ(r["path"], "/hook?team=data");
    EXPECT_EQ(r["headers"]["Authorization"], "Bearer token123");
    EXPECT_EQ(r["headers"]["X-Team"], "data");
    EXPECT_EQ(r["headers"]["Content-Type"], "application/json");
    EXPECT_EQ(r["headers"]["X-Ductstream-Table"], "public.t");
    if (r["status"].get<int>() >= 300) continue;
    ++stored;
    const nlohmann::json change = nlohmann::json::parse(Body(r));
    const std::string key = r["key"].get<std::string>();
    // The key is the change's identity: commit LSN and sequence.
    EXPECT_EQ(key, absl::StrCat(change["commit_lsn"].get<std::string>(), ":",
                                change["seq"].get<int64_t>()));
    auto [it, inserted] = by_key.emplace(key, change);
    if (!inserted) {
      EXPECT_EQ(it->second, change) << "one key, two different changes: " << key;
    }
  }
  EXPECT_GT(stored, static_cast<int>(by_key.size())) << "no replay reached the receiver";
  EXPECT_EQ(by_key.size(), 120u + 24u + 17u + 30u);  // inserts, updates, deletes, inserts

  std::vector<nlohmann::json> ordered;
  for (auto& [k, c] : by_key) ordered.push_back(c);
  std::sort(ordered.begin(), ordered.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
    auto la = Lsn::Parse(a["commit_lsn"].get<std::string>());
    auto lb = Lsn::Parse(b["commit_lsn"].get<std::string>());
    return std::make_pair(*la, a["seq"].get<int64_t>()) <
           std::make_pair(*lb, b["seq"].get<int64_t>());
  });
  Rows rows;
  for (const nlohmann::json& c : ordered) Apply(c, rows);
  EXPECT_EQ(rows, SourceRows());
}

TEST_F(HttpE2eTest, BatchModeSendsJsonLinesWithARangeKeyAndLosesNothing) {
  // The receiver reads the idempotency key from the header the flow names.
  StartReceiver({"--fail-first", "2", "--fail-every", "5", "--key-header", "X-Idempotency"});
  Sql("CREATE TABLE t (id int PRIMARY KEY, note text)");
  const std::string flow = WritePushFlow("http", "json",
                                         {{"url", url_},
                                          {"payload_mode", "batch"},
                                          {"idempotency_header", "X-Idempotency"},
                                          {"method", "put"},
                                          {"backoff_base", "10ms"},
                                          {"backoff_max", "50ms"}});
  ASSERT_EQ(RunWorker(flow, 1), 0) << ReadFile(Log());
  Changes();
  ASSERT_EQ(RunWorker(flow), 0) << ReadFile(Log());
  EXPECT_TRUE(absl::StrContains(ReadFile(Log()), "sending again")) << ReadFile(Log());

  std::set<std::string> keys;
  std::map<std::pair<Lsn, int64_t>, nlohmann::json> changes;  // dedup per change
  for (const nlohmann::json& r : Requests()) {
    EXPECT_EQ(r["method"], "PUT");
    if (r["status"].get<int>() >= 300) continue;
    EXPECT_EQ(r["headers"]["Content-Type"], "application/x-ndjson");
    const std::string key = r["key"].get<std::string>();
    EXPECT_TRUE(absl::StrContains(key, "..")) << key;
    keys.insert(key);
    int lines = 0;
    for (absl::string_view line : absl::StrSplit(Body(r), '\n', absl::SkipEmpty())) {
      const nlohmann::json c = nlohmann::json::parse(line);
      changes[{*Lsn::Parse(c["commit_lsn"].get<std::string>()), c["seq"].get<int64_t>()}] = c;
      ++lines;
    }
    EXPECT_EQ(absl::StrCat(lines), r["headers"]["X-Ductstream-Rows"].get<std::string>());
  }
  EXPECT_FALSE(keys.empty());
  Rows rows;
  for (auto& [id, c] : changes) Apply(c, rows);
  EXPECT_EQ(rows, SourceRows());
}

TEST_F(HttpE2eTest, ARejectedRequestFailsTheWorkerWithTheAnswerAndAcknowledgesNothing) {
  StartReceiver({"--reject-status", "400"});
  Sql("CREATE TABLE t (id int PRIMARY KEY, note text)");
  const std::string flow = WritePushFlow("http", "json", {{"url", url_}});
  ASSERT_EQ(RunWorker(flow, 1), 0) << ReadFile(Log());
  const Lsn checkpoint = Checkpoint();
  const Lsn confirmed = ConfirmedFlush();
  Sql("INSERT INTO t VALUES (1, 'one'), (2, 'two')");
  const Lsn change = ValueLsn("SELECT pg_current_wal_insert_lsn()");
  EXPECT_EQ(RunWorker(flow), 1) << ReadFile(Log());
  const std::string log = ReadFile(Log());
  EXPECT_TRUE(absl::StrContains(log, "http destination status 400")) << log;
  EXPECT_TRUE(absl::StrContains(log, "bad payload: the receiver rejects this request")) << log;
  EXPECT_EQ(Requests().size(), 1u) << "a 400 must not be retried";
  EXPECT_LT(Checkpoint(), change);
  EXPECT_GE(Checkpoint(), checkpoint);
  EXPECT_LT(ConfirmedFlush(), change);
  EXPECT_GE(ConfirmedFlush(), confirmed);
}

// examples/flows/postgres_to_http.json as shipped, with only the endpoints (DSN, slot, URL)
// pointed at the test's servers.
TEST_F(HttpE2eTest, TheExampleFlowRunsAsShipped) {
  StartReceiver({});
  Sql("CREATE TABLE t (id int PRIMARY KEY, note text)");
  nlohmann::json flow = nlohmann::json::parse(
      ReadFile(testing::SourceDir() + "/examples/flows/postgres_to_http.json"));
  flow["source"]["options"]["dsn"] = pg().Dsn(db_);
  flow["source"]["options"]["slot"] = slot_;
  flow["source"]["options"]["batch_timeout"] = "200ms";
  flow["destinations"][0]["options"]["url"] = url_;
  const std::string path = (dir_ / "example.json").string();
  std::ofstream(path) << flow.dump(2);
  ASSERT_EQ(RunWorker(path, 1), 0) << ReadFile(Log());
  Sql("INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 10) g");
  ASSERT_EQ(RunWorker(path), 0) << ReadFile(Log());
  std::set<std::string> keys;
  for (const nlohmann::json& r : Requests()) {
    EXPECT_EQ(r["headers"]["Authorization"], "Bearer token123");
    EXPECT_EQ(r["status"], 200);
    keys.insert(r["key"].get<std::string>());
  }
  EXPECT_EQ(keys.size(), 10u);
}

// --- grpc -------------------------------------------------------------------------------------

class IngestReceiver final : public v1::IngestService::Service {
 public:
  explicit IngestReceiver(int fail_first) : fail_left_(fail_first) {}

  grpc::Status IngestBatch(grpc::ServerContext* ctx, const v1::IngestBatchRequest* req,
                           v1::IngestBatchResponse* resp) override {
    absl::MutexLock lock(&mu_);
    ++calls_;
    auto auth = ctx->client_metadata().find("authorization");
    if (auth == ctx->client_metadata().end() ||
        std::string(auth->second.data(), auth->second.size()) != "Bearer s3cret") {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "no token");
    }
    if (fail_left_ > 0) {
      --fail_left_;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "warming up");
    }
    requests_.push_back(*req);
    resp->set_accepted(req->rows());
    return grpc::Status::OK;
  }

  std::vector<v1::IngestBatchRequest> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

 private:
  absl::Mutex mu_;
  int fail_left_ ABSL_GUARDED_BY(mu_);
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<v1::IngestBatchRequest> requests_ ABSL_GUARDED_BY(mu_);
};

class GrpcE2eTest : public PushE2eTest {
 protected:
  void StartReceiver(int fail_first) {
    service_ = std::make_unique<IngestReceiver>(fail_first);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
    PushE2eTest::TearDown();
  }

  std::unique_ptr<IngestReceiver> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(GrpcE2eTest, ProtoBatchesArriveAfterUnavailableAndEqualTheSource) {
  StartReceiver(/*fail_first=*/3);
  Sql("CREATE TABLE t (id int PRIMARY KEY, note text)");
  const std::string flow = WritePushFlow("grpc", "proto",
                                         {{"target", absl::StrCat("127.0.0.1:", port_)},
                                          {"token", "s3cret"},
                                          {"max_retries", "5"},
                                          {"backoff_base", "10ms"},
                                          {"backoff_max", "100ms"}});
  ASSERT_EQ(RunWorker(flow, 1), 0) << ReadFile(Log());
  Changes();
  ASSERT_EQ(RunWorker(flow), 0) << ReadFile(Log());
  EXPECT_TRUE(absl::StrContains(ReadFile(Log()), "sending again")) << ReadFile(Log());
  EXPECT_GE(service_->calls(), 4);

  std::map<std::pair<Lsn, int64_t>, nlohmann::json> changes;
  std::set<std::string> keys;
  for (const v1::IngestBatchRequest& req : service_->requests()) {
    EXPECT_EQ(req.destination(), "out");
    EXPECT_EQ(req.schema(), "public");
    EXPECT_EQ(req.table(), "t");
    EXPECT_EQ(req.wire_format(), v1::WIRE_FORMAT_PROTO);
    ASSERT_TRUE(req.has_batch());
    EXPECT_EQ(req.rows(), req.batch().records_size());
    EXPECT_TRUE(keys.insert(req.idempotency_key()).second) << "replayed " << req.idempotency_key();
    EXPECT_EQ(req.idempotency_key(),
              absl::StrCat(req.first_commit_lsn(), ":", req.first_seq(), "..",
                           req.last_commit_lsn(), ":", req.last_seq()));
    for (const v1::Record& r : req.batch().records()) {
      nlohmann::json c = {{"op", r.operation()},
                          {"after", nlohmann::json::parse(r.after_json())},
                          {"key", nlohmann::json::parse(r.key())}};
      changes[{*Lsn::Parse(r.commit_lsn()), r.seq()}] = c;
    }
  }
  EXPECT_EQ(changes.size(), 120u + 24u + 17u + 30u);
  Rows rows;
  for (auto& [id, c] : changes) Apply(c, rows);
  EXPECT_EQ(rows, SourceRows());
}

TEST_F(GrpcE2eTest, APermanentErrorFailsTheWorkerAndAcknowledgesNothing) {
  StartReceiver(/*fail_first=*/0);
  Sql("CREATE TABLE t (id int PRIMARY KEY, note text)");
  // No token: the receiver answers UNAUTHENTICATED, which no retry can fix.
  const std::string flow = WritePushFlow(
      "grpc", "arrow", {{"target", absl::StrCat("127.0.0.1:", port_)}, {"backoff_base", "10ms"}});
  ASSERT_EQ(RunWorker(flow, 1), 0) << ReadFile(Log());
  Sql("INSERT INTO t VALUES (1, 'one')");
  const Lsn change = ValueLsn("SELECT pg_current_wal_insert_lsn()");
  EXPECT_EQ(RunWorker(flow), 1) << ReadFile(Log());
  EXPECT_TRUE(absl::StrContains(ReadFile(Log()), "no token")) << ReadFile(Log());
  EXPECT_EQ(service_->calls(), 1);
  EXPECT_LT(Checkpoint(), change);
  EXPECT_LT(ConfirmedFlush(), change);
}

}  // namespace
}  // namespace ductstream::e2e
