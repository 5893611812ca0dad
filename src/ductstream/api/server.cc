#include "ductstream/api/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ductstream/api/health.h"
#include "ductstream/api/services.h"
#include "ductstream/api/stream_service.h"
#include "ductstream/base/logging.h"
#include "ductstream/base/status.h"
#include "ductstream/control/control_store.h"
#include "ductstream/control/supervisor.h"
#include "ductstream/v1/ddl.grpc.pb.h"
#include "ductstream/v1/stream.grpc.pb.h"

namespace ductstream::api {
namespace {

std::optional<std::string> NonEmpty(const store::EnvLookup& env, absl::string_view name) {
  auto v = env(name);
  if (!v.has_value() || v->empty()) return std::nullopt;
  return v;
}

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view variable) {
  std::ifstream in(path);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(variable, ": cannot read ", path));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The worker binary: explicit, else beside this binary (installed layout), else in the build
// tree's apps/ductstream-worker, else PATH.
std::string DefaultWorkerBinary() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto dir = self.parent_path();
    for (const auto& candidate : {dir / "ductstream-worker",
                                  dir.parent_path() / "ductstream-worker" / "ductstream-worker"}) {
      if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    }
  }
  return "ductstream-worker";
}

// A bare ":8080" (the Go listen syntax) means every interface.
std::string ListenAddress(const std::string& listen) {
  if (absl::StartsWith(listen, ":")) return absl::StrCat("0.0.0.0", listen);
  return listen;
}

}  // namespace

absl::StatusOr<ServerConfig> ServerConfigFromEnv(const store::EnvLookup& env) {
  ServerConfig c;
  if (auto v = NonEmpty(env, "DUCTSTREAM_GRPC_LISTEN")) c.listen = *v;
  c.tls_cert_file = NonEmpty(env, "DUCTSTREAM_TLS_CERT").value_or("");
  c.tls_key_file = NonEmpty(env, "DUCTSTREAM_TLS_KEY").value_or("");
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "DUCTSTREAM_TLS_CERT and DUCTSTREAM_TLS_KEY: set both (PEM certificate chain and private "
        "key) or neither");
  }
  c.api_token = NonEmpty(env, "DUCTSTREAM_API_TOKEN").value_or("");
  if (auto format = NonEmpty(env, "DUCTSTREAM_WIRE_FORMAT")) {
    auto parsed = codec::ParseWireFormat(*format);
    if (!parsed.ok()) return base::Annotate(parsed.status(), "DUCTSTREAM_WIRE_FORMAT");
    c.validation.default_wire_format = *parsed;
  }
  if (auto enforce = env("DUCTSTREAM_WIRE_ENFORCE")) {
    c.validation.enforce = flow::ParseBoolOption(*enforce).value_or(true);
  }
  if (auto backend = NonEmpty(env, "DUCTSTREAM_CHECKPOINT_BACKEND")) {
    c.checkpoint_service = absl::AsciiStrToLower(*backend) != "none";
  }
  c.worker_binary = NonEmpty(env, "DUCTSTREAM_WORKER_BIN").value_or(DefaultWorkerBinary());
  if (auto dir = NonEmpty(env, "DUCTSTREAM_WORKER_LOG_DIR")) c.worker_log_dir = *dir;
  if (auto supervise = env("DUCTSTREAM_SUPERVISE")) {
    c.supervise = flow::ParseBoolOption(*supervise).value_or(true);
  }
  return c;
}

absl::Status RunServer(const ServerConfig& config, const std::atomic<bool>& stop,
                       const store::EnvLookup& env) {
  auto log = base::GetLogger("api");
  DS_ASSIGN_OR_RETURN(control::StateDatabase where, control::SelectStateDatabase(env));
  DS_ASSIGN_OR_RETURN(auto control_store, control::OpenControlStore(where));
  log->info("control store: {}", where.description);
  std::unique_ptr<store::CheckpointStore> checkpoints;
  if (config.checkpoint_service) {
    DS_ASSIGN_OR_RETURN(checkpoints, control::OpenCheckpointStore(where));
  }

  std::string log_dir = config.worker_log_dir;
  if (log_dir.empty()) {
    if (where.dialect == store::SqlDialect::kSqlite) {
      log_dir = (std::filesystem::path(where.target).parent_path() / "worker-logs").string();
    } else {
      log_dir = absl::StrCat(env("HOME").value_or("/tmp"), "/.ductstream/worker-logs");
    }
  }
  std::unique_ptr<control::Supervisor> supervisor;
  if (config.supervise) {
    control::SupervisorOptions options;
    options.worker_binary = config.worker_binary;
    options.log_dir = log_dir;
    supervisor = std::make_unique<control::Supervisor>(control_store.get(), options);
  }

  FlowServiceImpl flows(control_store.get(), config.validation, config.api_token, [&supervisor] {
    if (supervisor) supervisor->Nudge();
  });
  std::unique_ptr<CheckpointServiceImpl> checkpoint_service;
  if (checkpoints) {
    checkpoint_service =
        std::make_unique<CheckpointServiceImpl>(checkpoints.get(), config.api_token);
  }
  // Registered so that reflection lists it and callers get UNIMPLEMENTED with a clear status.
  ductstream::v1::DDLService::Service ddl;
  // Over the PostgreSQL control database; UNIMPLEMENTED (saying why) on the embedded SQLite store.
  StreamServiceImpl streams(where.dialect == store::SqlDialect::kPostgres ? where.target : "",
                            config.api_token);

  HealthService health({"ductstream.v1.FlowService", "ductstream.v1.CheckpointService",
                        "ductstream.v1.StreamService"});
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!config.tls_cert_file.empty()) {
    DS_ASSIGN_OR_RETURN(std::string cert, ReadFile(config.tls_cert_file, "DUCTSTREAM_TLS_CERT"));
    DS_ASSIGN_OR_RETURN(std::string key, ReadFile(config.tls_key_file, "DUCTSTREAM_TLS_KEY"));
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({key, cert});
    credentials = grpc::SslServerCredentials(ssl);
  }
  int port = 0;
  builder.AddListeningPort(ListenAddress(config.listen), credentials, &port);
  builder.RegisterService(&flows);
  if (checkpoint_service) builder.RegisterService(checkpoint_service.get());
  builder.RegisterService(&ddl);
  builder.RegisterService(&streams);
  builder.RegisterService(&health);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", config.listen,
                     " (DUCTSTREAM_GRPC_LISTEN): the address is in use or invalid"));
  }
  log->info(
      "listening on {} ({}{}), serving FlowService{}, StreamService{}, DDLService "
      "(unimplemented), reflection, health",
      config.listen, config.tls_cert_file.empty() ? "plaintext" : "TLS",
      config.api_token.empty() ? "" : ", bearer token required",
      checkpoint_service ? ", CheckpointService" : "",
      where.dialect == store::SqlDialect::kPostgres ? "" : " (unimplemented: no PostgreSQL)");
  if (supervisor) supervisor->Start();

  while (!stop.load()) absl::SleepFor(absl::Milliseconds(100));

  log->info("shutting down: finishing calls in flight, then stopping workers");
  health.SetNotServing();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (supervisor) supervisor->Shutdown();
  log->info("stopped");
  return absl::OkStatus();
}

}  // namespace ductstream::api
