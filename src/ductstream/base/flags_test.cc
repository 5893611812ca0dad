#include "ductstream/base/flags.h"

#include <gtest/gtest.h>

namespace ductstream::base {
namespace {

std::vector<std::string> Normalize(std::vector<const char*> args) {
  return NormalizeGoStyleFlags(static_cast<int>(args.size()), args.data());
}

TEST(FlagsTest, RewritesGoStyleLongFlags) {
  EXPECT_EQ(
      Normalize({"w", "-flow-id", "abc", "-max-empty-reads=1", "--mode", "cdc"}),
      (std::vector<std::string>{"w", "--flow-id", "abc", "--max-empty-reads=1", "--mode", "cdc"}));
}

TEST(FlagsTest, LeavesShortFlagsNumbersAndPassthroughAlone) {
  EXPECT_EQ(Normalize({"w", "-v", "-1", "-", "--", "-flow-id"}),
            (std::vector<std::string>{"w", "-v", "-1", "-", "--", "-flow-id"}));
  // argv[0] is never touched, even if it looks like a flag.
  EXPECT_EQ(Normalize({"-weird"}), (std::vector<std::string>{"-weird"}));
}

}  // namespace
}  // namespace ductstream::base
