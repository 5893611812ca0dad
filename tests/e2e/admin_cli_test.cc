// ductstream-admin and grpcurl as a user runs them, against the real `ductstream` server (SQLite
// control store, no supervised workers: these tests are about the API's clients, not the data
// path, which tests/e2e/control_plane_test.cc covers). Every command is a separate process and
// is checked by its exit status, stdout (text, and -json through a JSON parser) and stderr.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "ductstream/testing/helpers.h"
#include "ductstream/testing/pg_sandbox.h"
#include "ductstream/testing/subprocess.h"

namespace ductstream {
namespace {

namespace fs = std::filesystem;
using testing::ReadFile;
using Json = nlohmann::json;

int Lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

// The id in "Created flow <id> (<name>) in state <state>".
std::string CreatedId(const std::string& out) {
  absl::string_view rest = out;
  if (!absl::ConsumePrefix(&rest, "Created flow ")) return "";
  return std::string(rest.substr(0, rest.find(' ')));
}

class AdminCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The CLI's defaults come from the environment; the tests set them per command.
    unsetenv("DUCTSTREAM_API_TOKEN");
    unsetenv("DUCTSTREAM_ENDPOINT");
    dir_ = fs::path(::testing::TempDir()) / testing::PgSandbox::UniqueName("admin");
    fs::create_directories(dir_);
    port_ = testing::FreeLoopbackPort();
    endpoint_ = absl::StrCat("127.0.0.1:", port_);
  }

  void TearDown() override {
    if (server_ != nullptr) {
      server_->Signal(SIGTERM);
      EXPECT_EQ(server_->Wait(), 0) << "server log:\n" << ReadFile(ServerLog());
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string ServerLog() const { return (dir_ / "server.log").string(); }

  // Starts the server and waits until it answers ListFlows. `extra_env` adds to (or overrides)
  // the base environment.
  void StartServer(const std::vector<std::string>& extra_env = {},
                   const std::vector<std::string>& ready_flags = {}) {
    std::vector<std::string> env = {
        absl::StrCat("DUCTSTREAM_GRPC_LISTEN=", endpoint_),
        "DUCTSTREAM_POSTGRES_DSN=", "DUCTSTREAM_CHECKPOINT_BACKEND=sqlite",
        absl::StrCat("DUCTSTREAM_CHECKPOINT_PATH=", (dir_ / "control.db").string()),
        absl::StrCat("DUCTSTREAM_WORKER_LOG_DIR=", (dir_ / "worker-logs").string()),
        // Flows change state but no worker runs: a started flow reads from nothing.
        "DUCTSTREAM_SUPERVISE=false"};
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    auto p = testing::BackgroundProcess::Spawn({DS_SERVER_BIN}, env, ServerLog());
    ASSERT_TRUE(p.ok()) << p.status();
    server_ = std::move(*p);
    std::vector<std::string> probe = ready_flags;
    probe.insert(probe.end(), {"-timeout", "2s", "flow", "list"});
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    for (;;) {
      if (auto exited = server_->Poll(); exited.has_value()) {
        server_.reset();
        FAIL() << "server exited with " << *exited << "; log:\n" << ReadFile(ServerLog());
      }
      auto r = testing::RunCommand(AdminArgv(probe));
      ASSERT_TRUE(r.ok()) << r.status();
      if (r->exit_code == 0) return;
      ASSERT_LT(absl::Now(), deadline) << "server not ready: " << r->err << "\nlog:\n"
                                       << ReadFile(ServerLog());
      absl::SleepFor(absl::Milliseconds(200));
    }
  }

  std::vector<std::string> AdminArgv(const std::vector<std::string>& args,
                                     const std::vector<std::string>& env = {}) const {
    std::vector<std::string> argv = {"env"};
    argv.insert(argv.end(), env.begin(), env.end());
    argv.insert(argv.end(), {DS_ADMIN_BIN, "-endpoint", endpoint_});
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  // Runs ductstream-admin -endpoint <server> args... with `env` ("K=V") added.
  testing::CommandResult Admin(const std::vector<std::string>& args,
                               const std::vector<std::string>& env = {}) {
    auto r = testing::RunCommand(AdminArgv(args, env));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : testing::CommandResult{};
  }

  // Like Admin, for commands that must succeed.
  std::string AdminOk(const std::vector<std::string>& args,
                      const std::vector<std::string>& env = {}) {
    testing::CommandResult r = Admin(args, env);
    EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(args, " ") << "\nstderr: " << r.err;
    EXPECT_TRUE(r.err.empty()) << r.err;
    return r.out;
  }

  Json AdminJson(const std::vector<std::string>& args) {
    const std::string out = AdminOk(args);
    Json j = Json::parse(out, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << out;
    return j;
  }

  // A failed command: exit 1, nothing on stdout, exactly one line on stderr starting with
  // "error: <code>: "; returns that line.
  std::string AdminFails(const std::vector<std::string>& args, absl::string_view code,
                         const std::vector<std::string>& env = {}) {
    testing::CommandResult r = Admin(args, env);
    EXPECT_EQ(r.exit_code, 1) << absl::StrJoin(args, " ") << "\nstdout: " << r.out;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(Lines(r.err), 1) << r.err;
    EXPECT_TRUE(absl::StartsWith(r.err, absl::StrCat("error: ", code, ": "))) << r.err;
    return r.err;
  }

  // Runs a command from the source tree (scripts and examples expect to run there).
  testing::CommandResult Run(const std::vector<std::string>& argv) {
    auto r = testing::RunCommand(argv);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : testing::CommandResult{};
  }

  fs::path dir_;
  int port_ = 0;
  std::string endpoint_;
  std::unique_ptr<testing::BackgroundProcess> server_;
};

std::string ExampleFlow() { return testing::SourceDir() + "/examples/flows/postgres_to_file.json"; }

TEST_F(AdminCliTest, FlowLifecycle) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  EXPECT_EQ(AdminOk({"flow", "list"}), "No flows found.\n");

  // The example file exactly as shipped.
  const std::string created = AdminOk({"flow", "create", "-file", ExampleFlow()});
  const std::string id = CreatedId(created);
  ASSERT_FALSE(id.empty()) << created;
  EXPECT_EQ(created, absl::StrCat("Created flow ", id, " (postgres-to-file) in state created\n"));

  // The proto JSON spelling, Go-style `--flag=value`, and a DSN whose password must not come back.
  Json proto_form = {{"flow",
                      {{"name", "second"},
                       {"wire_format", "WIRE_FORMAT_JSON"},
                       {"source",
                        {{"name", "pg"},
                         {"type", "ENDPOINT_TYPE_POSTGRES"},
                         {"options",
                          {{"dsn", "postgres://app:hunter2secret@db.internal:5432/app"},
                           {"slot", "s2"},
                           {"publication", "p2"}}}}},
                       {"destinations",
                        {{{"name", "files"},
                          {"type", "ENDPOINT_TYPE_FILE"},
                          {"options", {{"path", (dir_ / "out").string()}}}}}}}}};
  const std::string second_file = (dir_ / "second.json").string();
  std::ofstream(second_file) << proto_form.dump(2);
  const Json second = AdminJson({"flow", "create", "--file=" + second_file, "-json"});
  const std::string id2 = second.value("id", "");
  ASSERT_FALSE(id2.empty()) << second.dump();
  EXPECT_NE(id2, id);
  EXPECT_EQ(second["state"], "FLOW_STATE_CREATED");
  EXPECT_EQ(second["wire_format"], "WIRE_FORMAT_JSON");
  EXPECT_EQ(second["source"]["type"], "ENDPOINT_TYPE_POSTGRES");
  EXPECT_EQ(second["destinations"][0]["type"], "ENDPOINT_TYPE_FILE");
  EXPECT_FALSE(absl::StrContains(second.dump(), "hunter2secret")) << second.dump();

  // list: text table and JSON.
  const std::string table = AdminOk({"flow", "list"});
  std::vector<std::string> lines = absl::StrSplit(table, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << table;
  EXPECT_TRUE(absl::StartsWith(lines[0], "ID ")) << table;
  for (absl::string_view column : {"NAME", "STATE", "GENERATION", "WIRE_FORMAT"}) {
    EXPECT_TRUE(absl::StrContains(lines[0], column)) << table;
  }
  EXPECT_TRUE(absl::StrContains(table, id)) << table;
  EXPECT_TRUE(absl::StrContains(table, id2)) << table;
  std::vector<std::string> row = absl::StrSplit(lines[1], ' ', absl::SkipEmpty());
  ASSERT_EQ(row.size(), 5u) << lines[1];
  EXPECT_EQ(row[0], id);
  EXPECT_EQ(row[1], "postgres-to-file");
  EXPECT_EQ(row[2], "created");
  EXPECT_EQ(row[4], "parquet");

  const Json list = AdminJson({"flow", "list", "-json"});
  ASSERT_EQ(list["flows"].size(), 2u) << list.dump();
  EXPECT_EQ(list["flows"][0]["id"], id);
  EXPECT_EQ(list["flows"][0]["name"], "postgres-to-file");
  EXPECT_EQ(list["flows"][0]["source"]["options"]["slot"], "ductstream_slot");
  EXPECT_EQ(list["flows"][1]["id"], id2);

  // get: text and pretty JSON.
  const std::string details = AdminOk({"flow", "get", "-id", id});
  EXPECT_TRUE(absl::StrContains(details, absl::StrCat("ID:           ", id, "\n"))) << details;
  EXPECT_TRUE(absl::StrContains(details, "State:        created\n")) << details;
  EXPECT_TRUE(absl::StrContains(details, "Wire format:  parquet\n")) << details;
  EXPECT_TRUE(absl::StrContains(details, "Source:       pg-source (postgres)\n")) << details;
  EXPECT_TRUE(absl::StrContains(details, "- local-files (file)\n")) << details;
  const std::string pretty = AdminOk({"flow", "get", "-id=" + id, "-pretty"});
  EXPECT_GT(Lines(pretty), 10) << pretty;
  const Json got = Json::parse(pretty);
  EXPECT_EQ(got["state"], "FLOW_STATE_CREATED");
  const int64_t generation = std::stoll(got["generation"].get<std::string>());

  // Illegal transition: one line naming the operation and the state.
  const std::string err = AdminFails({"flow", "pause", "-id", id}, "FAILED_PRECONDITION");
  EXPECT_TRUE(absl::StrContains(err, "cannot pause")) << err;
  EXPECT_TRUE(absl::StrContains(err, "created")) << err;
  EXPECT_TRUE(absl::StrContains(err, id)) << err;

  // Legal ones, with the generation moving on.
  EXPECT_EQ(AdminOk({"flow", "start", "-id", id}), absl::StrCat("Flow ", id, " is now running\n"));
  EXPECT_EQ(AdminOk({"flow", "pause", "-id", id}), absl::StrCat("Flow ", id, " is now paused\n"));
  const Json resumed = AdminJson({"flow", "resume", "-id", id, "-json"});
  EXPECT_EQ(resumed["state"], "FLOW_STATE_RUNNING");
  EXPECT_GT(std::stoll(resumed["generation"].get<std::string>()), generation);
  const std::string stopped = AdminOk({"flow", "stop", "-id", id});
  EXPECT_TRUE(stopped == absl::StrCat("Flow ", id, " is now stopping\n") ||
              stopped == absl::StrCat("Flow ", id, " is now stopped\n"))
      << stopped;
  AdminFails({"flow", "resume", "-id", id}, "FAILED_PRECONDITION");

  // delete, then it is gone.
  EXPECT_EQ(AdminOk({"flow", "delete", "-id", id}), absl::StrCat("Deleted flow ", id, "\n"));
  const std::string gone = AdminFails({"flow", "get", "-id", id}, "NOT_FOUND");
  EXPECT_TRUE(absl::StrContains(gone, id)) << gone;
  AdminFails({"flow", "delete", "-id", id}, "NOT_FOUND");
  const Json after = AdminJson({"flow", "list", "-json"});
  ASSERT_EQ(after["flows"].size(), 1u) << after.dump();
  EXPECT_EQ(after["flows"][0]["id"], id2);

  // A flow the server rejects: the validation message comes back on one line.
  Json bad = proto_form;
  bad["flow"]["source"]["options"].erase("slot");
  std::ofstream((dir_ / "bad.json").string()) << bad.dump();
  const std::string invalid =
      AdminFails({"flow", "create", "-file", (dir_ / "bad.json").string()}, "INVALID_ARGUMENT");
  EXPECT_TRUE(absl::StrContains(invalid, "slot")) << invalid;
  // A file the CLI cannot parse never reaches the server.
  std::ofstream((dir_ / "typo.json").string()) << R"({"name": "x", "sourse": {}})";
  AdminFails({"flow", "create", "-file", (dir_ / "typo.json").string()}, "INVALID_ARGUMENT");

  // Not implemented yet on the server: a clean one-line error.
  for (const auto& [args, rpc] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"ddl", "list"}, "DDLService/ListPendingDDL"},
           {{"ddl", "list", "-status", "all", "-json"}, "DDLService/ListDDL"},
           {{"stream", "pull", "-stream", "orders", "-group", "g1"}, "StreamService/Pull"}}) {
    const std::string line = AdminFails(args, "UNIMPLEMENTED");
    // The server's own message, or the CLI's naming the call when the server sends none.
    EXPECT_GT(line.size(), std::string("error: UNIMPLEMENTED: \n").size()) << line;
    EXPECT_TRUE(absl::StrContains(line, rpc) || !absl::StrContains(line, "not implemented by"))
        << line;
  }
}

// Every shipped example flow is accepted by the server as written: validation (connector types,
// required options, formats each destination supports) and the CLI's conversion agree with the
// files. The flows are created, not started: their brokers and buckets are examples.
TEST_F(AdminCliTest, EveryExampleFlowIsAcceptedAsWritten) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(testing::SourceDir() + "/examples/flows")) {
    if (entry.path().extension() != ".json") continue;
    SCOPED_TRACE(entry.path().string());
    Json file = Json::parse(ReadFile(entry.path().string()));
    const Json created = AdminJson({"flow", "create", "-file", entry.path().string(), "-json"});
    ASSERT_TRUE(created.contains("id")) << created.dump();
    EXPECT_EQ(created["state"], "FLOW_STATE_CREATED") << created.dump();
    const std::string type = file["destinations"][0]["type"].get<std::string>();
    EXPECT_EQ(created["destinations"][0]["type"],
              absl::StrCat("ENDPOINT_TYPE_", absl::AsciiStrToUpper(type)))
        << created.dump();
    ++checked;
  }
  EXPECT_GE(checked, 6) << "examples/flows went missing";
}

TEST_F(AdminCliTest, Checkpoints) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const std::string id = CreatedId(AdminOk({"flow", "create", "-file", ExampleFlow()}));
  ASSERT_FALSE(id.empty());

  EXPECT_EQ(AdminOk({"checkpoint", "list"}), "No checkpoints found.\n");
  AdminFails({"checkpoint", "get", "-flow-id", id}, "NOT_FOUND");
  AdminFails({"checkpoint", "put", "-flow-id", id, "-lsn", "16-B3"}, "INVALID_ARGUMENT");

  EXPECT_EQ(AdminOk({"checkpoint", "put", "-flow-id", id, "-lsn", "16/b374d848"}),
            absl::StrCat("Checkpoint of flow ", id, " set to 16/B374D848\n"));
  const std::string text = AdminOk({"checkpoint", "get", "-flow-id", id});
  EXPECT_TRUE(absl::StrContains(text, absl::StrCat("Flow:     ", id, "\n"))) << text;
  EXPECT_TRUE(absl::StrContains(text, "LSN:      16/B374D848\n")) << text;

  const Json got = AdminJson({"checkpoint", "get", "--flow-id=" + id, "-json"});
  EXPECT_EQ(got["flow_id"], id);
  EXPECT_EQ(got["checkpoint"]["lsn"], "16/B374D848");
  // The server stamps the time of the write.
  const int64_t millis = std::stoll(got["checkpoint"]["timestamp_unix_millis"].get<std::string>());
  EXPECT_LT(std::abs(millis - absl::ToUnixMillis(absl::Now())), 10 * 60 * 1000) << got.dump();

  const std::string table = AdminOk({"checkpoint", "list"});
  std::vector<std::string> lines = absl::StrSplit(table, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << table;
  EXPECT_TRUE(absl::StartsWith(lines[0], "FLOW_ID")) << table;
  EXPECT_TRUE(absl::StartsWith(lines[1], absl::StrCat(id, " "))) << table;
  EXPECT_TRUE(absl::StrContains(lines[1], "16/B374D848")) << table;
  const Json list = AdminJson({"checkpoint", "list", "-pretty"});
  ASSERT_EQ(list["checkpoints"].size(), 1u) << list.dump();
  EXPECT_EQ(list["checkpoints"][0]["checkpoint"]["lsn"], "16/B374D848");
}

TEST_F(AdminCliTest, GrpcurlReflectionAndExampleScript) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  ASSERT_TRUE(fs::exists(DS_GRPCURL)) << DS_GRPCURL << " is missing: run scripts/bootstrap";

  // Reflection lists the services.
  testing::CommandResult services = Run({DS_GRPCURL, "-plaintext", endpoint_, "list"});
  ASSERT_EQ(services.exit_code, 0) << services.err;
  EXPECT_TRUE(absl::StrContains(services.out, "ductstream.v1.FlowService\n")) << services.out;
  EXPECT_TRUE(absl::StrContains(services.out, "ductstream.v1.CheckpointService\n")) << services.out;
  testing::CommandResult methods =
      Run({DS_GRPCURL, "-plaintext", endpoint_, "list", "ductstream.v1.FlowService"});
  ASSERT_EQ(methods.exit_code, 0) << methods.err;
  EXPECT_TRUE(absl::StrContains(methods.out, "ductstream.v1.FlowService.PauseFlow")) << methods.out;

  // The standard health service answers SERVING (also without a token: probes need none).
  testing::CommandResult health =
      Run({DS_GRPCURL, "-plaintext", endpoint_, "grpc.health.v1.Health/Check"});
  ASSERT_EQ(health.exit_code, 0) << health.err;
  EXPECT_TRUE(absl::StrContains(health.out, "SERVING")) << health.out;

  // The documented example, with its environment overrides.
  const std::string script = testing::SourceDir() + "/examples/grpc/create_flow.sh";
  testing::CommandResult r = Run(
      {"env", absl::StrCat("DUCTSTREAM_ENDPOINT=", endpoint_), absl::StrCat("GRPCURL=", DS_GRPCURL),
       "FLOW_NAME=from-grpcurl", "SOURCE_DSN=postgres://replicator@pg.example:5432/shop",
       absl::StrCat("OUT_DIR=", (dir_ / "out").string()), "bash", script});
  ASSERT_EQ(r.exit_code, 0) << r.err << "\nserver log:\n" << ReadFile(ServerLog());
  const Json flow = Json::parse(r.out, nullptr, false);
  ASSERT_FALSE(flow.is_discarded()) << r.out;
  const std::string id = flow.value("id", "");
  ASSERT_FALSE(id.empty()) << r.out;
  EXPECT_EQ(flow["name"], "from-grpcurl");
  EXPECT_EQ(flow["state"], "FLOW_STATE_RUNNING");  // start_immediately

  // The admin CLI sees the same flow; stop it again.
  const Json got = AdminJson({"flow", "get", "-id", id, "-json"});
  EXPECT_EQ(got["state"], "FLOW_STATE_RUNNING");
  EXPECT_EQ(got["wire_format"], "WIRE_FORMAT_PARQUET");
  EXPECT_EQ(got["source"]["options"]["dsn"], "postgres://replicator@pg.example:5432/shop");
  EXPECT_EQ(got["destinations"][0]["options"]["path"], (dir_ / "out").string());
  AdminOk({"flow", "stop", "-id", id});

  // START=false creates without starting.
  r = Run({"env", absl::StrCat("DUCTSTREAM_ENDPOINT=", endpoint_),
           absl::StrCat("GRPCURL=", DS_GRPCURL), "START=false", "bash", script});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Json::parse(r.out)["state"], "FLOW_STATE_CREATED") << r.out;
}

TEST_F(AdminCliTest, BearerTokenAndTls) {
  // A self-signed certificate for the loopback address, trusted through -ca-file.
  const std::string cert = (dir_ / "cert.pem").string();
  const std::string key = (dir_ / "key.pem").string();
  testing::CommandResult gen =
      Run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
           "-days", "1", "-subj", "/CN=localhost", "-addext",
           "subjectAltName=IP:127.0.0.1,DNS:localhost"});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  const std::vector<std::string> tls = {"-insecure=false", "-ca-file", cert};
  std::vector<std::string> ready = tls;
  ready.insert(ready.end(), {"-token", "s3cret"});
  ASSERT_NO_FATAL_FAILURE(
      StartServer({absl::StrCat("DUCTSTREAM_TLS_CERT=", cert),
                   absl::StrCat("DUCTSTREAM_TLS_KEY=", key), "DUCTSTREAM_API_TOKEN=s3cret"},
                  ready));

  auto with = [&](std::vector<std::string> args) {
    std::vector<std::string> all = tls;
    all.insert(all.end(), args.begin(), args.end());
    return all;
  };
  // TLS without the token, and with a wrong one.
  AdminFails(with({"flow", "list"}), "UNAUTHENTICATED");
  AdminFails(with({"flow", "list", "-token", "wrong"}), "UNAUTHENTICATED");
  // The token from the flag and from DUCTSTREAM_API_TOKEN.
  EXPECT_EQ(AdminOk(with({"flow", "list", "-token", "s3cret"})), "No flows found.\n");
  const std::string created =
      AdminOk(with({"flow", "create", "-file", ExampleFlow()}), {"DUCTSTREAM_API_TOKEN=s3cret"});
  EXPECT_FALSE(CreatedId(created).empty()) << created;
  // Plaintext against a TLS server, and TLS without trusting its certificate, both fail cleanly.
  AdminFails({"-timeout", "5s", "-token", "s3cret", "flow", "list"}, "UNAVAILABLE");
  AdminFails({"-timeout", "5s", "-insecure=false", "-token", "s3cret", "flow", "list"},
             "UNAVAILABLE");

  // The example script over TLS with the token.
  testing::CommandResult r = Run(
      {"env", absl::StrCat("DUCTSTREAM_ENDPOINT=", endpoint_), absl::StrCat("GRPCURL=", DS_GRPCURL),
       absl::StrCat("GRPCURL_FLAGS=-cacert ", cert), "DUCTSTREAM_API_TOKEN=s3cret", "START=false",
       "bash", testing::SourceDir() + "/examples/grpc/create_flow.sh"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json table = AdminJson(with({"flow", "list", "-json", "-token", "s3cret"}));
  EXPECT_EQ(table["flows"].size(), 2u) << table.dump();
}

}  // namespace
}  // namespace ductstream
