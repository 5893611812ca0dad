#pragma once

// ductstream-admin (SPEC §2.3): the operator CLI over the gRPC API. The whole command line is
// handled here so that tests can drive it in-process against a fake server; the binary's main()
// only forwards argv.
//
//   ductstream-admin [-endpoint H:P] [-insecure=false [-ca-file F]] [-token T] [-json|-pretty]
//                    flow create -file F [-start] | flow get|start|pause|resume|stop|delete -id ID
//                    | flow list | checkpoint get -flow-id ID | checkpoint list
//                    | checkpoint put -flow-id ID -lsn X/Y | ddl list [-status S]
//                    | stream pull -stream S -group G | source check -dsn DSN
//
// Flags use Go's syntax (`-x v`, `-x=v`, `--x=v`) and may appear anywhere after the program name.
// Exit status: 0 on success; 1 with one "error: CODE: message" line on stderr for a failed call,
// and 1 with the usage for a missing or unknown command.

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <grpcpp/channel.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ductstream::admin {

/// How to reach the API server (the global flags).
struct ConnectionOptions {
  std::string endpoint = "localhost:8080";
  /// Plaintext gRPC. Otherwise TLS with the system roots, or with `ca_file`.
  bool insecure = true;
  /// PEM bundle of trusted roots for TLS.
  std::string ca_file;
  /// Sent as `authorization: Bearer <token>` when not empty.
  std::string token;
  /// Deadline of each call.
  absl::Duration timeout = absl::Seconds(10);
};

/// Makes the channel for a command. Tests pass one that returns an in-process channel.
using ChannelFactory =
    std::function<absl::StatusOr<std::shared_ptr<grpc::Channel>>(const ConnectionOptions&)>;

/// grpc::CreateChannel with insecure or TLS credentials. Fails when `ca_file` cannot be read.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ConnectionOptions& options);

/// Runs one command. `args` is argv as given (argv[0] first); DUCTSTREAM_API_TOKEN is the default
/// of -token. Returns the exit status. Sends gRPC's own log lines to the debug log (process-wide),
/// so that stderr carries only the command's error.
int RunAdmin(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
             const ChannelFactory& channel_factory = MakeChannel);

}  // namespace ductstream::admin
