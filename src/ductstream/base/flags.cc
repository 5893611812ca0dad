#include "ductstream/base/flags.h"

#include <cctype>

namespace ductstream::base {

std::vector<std::string> NormalizeGoStyleFlags(int argc, const char* const* argv) {
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(argc));
  bool passthrough = false;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (i > 0 && !passthrough) {
      if (arg == "--") {
        passthrough = true;
      } else if (arg.size() > 2 && arg[0] == '-' && arg[1] != '-' &&
                 std::isalpha(static_cast<unsigned char>(arg[1])) &&
                 (std::isalnum(static_cast<unsigned char>(arg[2])) || arg[2] == '-' ||
                  arg[2] == '_')) {
        arg = "-" + arg;  // not insert(0, ...): GCC 12 -Wrestrict false positive at -O2
      }
    }
    out.push_back(std::move(arg));
  }
  return out;
}

}  // namespace ductstream::base
