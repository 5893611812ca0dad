// ductstream: the control plane (gRPC API, control store, lifecycle, supervision of workers).
#include <CLI/CLI.hpp>
#include <cstdio>

#include "ductstream/base/logging.h"

int main(int argc, char** argv) {
  CLI::App app{"DuctStream control plane: gRPC API for flows, checkpoints, DDL and streams"};
  app.set_version_flag("--version", std::string("ductstream ") + DS_VERSION);
  CLI11_PARSE(app, argc, argv);
  ductstream::base::GetLogger("api")->error(
      "the gRPC control plane is not part of this build yet; run flows with ductstream-worker");
  return 2;
}
