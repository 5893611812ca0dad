#include "ductstream/base/check.h"

#include <cstdio>
#include <cstdlib>

namespace ductstream::base::internal {

void CheckFailed(const char* file, int line, const char* condition, std::string_view message) {
  // stderr directly, not spdlog: the logger may be the thing that is broken.
  std::fprintf(stderr, "%s:%d: check failed: %s%s%.*s\n", file, line, condition,
               message.empty() ? "" : ": ", static_cast<int>(message.size()), message.data());
  std::fflush(stderr);
  std::abort();
}

}  // namespace ductstream::base::internal
