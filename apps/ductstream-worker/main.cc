// ductstream-worker: the data plane for exactly one flow.
#include <CLI/CLI.hpp>

#include "ductstream/base/logging.h"

int main(int argc, char** argv) {
  CLI::App app{"DuctStream worker: replicates one flow from PostgreSQL to its destinations"};
  app.set_version_flag("--version", std::string("ductstream-worker ") + DS_VERSION);
  CLI11_PARSE(app, argc, argv);
  ductstream::base::GetLogger("worker")->error("replication is not part of this build yet");
  return 2;
}
