#pragma once

#include <memory>
#include <optional>
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

/// A child running in the background, its stdout and stderr appended to `log_path`.
/// Lifecycle: Spawn → Signal*/Wait. The destructor kills (SIGKILL) and reaps a child still
/// running.
class BackgroundProcess {
 public:
  /// `env` entries ("K=V") are added to (and override) this process's environment.
  static absl::StatusOr<std::unique_ptr<BackgroundProcess>> Spawn(
      const std::vector<std::string>& argv, const std::vector<std::string>& env,
      const std::string& log_path);
  ~BackgroundProcess();

  int pid() const { return pid_; }
  void Signal(int sig);
  /// Waits for exit: the exit code, or 128 + signal number. Idempotent.
  int Wait();
  /// Non-blocking: the exit status once the child has exited.
  std::optional<int> Poll();

 private:
  explicit BackgroundProcess(int pid) : pid_(pid) {}
  int pid_;
  std::optional<int> status_;
};

}  // namespace ductstream::testing
