#pragma once

// Worker supervision (DESIGN.md §4): the server runs one `ductstream-worker -flow-id ID` process
// per running flow — started when the flow starts or resumes, stopped (SIGTERM, then SIGKILL after
// a grace period) when it is paused, stopped or deleted, restarted with exponential backoff after
// a crash, and marked failed after repeated failures or a configuration error. The control store
// is the only source of truth: the supervisor reconciles it with its children every tick, so
// several servers may supervise the same store (the lease lets exactly one worker run a flow).

#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ductstream/control/child_process.h"
#include "ductstream/control/control_store.h"

namespace ductstream::control {

struct SupervisorOptions {
  /// Path of the ductstream-worker binary.
  std::string worker_binary;
  /// Worker logs go to <log_dir>/<flow id>.log (created when missing).
  std::string log_dir;
  absl::Duration poll_interval = absl::Milliseconds(500);
  /// SIGTERM → SIGKILL delay for a worker that should stop.
  absl::Duration stop_grace = absl::Seconds(30);
  absl::Duration backoff_initial = absl::Seconds(1);
  absl::Duration backoff_max = absl::Seconds(60);
  /// Consecutive crashes (exit 1 or a signal) before the flow is marked failed.
  int max_consecutive_failures = 5;
  /// A worker that ran at least this long resets the crash count.
  absl::Duration healthy_after = absl::Seconds(60);
};

class Supervisor {
 public:
  Supervisor(ControlStore* store, SupervisorOptions options);
  /// Stops every worker (Shutdown) if still running.
  ~Supervisor();

  /// Starts the reconciliation thread.
  void Start();
  /// Reconcile now rather than at the next tick (after an API transition).
  void Nudge();
  /// Stops the workers gracefully (SIGTERM, waiting up to stop_grace) and the thread. The flows
  /// keep their states: a restarted server starts their workers again.
  void Shutdown();

  /// For tests and logs: PIDs of the live workers by flow id.
  std::map<std::string, int> WorkerPids();

 private:
  struct Child {
    std::unique_ptr<ChildProcess> process;
    int64_t generation = 0;
    absl::Time started;
    absl::Time term_sent = absl::InfiniteFuture();
  };
  struct Backoff {
    int failures = 0;
    absl::Duration delay;
    absl::Time next_start = absl::InfinitePast();
  };

  void Loop();
  void Tick();
  void Reap(const std::string& id, Child& child, int code);
  void Spawn(const FlowRecord& flow);
  std::string LastErrorLine(const std::string& id) const;
  std::string LogPath(const std::string& id) const;

  ControlStore* const store_;
  const SupervisorOptions options_;
  std::thread thread_;
  absl::Mutex mu_;
  bool nudged_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Touched only by the supervision thread, except WorkerPids under mu_.
  std::map<std::string, Child> children_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Backoff> backoff_;
};

}  // namespace ductstream::control
