// gtest main shared by every test binary.
#include <csignal>

#include <gtest/gtest.h>

#include "ductstream/base/logging.h"

int main(int argc, char** argv) {
  // A child process that exits early must not kill the test with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::GTEST_FLAG(death_test_style) = "threadsafe";
  (void)ductstream::base::SetLogLevel();
  return RUN_ALL_TESTS();
}
