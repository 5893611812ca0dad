#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ductstream::testing {

/// Result of a finished child process.
struct CommandResult {
  int exit_code = -1;
  std::string out;  // everything written to stdout
  std::string err;  // everything written to stderr
};

/// Runs argv[0] (looked up in PATH) with `argv`, optionally feeding `input` on stdin, and waits
/// for it. Fails only when the process cannot be started; the exit code is in the result.
/// Written here rather than pulled from a library because no dependency we ship spawns processes
/// with captured pipes (std::system cannot capture, popen captures one stream); it is test-only.
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         const std::string& input = {});

/// Like RunCommand, but a non-zero exit becomes an error carrying the child's stderr.
absl::StatusOr<std::string> RunCommandOk(const std::vector<std::string>& argv,
                                         const std::string& input = {});

}  // namespace ductstream::testing
