#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_context.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "ductstream/admin/cli.h"
#include "ductstream/admin/flow_convert.h"
#include "ductstream/admin/output.h"
#include "ductstream/testing/pg_sandbox.h"
#include "ductstream/v1/checkpoint.grpc.pb.h"
#include "ductstream/v1/flow.grpc.pb.h"

namespace ductstream::admin {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

int Lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

// ---------------------------------------------------------------------------------------------
// Flow JSON → API message

TEST(AdminFlowConvertTest, ExampleFileBecomesProtoFlow) {
  const std::string json = ReadFile(testing::SourceDir() + "/examples/flows/postgres_to_file.json");
  ASSERT_FALSE(json.empty());
  auto request = CreateRequestFromJson(json, /*start=*/false);
  ASSERT_TRUE(request.ok()) << request.status();
  const v1::Flow& f = request->flow();
  EXPECT_EQ(f.name(), "postgres-to-file");
  EXPECT_EQ(f.wire_format(), v1::WIRE_FORMAT_PARQUET);
  EXPECT_EQ(f.parallelism(), 1);
  EXPECT_EQ(f.source().type(), v1::ENDPOINT_TYPE_POSTGRES);
  EXPECT_EQ(f.source().name(), "pg-source");
  EXPECT_EQ(f.source().options().at("slot"), "ductstream_slot");
  EXPECT_EQ(f.source().options().at("batch_size"), "500");
  ASSERT_EQ(f.destinations_size(), 1);
  EXPECT_EQ(f.destinations(0).type(), v1::ENDPOINT_TYPE_FILE);
  EXPECT_EQ(f.destinations(0).options().at("path"), "./out");
  EXPECT_EQ(f.state(), v1::FLOW_STATE_UNSPECIFIED);
  EXPECT_FALSE(request->start_immediately());

  auto started = CreateRequestFromJson(json, /*start=*/true);
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_TRUE(started->start_immediately());
}

TEST(AdminFlowConvertTest, ProtoJsonWrapperKeepsStartImmediately) {
  const std::string json = R"({"flow": {"name": "k", "wire_format": "WIRE_FORMAT_ARROW",
      "source": {"name": "pg", "type": "ENDPOINT_TYPE_POSTGRES", "options": {"dsn": "x"}},
      "destinations": [{"name": "k", "type": "ENDPOINT_TYPE_KAFKA",
                        "options": {"brokers": "b:9092"}},
                       {"name": "c", "type": "clickhouse"}]},
      "start_immediately": true})";
  auto request = CreateRequestFromJson(json, /*start=*/false);
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_TRUE(request->start_immediately());
  EXPECT_EQ(request->flow().wire_format(), v1::WIRE_FORMAT_ARROW);
  ASSERT_EQ(request->flow().destinations_size(), 2);
  EXPECT_EQ(request->flow().destinations(0).type(), v1::ENDPOINT_TYPE_KAFKA);
  EXPECT_EQ(request->flow().destinations(1).type(), v1::ENDPOINT_TYPE_CLICKHOUSE);
}

TEST(AdminFlowConvertTest, EveryKnownConnectorHasAnApiValue) {
  for (absl::string_view type : flow::KnownConnectorTypes()) {
    auto proto = EndpointTypeToProto(type);
    ASSERT_TRUE(proto.ok()) << proto.status();
    EXPECT_EQ(EndpointTypeText(*proto), std::string(type));
  }
  EXPECT_FALSE(EndpointTypeToProto("").ok());
  EXPECT_FALSE(EndpointTypeToProto("unspecified").ok());
}

TEST(AdminFlowConvertTest, WireFormatsMapOneToOne) {
  EXPECT_EQ(WireFormatToProto(std::nullopt), v1::WIRE_FORMAT_UNSPECIFIED);
  for (auto f : {codec::WireFormat::kArrow, codec::WireFormat::kParquet, codec::WireFormat::kAvro,
                 codec::WireFormat::kProto, codec::WireFormat::kJson}) {
    EXPECT_EQ(WireFormatText(WireFormatToProto(f)), std::string(codec::WireFormatName(f)));
  }
}

TEST(AdminFlowConvertTest, BadInputNamesTheProblem) {
  auto typo = CreateRequestFromJson(
      R"({"name": "x", "source": {"type": "postgres"}, "destinations": [{"type": "kafak"}]})",
      false);
  ASSERT_FALSE(typo.ok());
  EXPECT_EQ(typo.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(typo.status().message(), "kafak")) << typo.status();

  auto syntax = CreateRequestFromJson("{\"name\": ", false);
  ASSERT_FALSE(syntax.ok());
  EXPECT_TRUE(absl::StrContains(syntax.status().message(), "line 1")) << syntax.status();
}

// ---------------------------------------------------------------------------------------------
// Output

v1::Flow SampleFlow(const std::string& id, v1::FlowState state) {
  v1::Flow f;
  f.set_id(id);
  f.set_name("orders-to-files");
  f.set_state(state);
  f.set_generation(3);
  f.set_wire_format(v1::WIRE_FORMAT_PARQUET);
  f.set_parallelism(1);
  f.mutable_source()->set_name("pg");
  f.mutable_source()->set_type(v1::ENDPOINT_TYPE_POSTGRES);
  (*f.mutable_source()->mutable_options())["slot"] = "s1";
  (*f.mutable_source()->mutable_options())["dsn"] = "postgres://u:*****@h/db";
  auto* d = f.add_destinations();
  d->set_name("files");
  d->set_type(v1::ENDPOINT_TYPE_FILE);
  (*d->mutable_options())["path"] = "/tmp/out";
  f.mutable_created_at()->set_seconds(1714564800);  // 2024-05-01T12:00:00Z
  return f;
}

TEST(AdminOutputTest, EnumTexts) {
  EXPECT_EQ(FlowStateText(v1::FLOW_STATE_RUNNING), "running");
  EXPECT_EQ(FlowStateText(v1::FLOW_STATE_STOPPED), "stopped");
  EXPECT_EQ(FlowStateText(0), "unspecified");
  EXPECT_EQ(FlowStateText(99), "99");
  EXPECT_EQ(WireFormatText(v1::WIRE_FORMAT_UNSPECIFIED), "-");
  EXPECT_EQ(WireFormatText(v1::WIRE_FORMAT_JSON), "json");
  EXPECT_EQ(EndpointTypeText(v1::ENDPOINT_TYPE_FILE), "file");
}

TEST(AdminOutputTest, FlowTableAlignsColumns) {
  google::protobuf::RepeatedPtrField<v1::Flow> flows;
  *flows.Add() = SampleFlow("a1", v1::FLOW_STATE_RUNNING);
  *flows.Add() = SampleFlow("flow-with-long-id", v1::FLOW_STATE_PAUSED);
  flows.Mutable(1)->set_wire_format(v1::WIRE_FORMAT_UNSPECIFIED);
  EXPECT_EQ(FlowTable(flows),
            "ID                 NAME             STATE    GENERATION  WIRE_FORMAT\n"
            "a1                 orders-to-files  running  3           parquet\n"
            "flow-with-long-id  orders-to-files  paused   3           -\n");
  EXPECT_EQ(FlowTable({}), "No flows found.\n");
}

TEST(AdminOutputTest, FlowDetailsAndLines) {
  const v1::Flow f = SampleFlow("a1", v1::FLOW_STATE_FAILED);
  v1::Flow failed = f;
  failed.set_failure_reason("slot \"s1\" does not exist");
  const std::string text = FlowDetails(failed);
  EXPECT_TRUE(absl::StrContains(text, "ID:           a1\n")) << text;
  EXPECT_TRUE(absl::StrContains(text, "State:        failed\n")) << text;
  EXPECT_TRUE(absl::StrContains(text, "Failure:      slot \"s1\" does not exist\n")) << text;
  EXPECT_TRUE(absl::StrContains(text, "Created:      2024-05-01T12:00:00Z\n")) << text;
  EXPECT_TRUE(absl::StrContains(text, "Updated:      -\n")) << text;
  // Options sorted by key under their endpoint.
  EXPECT_TRUE(absl::StrContains(text,
                                "Source:       pg (postgres)\n"
                                "  dsn=postgres://u:*****@h/db\n"
                                "  slot=s1\n"))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "Destinations: 1\n- files (file)\n  path=/tmp/out\n"))
      << text;
  EXPECT_EQ(TransitionLine(f), "Flow a1 is now failed\n");
  EXPECT_EQ(CreatedLine(SampleFlow("a1", v1::FLOW_STATE_CREATED)),
            "Created flow a1 (orders-to-files) in state created\n");
}

TEST(AdminOutputTest, ProtoJsonUsesProtoFieldNamesAndPrintsDefaults) {
  v1::Flow f = SampleFlow("a1", v1::FLOW_STATE_CREATED);
  f.set_generation(0);
  auto json = ProtoToJson(f, /*pretty=*/false);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(json->find('\n'), std::string::npos);
  const auto j = nlohmann::json::parse(*json);
  EXPECT_EQ(j["id"], "a1");
  EXPECT_EQ(j["state"], "FLOW_STATE_CREATED");
  EXPECT_EQ(j["wire_format"], "WIRE_FORMAT_PARQUET");
  EXPECT_EQ(j["source"]["type"], "ENDPOINT_TYPE_POSTGRES");
  EXPECT_EQ(j["generation"], "0");  // int64 is a string in proto JSON, and printed when zero
  EXPECT_EQ(j["failure_reason"], "");
  EXPECT_EQ(j["created_at"], "2024-05-01T12:00:00Z");

  auto pretty = ProtoToJson(f, /*pretty=*/true);
  ASSERT_TRUE(pretty.ok());
  EXPECT_TRUE(absl::StrContains(*pretty, "{\n  \"id\": \"a1\",\n")) << *pretty;
  EXPECT_EQ(nlohmann::json::parse(*pretty), j);
}

TEST(AdminOutputTest, CheckpointTexts) {
  google::protobuf::RepeatedPtrField<v1::FlowCheckpoint> list;
  auto* c = list.Add();
  c->set_flow_id("f1");
  c->mutable_checkpoint()->set_lsn("16/B374D848");
  c->mutable_checkpoint()->set_timestamp_unix_millis(1714564800123);
  (*c->mutable_checkpoint()->mutable_metadata())["generation"] = "4";
  EXPECT_EQ(CheckpointTable(list),
            "FLOW_ID  LSN          UPDATED\n"
            "f1       16/B374D848  2024-05-01T12:00:00Z\n");
  EXPECT_EQ(CheckpointTable({}), "No checkpoints found.\n");
  EXPECT_EQ(CheckpointDetails(*c),
            "Flow:     f1\n"
            "LSN:      16/B374D848\n"
            "Updated:  2024-05-01T12:00:00Z\n"
            "  generation=4\n");
}

TEST(AdminOutputTest, DdlListFollowsSpec) {
  google::protobuf::RepeatedPtrField<v1::DDLEvent> events;
  auto* a = events.Add();
  a->set_id(1);
  a->set_status("pending");
  a->set_lsn("0/16B3748");
  a->set_ddl("ALTER TABLE t ADD COLUMN c int");
  auto* b = events.Add();
  b->set_id(2);
  b->set_status("rejected");
  b->set_lsn("0/16B3800");
  b->set_plan_json(std::string(130, 'x'));
  b->mutable_created_at()->set_seconds(1714564800);
  b->mutable_created_at()->set_nanos(500000000);
  auto* c = events.Add();
  c->set_id(3);
  c->set_status("applied");
  const std::string text = DdlTable(events);
  EXPECT_TRUE(absl::StartsWith(text, "ID  STATUS    LSN        DDL/PLAN\n")) << text;
  EXPECT_TRUE(absl::StrContains(text, "ALTER TABLE t ADD COLUMN c int\n")) << text;
  EXPECT_TRUE(absl::StrContains(text, "plan:" + std::string(120, 'x') + "... [FAILED]\n")) << text;
  EXPECT_TRUE(absl::StrContains(text, "(no ddl)\n")) << text;
  EXPECT_EQ(DdlTable({}), "No DDL events found.\n");

  const auto j = nlohmann::json::parse(DdlJson("all", events, false));
  EXPECT_EQ(j["status"], "all");
  EXPECT_EQ(j["count"], 3);
  EXPECT_EQ(j["events"][0]["ddl"], "ALTER TABLE t ADD COLUMN c int");
  EXPECT_FALSE(j["events"][0].contains("plan_json"));
  EXPECT_FALSE(j["events"][0].contains("created_at"));
  EXPECT_EQ(j["events"][1]["created_at"], "2024-05-01T12:00:00.5Z");
}

TEST(AdminOutputTest, PullFollowsSpec) {
  google::protobuf::RepeatedPtrField<v1::StreamMessage> messages;
  auto* m = messages.Add();
  m->set_id(7);
  m->set_namespace_("public");
  m->set_table("orders");
  m->set_lsn("0/1");
  m->set_wire_format("json");
  m->set_payload("hi!");
  EXPECT_EQ(PullText(messages), "Pulled 1 messages:\n- id=7 table=orders lsn=0/1 bytes=3\n");
  EXPECT_EQ(PullText({}), "No messages available.\n");
  const auto j = nlohmann::json::parse(PullJson("orders", "g", messages, true));
  EXPECT_EQ(j["consumer_group"], "g");
  EXPECT_EQ(j["count"], 1);
  EXPECT_EQ(j["messages"][0]["namespace"], "public");
  EXPECT_EQ(j["messages"][0]["payload_base64"], "aGkh");
}

TEST(AdminOutputTest, ErrorLineIsOneLine) {
  EXPECT_EQ(ErrorLine(absl::FailedPreconditionError(
                "flow \"x\": cannot pause: the flow is paused (pause needs running)")),
            "error: FAILED_PRECONDITION: flow \"x\": cannot pause: the flow is paused (pause "
            "needs running)\n");
  EXPECT_EQ(ErrorLine(absl::UnavailableError("a\nb\n")), "error: UNAVAILABLE: a; b\n");
  EXPECT_EQ(ErrorLine(absl::UnavailableError("refused\n\tIs the server running?\r\n")),
            "error: UNAVAILABLE: refused; Is the server running?\n");
}

// ---------------------------------------------------------------------------------------------
// The CLI against an in-process fake server

/// Records what the CLI sent; answers from a small in-memory map.
class FakeFlowService final : public v1::FlowService::Service {
 public:
  grpc::Status CreateFlow(grpc::ServerContext* ctx, const v1::CreateFlowRequest* req,
                          v1::Flow* resp) override {
    absl::MutexLock lock(&mu_);
    Record(ctx);
    last_create_ = *req;
    *resp = req->flow();
    resp->set_id("f-1");
    resp->set_state(req->start_immediately() ? v1::FLOW_STATE_RUNNING : v1::FLOW_STATE_CREATED);
    resp->set_generation(1);
    flows_[resp->id()] = *resp;
    return grpc::Status::OK;
  }
  grpc::Status GetFlow(grpc::ServerContext* ctx, const v1::GetFlowRequest* req,
                       v1::Flow* resp) override {
    absl::MutexLock lock(&mu_);
    Record(ctx);
    auto it = flows_.find(req->flow_id());
    if (it == flows_.end()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "flow \"" + req->flow_id() + "\" not found");
    }
    *resp = it->second;
    return grpc::Status::OK;
  }
  grpc::Status ListFlows(grpc::ServerContext* ctx, const v1::ListFlowsRequest* req,
                         v1::ListFlowsResponse* resp) override {
    absl::MutexLock lock(&mu_);
    Record(ctx);
    // Two pages, one flow each, so the CLI must follow the token.
    page_tokens_.push_back(req->page_token());
    auto it = flows_.begin();
    if (req->page_token() == "p2" && flows_.size() > 1) ++it;
    if (it != flows_.end()) *resp->add_flows() = it->second;
    if (req->page_token().empty() && flows_.size() > 1) resp->set_next_page_token("p2");
    return grpc::Status::OK;
  }
  grpc::Status PauseFlow(grpc::ServerContext* ctx, const v1::PauseFlowRequest* req,
                         v1::Flow*) override {
    absl::MutexLock lock(&mu_);
    Record(ctx);
    return grpc::Status(
        grpc::StatusCode::FAILED_PRECONDITION,
        "flow \"" + req->flow_id() + "\": cannot pause: the flow is created (pause needs running)");
  }
  grpc::Status StopFlow(grpc::ServerContext* ctx, const v1::StopFlowRequest* req,
                        v1::Flow* resp) override {
    absl::MutexLock lock(&mu_);
    Record(ctx);
    auto& f = flows_[req->flow_id()];
    f.set_id(req->flow_id());
    f.set_state(v1::FLOW_STATE_STOPPING);
    *resp = f;
    return grpc::Status::OK;
  }

  std::string last_authorization() {
    absl::MutexLock lock(&mu_);
    return authorization_;
  }
  v1::CreateFlowRequest last_create() {
    absl::MutexLock lock(&mu_);
    return last_create_;
  }
  std::vector<std::string> page_tokens() {
    absl::MutexLock lock(&mu_);
    return page_tokens_;
  }
  void Put(const v1::Flow& f) {
    absl::MutexLock lock(&mu_);
    flows_[f.id()] = f;
  }

 private:
  void Record(grpc::ServerContext* ctx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = ctx->client_metadata().find("authorization");
    authorization_ =
        it == ctx->client_metadata().end() ? "" : std::string(it->second.data(), it->second.size());
  }

  absl::Mutex mu_;
  std::map<std::string, v1::Flow> flows_ ABSL_GUARDED_BY(mu_);
  std::string authorization_ ABSL_GUARDED_BY(mu_);
  v1::CreateFlowRequest last_create_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> page_tokens_ ABSL_GUARDED_BY(mu_);
};

class FakeCheckpointService final : public v1::CheckpointService::Service {
 public:
  grpc::Status PutCheckpoint(grpc::ServerContext*, const v1::PutCheckpointRequest* req,
                             v1::FlowCheckpoint* resp) override {
    absl::MutexLock lock(&mu_);
    resp->set_flow_id(req->flow_id());
    *resp->mutable_checkpoint() = req->checkpoint();
    resp->mutable_checkpoint()->set_timestamp_unix_millis(1714564800000);
    stored_ = *resp;
    return grpc::Status::OK;
  }
  grpc::Status GetCheckpoint(grpc::ServerContext*, const v1::GetCheckpointRequest* req,
                             v1::FlowCheckpoint* resp) override {
    absl::MutexLock lock(&mu_);
    if (stored_.flow_id() != req->flow_id()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no checkpoint");
    }
    *resp = stored_;
    return grpc::Status::OK;
  }

 private:
  absl::Mutex mu_;
  v1::FlowCheckpoint stored_ ABSL_GUARDED_BY(mu_);
};

struct CliRun {
  int code = -1;
  std::string out;
  std::string err;
};

class AdminCliFakeServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.RegisterService(&flows_);
    builder.RegisterService(&checkpoints_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    channel_ = server_->InProcessChannel(grpc::ChannelArguments());
  }
  void TearDown() override { server_->Shutdown(); }

  CliRun Admin(std::vector<std::string> args) {
    args.insert(args.begin(), "ductstream-admin");
    std::ostringstream out, err;
    CliRun r;
    r.code = RunAdmin(args, out, err, [this](const ConnectionOptions& options) {
      last_options_ = options;
      return absl::StatusOr<std::shared_ptr<grpc::Channel>>(channel_);
    });
    r.out = out.str();
    r.err = err.str();
    return r;
  }

  FakeFlowService flows_;
  FakeCheckpointService checkpoints_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  ConnectionOptions last_options_;
};

TEST_F(AdminCliFakeServerTest, NoArgumentsOrUnknownCommandPrintUsage) {
  CliRun none = Admin({});
  EXPECT_EQ(none.code, 1);
  EXPECT_TRUE(none.out.empty());
  EXPECT_TRUE(absl::StrContains(none.err, "flow create -file")) << none.err;

  CliRun unknown = Admin({"frobnicate"});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_TRUE(absl::StrContains(unknown.err, "frobnicate")) << unknown.err;
  EXPECT_TRUE(absl::StrContains(unknown.err, "Usage")) << unknown.err;

  CliRun partial = Admin({"flow"});
  EXPECT_EQ(partial.code, 1);
  EXPECT_TRUE(absl::StrContains(partial.err, "pause")) << partial.err;

  CliRun unknown_sub = Admin({"flow", "explode", "-id", "x"});
  EXPECT_EQ(unknown_sub.code, 1);
  EXPECT_TRUE(absl::StrContains(unknown_sub.err, "explode")) << unknown_sub.err;

  CliRun help = Admin({"-help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_TRUE(absl::StrContains(help.out, "checkpoint put")) << help.out;
}

TEST_F(AdminCliFakeServerTest, MissingRequiredFlagIsOneLine) {
  CliRun r = Admin({"flow", "get"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(Lines(r.err), 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "--id is required")) << r.err;
}

TEST_F(AdminCliFakeServerTest, GlobalFlagsInEverySpelling) {
  setenv("DUCTSTREAM_API_TOKEN", "from-env", 1);
  CliRun r = Admin({"flow", "list"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(last_options_.endpoint, "localhost:8080");
  EXPECT_TRUE(last_options_.insecure);
  EXPECT_EQ(last_options_.timeout, absl::Seconds(10));
  EXPECT_EQ(flows_.last_authorization(), "Bearer from-env");
  unsetenv("DUCTSTREAM_API_TOKEN");

  r = Admin({"-endpoint", "h1:1", "flow", "list", "-token=t2", "--insecure=false", "-ca-file",
             "/ca.pem", "-timeout=3s"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(last_options_.endpoint, "h1:1");
  EXPECT_FALSE(last_options_.insecure);
  EXPECT_EQ(last_options_.ca_file, "/ca.pem");
  EXPECT_EQ(last_options_.timeout, absl::Seconds(3));
  EXPECT_EQ(flows_.last_authorization(), "Bearer t2");

  r = Admin({"flow", "list", "--endpoint=h2:2", "-insecure"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(last_options_.endpoint, "h2:2");
  EXPECT_TRUE(last_options_.insecure);
  EXPECT_EQ(flows_.last_authorization(), "");

  r = Admin({"flow", "list", "-timeout", "soon"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "error: INVALID_ARGUMENT: -timeout: \"soon\" is not a positive duration\n");
}

TEST_F(AdminCliFakeServerTest, CreateFromExampleFile) {
  const std::string file = testing::SourceDir() + "/examples/flows/postgres_to_file.json";
  CliRun r = Admin({"flow", "create", "-file", file});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Created flow f-1 (postgres-to-file) in state created\n");
  EXPECT_FALSE(flows_.last_create().start_immediately());
  EXPECT_EQ(flows_.last_create().flow().destinations(0).type(), v1::ENDPOINT_TYPE_FILE);

  r = Admin({"flow", "create", "-file=" + file, "-start", "-json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(flows_.last_create().start_immediately());
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["state"], "FLOW_STATE_RUNNING");
  EXPECT_EQ(j["source"]["options"]["slot"], "ductstream_slot");

  r = Admin({"flow", "create", "-file", "/nonexistent/flow.json"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "error: NOT_FOUND: /nonexistent/flow.json: cannot open\n");
}

TEST_F(AdminCliFakeServerTest, GetListAndTransitions) {
  flows_.Put(SampleFlow("a1", v1::FLOW_STATE_CREATED));
  flows_.Put(SampleFlow("b2", v1::FLOW_STATE_RUNNING));

  CliRun list = Admin({"flow", "list"});
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_EQ(list.out,
            "ID  NAME             STATE    GENERATION  WIRE_FORMAT\n"
            "a1  orders-to-files  created  3           parquet\n"
            "b2  orders-to-files  running  3           parquet\n");
  EXPECT_EQ(flows_.page_tokens(), (std::vector<std::string>{"", "p2"}));

  CliRun json = Admin({"flow", "list", "-pretty"});
  ASSERT_EQ(json.code, 0) << json.err;
  const auto j = nlohmann::json::parse(json.out);
  ASSERT_EQ(j["flows"].size(), 2u);
  EXPECT_EQ(j["flows"][1]["id"], "b2");
  EXPECT_EQ(j["next_page_token"], "");

  CliRun get = Admin({"flow", "get", "-id", "a1"});
  ASSERT_EQ(get.code, 0) << get.err;
  EXPECT_TRUE(absl::StartsWith(get.out, "ID:           a1\n")) << get.out;

  CliRun missing = Admin({"flow", "get", "-id=zz"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_TRUE(missing.out.empty());
  EXPECT_EQ(missing.err, "error: NOT_FOUND: flow \"zz\" not found\n");

  CliRun pause = Admin({"flow", "pause", "-id", "a1"});
  EXPECT_EQ(pause.code, 1);
  EXPECT_EQ(pause.err,
            "error: FAILED_PRECONDITION: flow \"a1\": cannot pause: the flow is created (pause "
            "needs running)\n");

  CliRun stop = Admin({"flow", "stop", "-id", "a1"});
  ASSERT_EQ(stop.code, 0) << stop.err;
  EXPECT_EQ(stop.out, "Flow a1 is now stopping\n");

  // Not implemented by the fake: the server's UNIMPLEMENTED comes back as one line.
  CliRun resume = Admin({"flow", "resume", "-id", "a1"});
  EXPECT_EQ(resume.code, 1);
  EXPECT_TRUE(absl::StartsWith(resume.err, "error: UNIMPLEMENTED")) << resume.err;
  EXPECT_EQ(Lines(resume.err), 1) << resume.err;

  // A service the server lacks answers UNIMPLEMENTED without a message; the line says what.
  CliRun ddl = Admin({"ddl", "list"});
  EXPECT_EQ(ddl.code, 1);
  EXPECT_EQ(ddl.err,
            "error: UNIMPLEMENTED: ductstream.v1.DDLService/ListPendingDDL is not implemented by "
            "the server at localhost:8080\n");
  CliRun pull = Admin({"stream", "pull", "-stream", "s", "-group", "g"});
  EXPECT_EQ(pull.code, 1);
  EXPECT_TRUE(absl::StartsWith(pull.err, "error: UNIMPLEMENTED")) << pull.err;
}

TEST_F(AdminCliFakeServerTest, CheckpointPutAndGet) {
  CliRun bad = Admin({"checkpoint", "put", "-flow-id", "a1", "-lsn", "nope"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_TRUE(absl::StartsWith(bad.err, "error: INVALID_ARGUMENT: -lsn: ")) << bad.err;

  CliRun put = Admin({"checkpoint", "put", "-flow-id", "a1", "-lsn", "16/b374d848"});
  ASSERT_EQ(put.code, 0) << put.err;
  EXPECT_EQ(put.out, "Checkpoint of flow a1 set to 16/B374D848\n");

  CliRun get = Admin({"checkpoint", "get", "-flow-id", "a1", "-json"});
  ASSERT_EQ(get.code, 0) << get.err;
  const auto j = nlohmann::json::parse(get.out);
  EXPECT_EQ(j["flow_id"], "a1");
  EXPECT_EQ(j["checkpoint"]["lsn"], "16/B374D848");
}

TEST(AdminCliNoServerTest, UnreachableServerIsOneLine) {
  std::ostringstream out, err;
  // Port 1 on loopback: nothing listens there; the call fails fast with UNAVAILABLE.
  const int code =
      RunAdmin({"ductstream-admin", "-endpoint", "127.0.0.1:1", "flow", "list"}, out, err);
  EXPECT_EQ(code, 1);
  EXPECT_TRUE(out.str().empty());
  EXPECT_TRUE(absl::StartsWith(err.str(), "error: UNAVAILABLE: ")) << err.str();
  EXPECT_EQ(Lines(err.str()), 1) << err.str();
}

TEST(AdminCliNoServerTest, MissingCaFileIsReported) {
  std::ostringstream out, err;
  const int code = RunAdmin(
      {"ductstream-admin", "-insecure=false", "-ca-file", "/nonexistent.pem", "flow", "list"}, out,
      err);
  EXPECT_EQ(code, 1);
  EXPECT_EQ(err.str(), "error: NOT_FOUND: -ca-file: /nonexistent.pem: cannot open\n");
}

}  // namespace
}  // namespace ductstream::admin
