#pragma once

// A supervised child process (the server's workers). Written here rather than taken from a
// library because none of our dependencies spawns processes, and the supervisor needs one thing
// posix_spawn cannot do: PR_SET_PDEATHSIG, so that workers stop (gracefully, SIGTERM) when their
// server dies instead of running on unsupervised.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ductstream::control {

class ChildProcess {
 public:
  /// Starts `argv` (argv[0] is a path) with this process's environment, stdout and stderr
  /// appended to `log_path`, stdin from /dev/null. The child gets SIGTERM when the calling
  /// *thread* exits, so call this from a thread that lives as long as the supervision.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Spawn(const std::vector<std::string>& argv,
                                                             const std::string& log_path);
  /// Kills (SIGKILL) and reaps a child still running.
  ~ChildProcess();

  int pid() const { return pid_; }
  void Signal(int sig);
  /// Non-blocking: the exit code, or 128 + signal number, once the child has exited.
  std::optional<int> Poll();

 private:
  explicit ChildProcess(int pid) : pid_(pid) {}
  int pid_;
  std::optional<int> status_;
};

}  // namespace ductstream::control
