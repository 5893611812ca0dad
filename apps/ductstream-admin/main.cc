// ductstream-admin: operator CLI over the gRPC API (SPEC §2.3); the logic is in
// src/ductstream/admin/cli.h.
#include <iostream>
#include <string>
#include <vector>

#include "ductstream/admin/cli.h"
#include "ductstream/base/logging.h"

int main(int argc, char** argv) {
  (void)ductstream::base::SetLogLevel();
  const std::vector<std::string> args(argv, argv + argc);
  return ductstream::admin::RunAdmin(args, std::cout, std::cerr);
}
