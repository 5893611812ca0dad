#pragma once

// The `ductstream` control-plane server (SPEC.md §2.1, DESIGN.md §4): FlowService and
// CheckpointService over the control store, DDLService and StreamService registered (answering
// UNIMPLEMENTED until their features land), gRPC reflection and the standard health service,
// optional TLS and bearer-token auth, and the supervisor that runs one worker per running flow.

#include <atomic>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ductstream/flow/flow_config.h"
#include "ductstream/store/checkpoint_store.h"

namespace ductstream::api {

struct ServerConfig {
  /// DUCTSTREAM_GRPC_LISTEN (default ":8080"; a bare ":port" listens on every interface).
  std::string listen = ":8080";
  /// DUCTSTREAM_TLS_CERT / DUCTSTREAM_TLS_KEY: PEM files; both or neither.
  std::string tls_cert_file;
  std::string tls_key_file;
  /// DUCTSTREAM_API_TOKEN: when set, every Flow/Checkpoint/DDL/Stream call must carry
  /// `authorization: Bearer <token>` (health and reflection stay open for probes and tools).
  std::string api_token;
  /// DUCTSTREAM_WIRE_FORMAT / DUCTSTREAM_WIRE_ENFORCE for flow validation.
  flow::ValidationOptions validation;
  /// DUCTSTREAM_CHECKPOINT_BACKEND=none turns the CheckpointService off.
  bool checkpoint_service = true;
  /// DUCTSTREAM_WORKER_BIN, else ductstream-worker beside this binary (or in PATH).
  std::string worker_binary;
  /// DUCTSTREAM_WORKER_LOG_DIR, else a `worker-logs` directory beside the SQLite state file, or
  /// $HOME/.ductstream/worker-logs.
  std::string worker_log_dir;
  /// DUCTSTREAM_SUPERVISE=false runs the API without starting workers (they are run elsewhere,
  /// e.g. by Kubernetes, with `ductstream-worker -flow-id`).
  bool supervise = true;
};

/// Reads the configuration; InvalidArgument naming the variable for a bad value.
absl::StatusOr<ServerConfig> ServerConfigFromEnv(const store::EnvLookup& env = store::ProcessEnv());

/// Opens the control store (running migrations), starts the server and the supervisor, and
/// serves until `stop` is set; then stops accepting calls, finishes the ones in flight, stops
/// the workers gracefully and returns. `on_listening` (optional) gets the bound port.
absl::Status RunServer(const ServerConfig& config, const std::atomic<bool>& stop,
                       const store::EnvLookup& env = store::ProcessEnv());

}  // namespace ductstream::api
