// pgstream end to end: ductstream-worker replicates a table into the Postgres-backed stream, and
// the `ductstream` API server (DUCTSTREAM_POSTGRES_DSN = the stream database) serves it through
// StreamService Pull / Ack / Replay, over gRPC, through `ductstream-admin stream pull|ack|replay`
// and through examples/stream_consumer.sh (grpcurl + jq).

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "ductstream/v1/stream.grpc.pb.h"
#include "tests/e2e/worker_e2e.h"

namespace ductstream::e2e {
namespace {

namespace v1 = ::ductstream::v1;

class PgstreamTest : public WorkerE2eTest {
 protected:
  void SetUp() override {
    WorkerE2eTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    auto db = pg().CreateDatabase("pgstream");
    ASSERT_TRUE(db.ok()) << db.status();
    stream_dsn_ = pg().Dsn(*db);
    port_ = testing::FreeLoopbackPort();
  }

  void TearDown() override {
    if (server_ != nullptr) {
      server_->Signal(SIGTERM);
      server_->Wait();
    }
    WorkerE2eTest::TearDown();
  }

  std::string WritePgstreamFlow(const std::string& payload_mode) {
    nlohmann::json flow = {
        {"name", "e2e-pgstream"},
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
         {{{"name", "orders"},
           {"type", "pgstream"},
           {"options",
            {{"dsn", stream_dsn_}, {"format", "json"}, {"payload_mode", payload_mode}}}}}}};
    const std::string path = (dir_ / "pgstream_flow.json").string();
    std::ofstream(path) << flow.dump(2);
    return path;
  }

  void StartServer() {
    const std::vector<std::string> env = {
        absl::StrCat("DUCTSTREAM_GRPC_LISTEN=127.0.0.1:", port_),
        absl::StrCat("DUCTSTREAM_POSTGRES_DSN=", stream_dsn_), "DUCTSTREAM_SUPERVISE=false",
        "DUCTSTREAM_CHECKPOINT_BACKEND=none", "DUCTSTREAM_API_TOKEN="};
    auto p =
        testing::BackgroundProcess::Spawn({DS_SERVER_BIN}, env, (dir_ / "server.log").string());
    ASSERT_TRUE(p.ok()) << p.status();
    server_ = std::move(*p);
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
    channel_ = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port_),
                                         grpc::InsecureChannelCredentials(), args);
    streams_ = v1::StreamService::NewStub(channel_);
    ASSERT_TRUE(
        channel_->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(30)))
        << ReadFile((dir_ / "server.log").string());
  }

  grpc::Status Pull(const std::string& group, int max, v1::StreamPullResponse* out,
                    int visibility = 60) {
    v1::StreamPullRequest req;
    req.set_stream("orders");
    req.set_consumer_group(group);
    req.set_max_messages(max);
    req.set_visibility_timeout_seconds(visibility);
    req.set_consumer_id("e2e");
    grpc::ClientContext ctx;
    return streams_->Pull(&ctx, req, out);
  }

  int64_t Ack(const std::string& group, const std::vector<int64_t>& ids) {
    v1::StreamAckRequest req;
    req.set_stream("orders");
    req.set_consumer_group(group);
    for (int64_t id : ids) req.add_ids(id);
    v1::StreamAckResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = streams_->Ack(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.acked();
  }

  testing::CommandResult Admin(std::vector<std::string> args) {
    args.insert(args.begin(), {DS_ADMIN_BIN, "-endpoint", absl::StrCat("127.0.0.1:", port_)});
    auto r = testing::RunCommand(args);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : testing::CommandResult{};
  }

  // The source changes of the test: 20 inserts, one update, one delete.
  void MakeChanges() {
    Sql("INSERT INTO orders SELECT g, 'row ' || g FROM generate_series(1, 20) g");
    Sql("UPDATE orders SET v = 'changed' WHERE id = 7");
    Sql("DELETE FROM orders WHERE id = 9");
  }

  std::string stream_dsn_;
  int port_ = 0;
  std::unique_ptr<testing::BackgroundProcess> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::StreamService::Stub> streams_;
};

TEST_F(PgstreamTest, WorkerToStreamToPullAndAckReturnsExactlyTheSourceChanges) {
  Sql("CREATE TABLE orders (id int PRIMARY KEY, v text)");
  const std::string flow = WritePgstreamFlow("record");
  ASSERT_EQ(RunWorker(flow, 1), 0) << ReadFile(Log());  // creates the slot
  MakeChanges();
  ASSERT_EQ(RunWorker(flow), 0) << ReadFile(Log());
  StartServer();
  if (HasFatalFailure()) return;

  // Two groups each get every change, exactly once, in WAL order.
  for (const std::string group : {"search", "audit"}) {
    std::vector<nlohmann::json> changes;
    std::set<int64_t> ids;
    for (;;) {
      v1::StreamPullResponse resp;
      grpc::Status s = Pull(group, 8, &resp);
      ASSERT_TRUE(s.ok()) << s.error_message();
      if (resp.messages().empty()) break;
      std::vector<int64_t> batch;
      for (const v1::StreamMessage& m : resp.messages()) {
        EXPECT_TRUE(ids.insert(m.id()).second) << "message " << m.id() << " delivered twice";
        EXPECT_EQ(m.stream(), "orders");
        EXPECT_EQ(m.namespace_(), "public");
        EXPECT_EQ(m.table(), "orders");
        EXPECT_EQ(m.wire_format(), "json");
        EXPECT_TRUE(Lsn::Parse(m.lsn()).ok()) << m.lsn();
        EXPECT_GT(m.created_at().seconds(), 0);
        nlohmann::json change = nlohmann::json::parse(m.payload());
        EXPECT_EQ(change["lsn"], m.lsn());
        changes.push_back(std::move(change));
        batch.push_back(m.id());
      }
      EXPECT_EQ(Ack(group, batch), static_cast<int64_t>(batch.size()));
    }
    ASSERT_EQ(changes.size(), 22u) << group;
    for (int i = 0; i < 20; ++i) {
      EXPECT_EQ(changes[i]["op"], "insert");
      EXPECT_EQ(changes[i]["after"]["id"], i + 1);
      EXPECT_EQ(changes[i]["after"]["v"], absl::StrCat("row ", i + 1));
    }
    EXPECT_EQ(changes[20]["op"], "update");
    EXPECT_EQ(changes[20]["after"], nlohmann::json({{"id", 7}, {"v", "changed"}}));
    EXPECT_EQ(changes[21]["op"], "delete");
    EXPECT_EQ(changes[21]["key"], nlohmann::json({{"id", 9}}));
  }

  // Required fields.
  v1::StreamPullResponse resp;
  grpc::Status missing = Pull("", 1, &resp);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(PgstreamTest, AdminStreamPullAckReplayAndTheExampleConsumer) {
  Sql("CREATE TABLE orders (id int PRIMARY KEY, v text)");
  const std::string flow = WritePgstreamFlow("record");
  ASSERT_EQ(RunWorker(flow, 1), 0) << ReadFile(Log());
  MakeChanges();
  ASSERT_EQ(RunWorker(flow), 0) << ReadFile(Log());
  StartServer();
  if (HasFatalFailure()) return;

  // pull -json: SPEC §2.3's document.
  auto pulled = Admin({"stream", "pull", "-stream", "orders", "-group", "cli", "-max", "5",
                       "-visibility", "60", "-json"});
  ASSERT_EQ(pulled.exit_code, 0) << pulled.err;
  const nlohmann::json doc = nlohmann::json::parse(pulled.out);
  EXPECT_EQ(doc["stream"], "orders");
  EXPECT_EQ(doc["consumer_group"], "cli");
  ASSERT_EQ(doc["count"], 5);
  std::vector<std::string> ids;
  for (const auto& m : doc["messages"]) {
    ids.push_back(absl::StrCat(m["id"].get<int64_t>()));
    EXPECT_EQ(m["namespace"], "public");
    EXPECT_EQ(m["table"], "orders");
    EXPECT_EQ(m["wire_format"], "json");
    EXPECT_FALSE(m["payload_base64"].get<std::string>().empty());
    EXPECT_FALSE(m["lsn"].get<std::string>().empty());
  }
  const std::string first_lsn = doc["messages"][0]["lsn"];

  // pull (text).
  auto text = Admin({"stream", "pull", "-stream", "orders", "-group", "cli", "-max", "3"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_TRUE(absl::StartsWith(text.out, "Pulled 3 messages:\n")) << text.out;
  EXPECT_TRUE(absl::StrContains(text.out, "- id=")) << text.out;
  EXPECT_TRUE(absl::StrContains(text.out, " table=orders lsn=")) << text.out;
  EXPECT_TRUE(absl::StrContains(text.out, " bytes=")) << text.out;

  // ack.
  auto acked = Admin(
      {"stream", "ack", "-stream", "orders", "-group", "cli", "-ids", absl::StrJoin(ids, ",")});
  ASSERT_EQ(acked.exit_code, 0) << acked.err;
  EXPECT_EQ(acked.out, "Acked 5 messages\n");
  auto bad = Admin({"stream", "ack", "-stream", "orders", "-group", "cli", "-ids", "1,x"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(bad.err, "INVALID_ARGUMENT")) << bad.err;

  // replay from the first message's LSN: the 5 acked and the 3 claimed ones.
  auto replay =
      Admin({"stream", "replay", "-stream", "orders", "-group", "cli", "-from-lsn", first_lsn});
  ASSERT_EQ(replay.exit_code, 0) << replay.err;
  EXPECT_EQ(replay.out, "Reset 8 deliveries for stream orders group cli\n");
  auto since = Admin({"stream", "replay", "-stream", "orders", "-group", "cli", "-since",
                      "2000-01-01T00:00:00Z", "-json"});
  ASSERT_EQ(since.exit_code, 0) << since.err;
  // Nothing left to reset (proto JSON leaves the zero out).
  const nlohmann::json since_doc = nlohmann::json::parse(since.out);
  EXPECT_TRUE(!since_doc.contains("reset") || since_doc["reset"] == "0") << since.out;
  auto bad_lsn =
      Admin({"stream", "replay", "-stream", "orders", "-group", "cli", "-from-lsn", "nope"});
  EXPECT_EQ(bad_lsn.exit_code, 1);

  // The example consumer drains the group: all 22 changes, acked.
  auto consumer =
      testing::RunCommand({"env", absl::StrCat("ENDPOINT=127.0.0.1:", port_), "STREAM=orders",
                           "GROUP=cli", "MAX=10", "ONCE=1", absl::StrCat("GRPCURL=", DS_GRPCURL),
                           "bash", testing::SourceDir() + "/examples/stream_consumer.sh"});
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  EXPECT_EQ(consumer->exit_code, 0) << consumer->err;
  int lines = 0;
  int acked_total = 0;
  for (absl::string_view line : absl::StrSplit(consumer->out, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "id=")) {
      ++lines;
      EXPECT_TRUE(absl::StrContains(line, " table=public.orders lsn=")) << line;
    } else if (absl::StartsWith(line, "acked ")) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ');
      acked_total += std::stoi(parts[1]);
    }
  }
  EXPECT_EQ(lines, 22) << consumer->out;
  EXPECT_EQ(acked_total, 22) << consumer->out;
  auto empty = Admin({"stream", "pull", "-stream", "orders", "-group", "cli"});
  EXPECT_EQ(empty.out, "No messages available.\n");
}

TEST_F(PgstreamTest, BatchPayloadsCarryOneDocumentPerTablePerBatch) {
  Sql("CREATE TABLE orders (id int PRIMARY KEY, v text)");
  const std::string flow = WritePgstreamFlow("batch");
  ASSERT_EQ(RunWorker(flow, 1), 0) << ReadFile(Log());
  MakeChanges();
  ASSERT_EQ(RunWorker(flow), 0) << ReadFile(Log());
  StartServer();
  if (HasFatalFailure()) return;
  v1::StreamPullResponse resp;
  ASSERT_TRUE(Pull("g", 100, &resp).ok());
  ASSERT_GE(resp.messages_size(), 1);
  int rows = 0;
  for (const v1::StreamMessage& m : resp.messages()) {
    // JSON Lines: one change per line.
    for (absl::string_view line : absl::StrSplit(m.payload(), '\n', absl::SkipEmpty())) {
      auto change = nlohmann::json::parse(line);
      EXPECT_EQ(change["table"], "orders");
      ++rows;
    }
  }
  EXPECT_EQ(rows, 22);
}

}  // namespace
}  // namespace ductstream::e2e
