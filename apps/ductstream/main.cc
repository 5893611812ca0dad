// ductstream: the control plane (SPEC.md §2.1): gRPC API for flows and checkpoints over the
// control store, and supervision of one worker per running flow. Configured from the environment
// (SPEC.md §2.4); SIGTERM/SIGINT shut it down gracefully.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>

#include "ductstream/api/server.h"
#include "ductstream/base/flags.h"
#include "ductstream/base/logging.h"

namespace {

std::atomic<bool> g_stop{false};

extern "C" void OnSignal(int) { g_stop.store(true); }

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  CLI::App app{"DuctStream control plane: gRPC API for flows, checkpoints, DDL and streams"};
  app.set_version_flag("--version", std::string("ductstream ") + DS_VERSION);
  app.add_option("--config", config_path, "accepted and ignored: configuration is the environment");
  std::vector<std::string> args = ductstream::base::NormalizeGoStyleFlags(argc, argv);
  std::vector<const char*> cargs;
  for (const auto& a : args) cargs.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(cargs.size()), cargs.data());
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  (void)ductstream::base::SetLogLevel();
  auto log = ductstream::base::GetLogger("api");

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto config = ductstream::api::ServerConfigFromEnv();
  if (!config.ok()) {
    log->error("{}", config.status().ToString());
    return 2;
  }
  absl::Status status = ductstream::api::RunServer(*config, g_stop);
  if (!status.ok()) {
    log->error("{}", status.ToString());
    return 1;
  }
  return 0;
}
