// The control plane end to end: the real `ductstream` server (control store in PostgreSQL or
// SQLite) supervising real `ductstream-worker -flow-id` processes against the sandbox PostgreSQL,
// driven over gRPC. Rows are checked by the independent reader (tests/readers/replay_changes.py).
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "ductstream/postgres/connection.h"
#include "ductstream/testing/helpers.h"
#include "ductstream/testing/pg_sandbox.h"
#include "ductstream/testing/subprocess.h"
#include "ductstream/v1/checkpoint.grpc.pb.h"
#include "ductstream/v1/flow.grpc.pb.h"

namespace ductstream {
namespace {

namespace fs = std::filesystem;
using testing::ReadFile;
using testing::WaitFor;
namespace v1 = ::ductstream::v1;
using postgres::Connection;

class ControlPlaneTest : public testing::PostgresTest {
 protected:
  void SetUp() override {
    testing::PostgresTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    auto db = pg().CreateDatabase("cp_src");
    ASSERT_TRUE(db.ok()) << db.status();
    source_db_ = *db;
    auto control = pg().CreateDatabase("cp_control");
    ASSERT_TRUE(control.ok()) << control.status();
    control_db_ = *control;
    auto sql = Connection::Connect(pg().Dsn(source_db_));
    ASSERT_TRUE(sql.ok()) << sql.status();
    sql_ = std::move(*sql);
    dir_ = fs::path(::testing::TempDir()) / testing::PgSandbox::UniqueName("cp");
    fs::create_directories(dir_);
    slot_ = testing::PgSandbox::UniqueName("cp_slot");
    port_ = testing::FreeLoopbackPort();
    Sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
  }

  void TearDown() override {
    StopServer();
    if (getenv("DS_DEBUG_SERVER_LOG")) std::cerr << ReadFile((dir_ / "server.log").string());
    if (sql_ != nullptr) {
      (void)sql_->Exec(absl::StrCat(
          "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '",
          slot_, "' AND active"));
      absl::SleepFor(absl::Milliseconds(300));
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

  std::string QueryValue(absl::string_view sql) {
    auto v = sql_->QueryValue(sql);
    return v.ok() ? *v : absl::StrCat("error: ", v.status().ToString());
  }

  void InsertRows(int from, int to) {
    Sql(absl::StrCat("INSERT INTO t SELECT g, 'row ' || g FROM generate_series(", from, ", ", to,
                     ") g"));
  }

  std::vector<std::string> ServerEnv(bool postgres_control, bool supervise = true) {
    std::vector<std::string> env = {
        absl::StrCat("DUCTSTREAM_GRPC_LISTEN=127.0.0.1:", port_),
        absl::StrCat("DUCTSTREAM_WORKER_BIN=", DS_WORKER_BIN),
        absl::StrCat("DUCTSTREAM_WORKER_LOG_DIR=", (dir_ / "worker-logs").string()),
        "DUCTSTREAM_WORKER_LEASE_TTL=3s",
        absl::StrCat("DUCTSTREAM_SUPERVISE=", supervise ? "true" : "false"),
        absl::StrCat("DUCTSTREAM_CHECKPOINT_PATH=", (dir_ / "state.db").string())};
    env.push_back(absl::StrCat("DUCTSTREAM_POSTGRES_DSN=",
                               postgres_control ? pg().Dsn(control_db_) : std::string()));
    if (!token_.empty()) env.push_back(absl::StrCat("DUCTSTREAM_API_TOKEN=", token_));
    return env;
  }

  void StartServer(bool postgres_control, bool supervise = true) {
    env_ = ServerEnv(postgres_control, supervise);
    auto p =
        testing::BackgroundProcess::Spawn({DS_SERVER_BIN}, env_, (dir_ / "server.log").string());
    ASSERT_TRUE(p.ok()) << p.status();
    server_ = std::move(*p);
    // The server takes a moment to listen: retry the connection quickly rather than with
    // gRPC's default backoff (1 s, growing).
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
    channel_ = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port_),
                                         grpc::InsecureChannelCredentials(), args);
    flows_ = v1::FlowService::NewStub(channel_);
    checkpoints_ = v1::CheckpointService::NewStub(channel_);
    ASSERT_TRUE(WaitFor(
        [&] {
          grpc::ClientContext ctx;
          Authorize(ctx);
          v1::ListFlowsResponse resp;
          return flows_->ListFlows(&ctx, v1::ListFlowsRequest(), &resp).ok();
        },
        absl::Seconds(30)))
        << "server did not come up:\n"
        << ReadFile((dir_ / "server.log").string());
  }

  // SIGTERM and wait; the exit code.
  int StopServer() {
    if (server_ == nullptr) return -1;
    server_->Signal(SIGTERM);
    const int code = server_->Wait();
    server_.reset();
    return code;
  }

  void Authorize(grpc::ClientContext& ctx) {
    if (!token_.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", token_));
  }

  v1::Flow FileFlow(const std::string& id) {
    v1::Flow f;
    f.set_id(id);
    f.set_name("control plane e2e");
    f.set_wire_format(v1::WIRE_FORMAT_JSON);
    v1::Endpoint* src = f.mutable_source();
    src->set_name("pg");
    src->set_type(v1::ENDPOINT_TYPE_POSTGRES);
    auto& o = *src->mutable_options();
    o["dsn"] = pg().Dsn(source_db_) + " password=hunter2";
    o["slot"] = slot_;
    o["publication"] = "cp_pub";
    o["batch_timeout"] = "200ms";
    o["status_interval"] = "1s";
    v1::Endpoint* dest = f.add_destinations();
    dest->set_name("files");
    dest->set_type(v1::ENDPOINT_TYPE_FILE);
    (*dest->mutable_options())["path"] = (dir_ / "out").string();
    return f;
  }

  grpc::Status Create(const v1::Flow& flow, bool start, v1::Flow* out) {
    grpc::ClientContext ctx;
    Authorize(ctx);
    v1::CreateFlowRequest req;
    *req.mutable_flow() = flow;
    req.set_start_immediately(start);
    return flows_->CreateFlow(&ctx, req, out);
  }

  template <typename Req, typename Method>
  grpc::Status Call(Method method, const std::string& id, v1::Flow* out) {
    grpc::ClientContext ctx;
    Authorize(ctx);
    Req req;
    req.set_flow_id(id);
    return (flows_.get()->*method)(&ctx, req, out);
  }

  v1::Flow Get(const std::string& id) {
    v1::Flow out;
    grpc::Status s = Call<v1::GetFlowRequest>(&v1::FlowService::Stub::GetFlow, id, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  std::string CheckpointLsn(const std::string& id) {
    grpc::ClientContext ctx;
    Authorize(ctx);
    v1::GetCheckpointRequest req;
    req.set_flow_id(id);
    v1::FlowCheckpoint out;
    grpc::Status s = checkpoints_->GetCheckpoint(&ctx, req, &out);
    return s.ok() ? out.checkpoint().lsn() : absl::StrCat("error: ", s.error_message());
  }

  // key → "v" from the destination files, by the independent reader; and the distinct count.
  nlohmann::json Replay() {
    if (!fs::exists(dir_ / "out")) return nlohmann::json::object();
    auto out = testing::RunCommandOk({testing::PythonBin(),
                                      testing::SourceDir() + "/tests/readers/replay_changes.py",
                                      "json", (dir_ / "out").string(), "public.t", "id", "v"});
    if (!out.ok()) return nlohmann::json::object();
    auto j = nlohmann::json::parse(*out);
    return j.contains("public.t") ? j["public.t"]["rows"] : nlohmann::json::object();
  }

  nlohmann::json SourceRows() {
    nlohmann::json rows = nlohmann::json::object();
    auto r = sql_->Exec("SELECT id::text, coalesce(v, 'NULL') FROM t");
    if (!r.ok()) return rows;
    for (int i = 0; i < postgres::RowCount(*r); ++i) {
      rows[std::string(*postgres::GetValue(*r, i, 0))] = std::string(*postgres::GetValue(*r, i, 1));
    }
    return rows;
  }

  // Waits until the destination holds exactly the source's rows.
  void ExpectDelivered(absl::string_view when) {
    nlohmann::json source = SourceRows();
    const bool ok = WaitFor([&] { return Replay() == source; }, absl::Seconds(60));
    EXPECT_TRUE(ok) << when << ": destination has " << Replay().size() << " rows, source "
                    << source.size() << "\nserver log:\n"
                    << ReadFile((dir_ / "server.log").string());
  }

  bool SlotActive() {
    return QueryValue(absl::StrCat("SELECT coalesce((SELECT active::text FROM "
                                   "pg_replication_slots WHERE slot_name = '",
                                   slot_, "'), 'false')")) == "true";
  }

  std::string source_db_, control_db_, slot_, token_;
  fs::path dir_;
  int port_ = 0;
  std::unique_ptr<Connection> sql_;
  std::vector<std::string> env_;
  std::unique_ptr<testing::BackgroundProcess> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::FlowService::Stub> flows_;
  std::unique_ptr<v1::CheckpointService::Stub> checkpoints_;
};

TEST_F(ControlPlaneTest, CreateStartPauseResumeRestartStopWithPostgresControlStore) {
  StartServer(/*postgres_control=*/true);
  v1::Flow created;
  grpc::Status s = Create(FileFlow("orders"), /*start=*/true, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(created.state(), v1::FLOW_STATE_RUNNING);
  EXPECT_FALSE(absl::StrContains(created.source().options().at("dsn"), "hunter2"))
      << "passwords are redacted in responses";
  const int64_t generation = created.generation();

  // Changes committed before the worker has created its slot are not in the stream (that is
  // what a snapshot is for): wait for the worker to stream first.
  ASSERT_TRUE(WaitFor([&] { return SlotActive(); }, absl::Seconds(30)))
      << ReadFile((dir_ / "server.log").string());
  InsertRows(1, 100);
  ExpectDelivered("after start");

  // Pause: the worker is gone within seconds, the slot idle, the checkpoint frozen.
  v1::Flow paused;
  s = Call<v1::PauseFlowRequest>(&v1::FlowService::Stub::PauseFlow, "orders", &paused);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(paused.state(), v1::FLOW_STATE_PAUSED);
  EXPECT_GT(paused.generation(), generation);
  EXPECT_TRUE(WaitFor([&] { return !SlotActive(); }, absl::Seconds(15)))
      << "the worker still streams after pause";
  const std::string frozen = CheckpointLsn("orders");
  InsertRows(101, 150);
  absl::SleepFor(absl::Seconds(3));
  EXPECT_EQ(CheckpointLsn("orders"), frozen) << "the checkpoint moved while paused";
  EXPECT_FALSE(SlotActive());
  EXPECT_EQ(Replay().size(), 100u) << "nothing is delivered while paused";

  // Resume: carries on from the checkpoint.
  v1::Flow resumed;
  s = Call<v1::ResumeFlowRequest>(&v1::FlowService::Stub::ResumeFlow, "orders", &resumed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ExpectDelivered("after resume");

  // Restart the server mid-flow: its workers stop with it; the new server starts them again.
  EXPECT_EQ(StopServer(), 0);
  EXPECT_TRUE(WaitFor([&] { return !SlotActive(); }, absl::Seconds(15)))
      << "workers outlived their server";
  InsertRows(151, 200);
  StartServer(/*postgres_control=*/true);
  EXPECT_EQ(Get("orders").state(), v1::FLOW_STATE_RUNNING);
  ExpectDelivered("after a server restart");

  // Stop: stopping, then stopped once the worker has exited.
  v1::Flow stopping;
  s = Call<v1::StopFlowRequest>(&v1::FlowService::Stub::StopFlow, "orders", &stopping);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(
      WaitFor([&] { return Get("orders").state() == v1::FLOW_STATE_STOPPED; }, absl::Seconds(20)))
      << "state is " << v1::FlowState_Name(Get("orders").state());
  EXPECT_FALSE(SlotActive());
}

TEST_F(ControlPlaneTest, SnapshotProgressIsAvailableThroughTheApiAndTheCli) {
  InsertRows(1, 3000);  // before the flow exists: only the initial snapshot can deliver them
  StartServer(/*postgres_control=*/false);
  v1::Flow flow = FileFlow("snap");
  (*flow.mutable_source()->mutable_options())["snapshot_workers"] = "2";
  v1::Flow created;
  grpc::Status s = Create(flow, /*start=*/true, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ExpectDelivered("after the initial snapshot");

  v1::GetSnapshotProgressRequest req;
  req.set_flow_id("snap");
  v1::SnapshotProgress progress;
  grpc::ClientContext ctx;
  Authorize(ctx);
  s = flows_->GetSnapshotProgress(&ctx, req, &progress);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(progress.kind(), "initial");
  EXPECT_EQ(progress.status(), "done");
  EXPECT_FALSE(progress.lsn().empty());
  ASSERT_EQ(progress.tables_size(), 1);
  EXPECT_EQ(progress.tables(0).table(), "public.t");
  EXPECT_EQ(progress.tables(0).rows_done(), 3000);
  EXPECT_EQ(progress.tables(0).rows_total(), 3000);
  EXPECT_EQ(progress.tables(0).chunks_done(), progress.tables(0).chunks_total());
  EXPECT_GT(progress.tables(0).bytes_done(), 0);

  auto cli = testing::RunCommand({DS_ADMIN_BIN, "-endpoint", absl::StrCat("127.0.0.1:", port_),
                                  "snapshot", "status", "-flow-id", "snap"});
  ASSERT_TRUE(cli.ok()) << cli.status();
  EXPECT_EQ(cli->exit_code, 0) << cli->err;
  EXPECT_TRUE(absl::StrContains(cli->out, "Snapshot of flow snap (initial): done")) << cli->out;
  EXPECT_TRUE(absl::StrContains(cli->out, "public.t")) << cli->out;
  EXPECT_TRUE(absl::StrContains(cli->out, "100%")) << cli->out;

  grpc::ClientContext none_ctx;
  Authorize(none_ctx);
  req.set_backfill(true);
  s = flows_->GetSnapshotProgress(&none_ctx, req, &progress);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
}

TEST_F(ControlPlaneTest, TwoWorkersForOneFlowExactlyOneProgresses) {
  StartServer(/*postgres_control=*/true, /*supervise=*/false);
  v1::Flow created;
  ASSERT_TRUE(Create(FileFlow("dup"), /*start=*/true, &created).ok());
  std::vector<std::string> worker_env = env_;
  const std::string log_a = (dir_ / "a.log").string(), log_b = (dir_ / "b.log").string();
  auto a = testing::BackgroundProcess::Spawn({DS_WORKER_BIN, "-flow-id", "dup"}, worker_env, log_a);
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = testing::BackgroundProcess::Spawn({DS_WORKER_BIN, "-flow-id", "dup"}, worker_env, log_b);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_TRUE(WaitFor([&] { return SlotActive(); }, absl::Seconds(30)));
  InsertRows(1, 50);
  // Exactly one stands down (exit 3, naming the holder); the other delivers.
  std::optional<int> code_a, code_b;
  ASSERT_TRUE(WaitFor(
      [&] {
        code_a = (*a)->Poll();
        code_b = (*b)->Poll();
        return code_a.has_value() || code_b.has_value();
      },
      absl::Seconds(30)));
  ASSERT_NE(code_a.has_value(), code_b.has_value()) << "both workers exited";
  const int code = code_a.has_value() ? *code_a : *code_b;
  const std::string loser_log = ReadFile(code_a.has_value() ? log_a : log_b);
  EXPECT_EQ(code, 3) << loser_log;
  EXPECT_TRUE(absl::StrContains(loser_log, "is held by worker")) << loser_log;
  ExpectDelivered("with two workers started");

  // Pause: the winner's lease ends and it exits by itself within a lease period.
  v1::Flow paused;
  ASSERT_TRUE(Call<v1::PauseFlowRequest>(&v1::FlowService::Stub::PauseFlow, "dup", &paused).ok());
  auto& winner = code_a.has_value() ? *b : *a;
  EXPECT_TRUE(WaitFor([&] { return winner->Poll().has_value(); }, absl::Seconds(15)))
      << "the worker kept running after its flow was paused";
  const std::string winner_log = ReadFile(code_a.has_value() ? log_b : log_a);
  EXPECT_EQ(winner->Wait(), 3) << winner_log;
  EXPECT_TRUE(absl::StrContains(winner_log, "paused")) << winner_log;
}

TEST_F(ControlPlaneTest, CrashedWorkersAreRestartedAndRepeatedFailuresFailTheFlow) {
  StartServer(/*postgres_control=*/false);
  v1::Flow created;
  ASSERT_TRUE(Create(FileFlow("crashy"), /*start=*/true, &created).ok());
  ASSERT_TRUE(WaitFor([&] { return SlotActive(); }, absl::Seconds(30)));
  InsertRows(1, 20);
  ExpectDelivered("before the crash");
  // kill -9 the worker: the supervisor starts another, which resumes from the checkpoint.
  auto killed = testing::RunCommand({"pkill", "-9", "-f", "ductstream-worker -flow-id crashy"});
  ASSERT_TRUE(killed.ok() && killed->exit_code == 0) << "no worker process found";
  InsertRows(21, 40);
  ExpectDelivered("after kill -9 of the worker");
  EXPECT_EQ(Get("crashy").state(), v1::FLOW_STATE_RUNNING);

  // A flow whose worker fails every time (its slot does not exist and may not be created) is
  // marked failed after repeated attempts, with the worker's error as the reason.
  v1::Flow broken = FileFlow("broken");
  (*broken.mutable_source()->mutable_options())["slot"] = "no_such_slot";
  (*broken.mutable_source()->mutable_options())["create_slot"] = "false";
  ASSERT_TRUE(Create(broken, /*start=*/true, &created).ok());
  ASSERT_TRUE(
      WaitFor([&] { return Get("broken").state() == v1::FLOW_STATE_FAILED; }, absl::Seconds(90)))
      << "state " << v1::FlowState_Name(Get("broken").state()) << "\n"
      << ReadFile((dir_ / "server.log").string());
  const v1::Flow failed = Get("broken");
  EXPECT_TRUE(absl::StrContains(failed.failure_reason(), "no_such_slot"))
      << failed.failure_reason();
  EXPECT_TRUE(absl::StrContains(failed.failure_reason(), "consecutive failures"))
      << failed.failure_reason();
  // The healthy flow was not disturbed; a failed flow can be started again.
  EXPECT_EQ(Get("crashy").state(), v1::FLOW_STATE_RUNNING);
  v1::Flow restarted;
  ASSERT_TRUE(
      Call<v1::StartFlowRequest>(&v1::FlowService::Stub::StartFlow, "broken", &restarted).ok());
  EXPECT_EQ(restarted.state(), v1::FLOW_STATE_RUNNING);
  EXPECT_EQ(restarted.failure_reason(), "");
}

TEST_F(ControlPlaneTest, BadRequestsGetClearErrors) {
  StartServer(/*postgres_control=*/false);  // the embedded SQLite store
  v1::Flow out;
  v1::Flow no_slot = FileFlow("bad");
  no_slot.mutable_source()->mutable_options()->erase("slot");
  grpc::Status s = Create(no_slot, false, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "source.options.slot: required"))
      << s.error_message();

  v1::Flow no_type = FileFlow("bad");
  no_type.mutable_destinations(0)->set_type(v1::ENDPOINT_TYPE_UNSPECIFIED);
  s = Create(no_type, false, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "flow.destinations[0].type: required"))
      << s.error_message();

  // Connector options are checked before the flow is stored, naming the field.
  v1::Flow bad_kafka = FileFlow("bad");
  bad_kafka.mutable_destinations(0)->set_type(v1::ENDPOINT_TYPE_KAFKA);
  (*bad_kafka.mutable_destinations(0)->mutable_options())["brokers"] = "localhost:9092";
  (*bad_kafka.mutable_destinations(0)->mutable_options())["topic"] = "t";
  (*bad_kafka.mutable_destinations(0)->mutable_options())["message_mode"] = "sometimes";
  s = Create(bad_kafka, false, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "destinations[0].options.message_mode"))
      << s.error_message();
  v1::Flow snowflake = FileFlow("bad");
  snowflake.mutable_destinations(0)->set_type(v1::ENDPOINT_TYPE_SNOWFLAKE);
  (*snowflake.mutable_destinations(0)->mutable_options())["dsn"] = "u:p@acct/db/schema";
  s = Create(snowflake, false, &out);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "not available in this build"))
      << s.error_message();

  // Generated ids, duplicate ids, illegal transitions, unknown flows.
  v1::Flow anonymous = FileFlow("");
  ASSERT_TRUE(Create(anonymous, false, &out).ok());
  EXPECT_EQ(out.id().size(), 36u) << out.id();
  EXPECT_EQ(out.state(), v1::FLOW_STATE_CREATED);
  ASSERT_TRUE(Create(FileFlow("f"), false, &out).ok());
  EXPECT_EQ(Create(FileFlow("f"), false, &out).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  s = Call<v1::PauseFlowRequest>(&v1::FlowService::Stub::PauseFlow, "f", &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "is created") &&
              absl::StrContains(s.error_message(), "running"))
      << s.error_message();
  EXPECT_EQ(Call<v1::GetFlowRequest>(&v1::FlowService::Stub::GetFlow, "ghost", &out).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // Updates keep unset fields and are refused while the flow runs.
  {
    grpc::ClientContext uctx;
    v1::UpdateFlowRequest update;
    update.mutable_flow()->set_id("f");
    update.mutable_flow()->set_name("renamed");
    v1::Flow updated;
    grpc::Status us = flows_->UpdateFlow(&uctx, update, &updated);
    ASSERT_TRUE(us.ok()) << us.error_message();
    EXPECT_EQ(updated.name(), "renamed");
    EXPECT_EQ(updated.wire_format(), v1::WIRE_FORMAT_JSON) << "unset fields keep their values";
    EXPECT_EQ(updated.destinations_size(), 1);
  }
  // Listing pages through every flow.
  grpc::ClientContext ctx;
  v1::ListFlowsRequest list;
  list.set_page_size(1);
  v1::ListFlowsResponse page;
  ASSERT_TRUE(flows_->ListFlows(&ctx, list, &page).ok());
  EXPECT_EQ(page.flows_size(), 1);
  EXPECT_FALSE(page.next_page_token().empty());

  // Deleting.
  grpc::ClientContext del_ctx;
  v1::DeleteFlowRequest del;
  del.set_flow_id("f");
  v1::DeleteFlowResponse deleted;
  ASSERT_TRUE(flows_->DeleteFlow(&del_ctx, del, &deleted).ok());
  EXPECT_TRUE(deleted.deleted());
  EXPECT_EQ(Call<v1::GetFlowRequest>(&v1::FlowService::Stub::GetFlow, "f", &out).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // The operator's checkpoint override.
  grpc::ClientContext put_ctx;
  v1::PutCheckpointRequest put;
  put.set_flow_id(anonymous.id().empty() ? "x" : "x");
  put.mutable_checkpoint()->set_lsn("0/ABC");
  v1::FlowCheckpoint written;
  ASSERT_TRUE(checkpoints_->PutCheckpoint(&put_ctx, put, &written).ok());
  EXPECT_EQ(written.checkpoint().lsn(), "0/ABC");
  EXPECT_GT(written.checkpoint().timestamp_unix_millis(), 0);
  EXPECT_EQ(CheckpointLsn("x"), "0/ABC");
  grpc::ClientContext bad_ctx;
  put.mutable_checkpoint()->set_lsn("yesterday");
  EXPECT_EQ(checkpoints_->PutCheckpoint(&bad_ctx, put, &written).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ControlPlaneTest, BearerTokenIsRequiredWhenConfigured) {
  token_ = "s3cret-token";
  StartServer(/*postgres_control=*/false);
  grpc::ClientContext ctx;  // no token
  v1::ListFlowsResponse resp;
  grpc::Status s = flows_->ListFlows(&ctx, v1::ListFlowsRequest(), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext wrong;
  wrong.AddMetadata("authorization", "Bearer nope");
  EXPECT_EQ(flows_->ListFlows(&wrong, v1::ListFlowsRequest(), &resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext right;
  Authorize(right);
  EXPECT_TRUE(flows_->ListFlows(&right, v1::ListFlowsRequest(), &resp).ok());
}

}  // namespace
}  // namespace ductstream
