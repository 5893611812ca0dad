#include "ductstream/control/supervisor.h"

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "ductstream/base/logging.h"

namespace ductstream::control {
namespace {

constexpr int kExitConfig = 2;  // ductstream-worker: the flow definition is wrong
constexpr int kExitLease = 3;   // ductstream-worker: not this worker's turn (lease)

}  // namespace

Supervisor::Supervisor(ControlStore* store, SupervisorOptions options)
    : store_(store), options_(std::move(options)) {}

Supervisor::~Supervisor() { Shutdown(); }

void Supervisor::Start() {
  std::error_code ec;
  std::filesystem::create_directories(options_.log_dir, ec);
  thread_ = std::thread([this] { Loop(); });
}

void Supervisor::Nudge() {
  absl::MutexLock lock(&mu_);
  nudged_ = true;
}

void Supervisor::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

std::map<std::string, int> Supervisor::WorkerPids() {
  absl::MutexLock lock(&mu_);
  std::map<std::string, int> out;
  for (auto& [id, child] : children_) {
    if (!child.process->Poll().has_value()) out[id] = child.process->pid();
  }
  return out;
}

std::string Supervisor::LogPath(const std::string& id) const {
  // Flow ids are free text: keep the file name tame.
  std::string name;
  for (char c : id)
    name.push_back(
        std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ? c : '_');
  return (std::filesystem::path(options_.log_dir) / (name + ".log")).string();
}

std::string Supervisor::LastErrorLine(const std::string& id) const {
  // Log lines read "<time> <level> [<module>] <message>" (base/logging.h).
  std::ifstream in(LogPath(id));
  std::string line, last;
  while (std::getline(in, line)) {
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (words.size() < 3 || (words[1] != "error" && words[1] != "critical")) continue;
    const size_t tag = line.find("] ");
    last = tag == std::string::npos ? line : line.substr(tag + 2);
  }
  return last.empty() ? "no error logged (see the worker log)" : last;
}

void Supervisor::Loop() {
  auto log = base::GetLogger("supervisor");
  log->info("supervising workers ({}), logs in {}", options_.worker_binary, options_.log_dir);
  while (true) {
    Tick();
    // Sleep until the next tick, a nudge or shutdown.
    absl::MutexLock lock(&mu_);
    auto woken = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return nudged_ || stopping_; };
    mu_.AwaitWithTimeout(absl::Condition(&woken), options_.poll_interval);
    nudged_ = false;
    if (stopping_) break;
  }
  // Graceful stop of every worker: SIGTERM, wait, then SIGKILL.
  absl::MutexLock lock(&mu_);
  for (auto& [id, child] : children_) child.process->Signal(SIGTERM);
  const absl::Time deadline = absl::Now() + options_.stop_grace;
  for (auto& [id, child] : children_) {
    while (!child.process->Poll().has_value() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    if (!child.process->Poll().has_value()) {
      log->warn("flow {}: worker {} did not stop in time; killing it", id, child.process->pid());
    }
  }
  children_.clear();  // kills and reaps any left
  log->info("all workers stopped");
}

void Supervisor::Reap(const std::string& id, Child& child, int code) {
  auto log = base::GetLogger("supervisor");
  Backoff& b = backoff_[id];
  const absl::Duration ran = absl::Now() - child.started;
  if (ran >= options_.healthy_after) b = Backoff{};
  auto current = store_->GetFlow(id);
  const bool still_wanted = current.ok() && WantsWorker(current->state);
  if (code == 0 || code == 128 + SIGTERM) {
    log->info("flow {}: worker {} exited ({})", id, child.process->pid(), code);
    b.next_start = absl::Now() + options_.backoff_initial;
    return;
  }
  if (code == kExitLease) {
    log->info("flow {}: worker {} stood down (lease: {})", id, child.process->pid(),
              LastErrorLine(id));
    b.delay = std::min(std::max(b.delay * 2, options_.backoff_initial), options_.backoff_max);
    b.next_start = absl::Now() + b.delay;
    return;
  }
  const std::string reason =
      absl::StrCat("worker exited with status ", code, ": ", LastErrorLine(id));
  if (!still_wanted) {
    log->warn("flow {}: {}", id, reason);
    return;
  }
  ++b.failures;
  if (code == kExitConfig || b.failures >= options_.max_consecutive_failures) {
    const std::string why = code == kExitConfig
                                ? reason
                                : absl::StrCat(reason, " (", b.failures, " consecutive failures)");
    log->error("flow {}: marking failed: {}", id, why);
    auto failed = store_->Transition(id, FlowOp::kFail, why);
    if (!failed.ok()) log->warn("flow {}: {}", id, failed.status().ToString());
    backoff_.erase(id);
    return;
  }
  b.delay = std::min(std::max(b.delay * 2, options_.backoff_initial), options_.backoff_max);
  b.next_start = absl::Now() + b.delay;
  log->warn("flow {}: {}; restarting in {} (failure {} of {})", id, reason,
            absl::FormatDuration(b.delay), b.failures, options_.max_consecutive_failures);
}

void Supervisor::Spawn(const FlowRecord& flow) {
  auto log = base::GetLogger("supervisor");
  const std::string& id = flow.definition.id;
  std::vector<std::string> argv = {options_.worker_binary, "-flow-id", id};
  auto child = ChildProcess::Spawn(argv, LogPath(id));
  if (!child.ok()) {
    log->error("flow {}: starting a worker: {}", id, child.status().ToString());
    backoff_[id].next_start = absl::Now() + options_.backoff_initial;
    return;
  }
  log->info("flow {}: started worker {} for generation {}", id, (*child)->pid(), flow.generation);
  absl::MutexLock lock(&mu_);
  children_[id] = Child{std::move(*child), flow.generation, absl::Now(), absl::InfiniteFuture()};
}

void Supervisor::Tick() {
  auto log = base::GetLogger("supervisor");
  // Every flow, page by page.
  std::map<std::string, FlowRecord> flows;
  std::optional<FlowCursor> cursor;
  while (true) {
    auto page = store_->ListFlows(cursor, 500);
    if (!page.ok()) {
      log->warn("reading flows: {}", page.status().ToString());
      return;  // the store is unreachable: leave the workers as they are
    }
    for (FlowRecord& f : *page) flows[f.definition.id] = std::move(f);
    if (page->size() < 500) break;
    const FlowRecord& last = flows.rbegin()->second;
    cursor = FlowCursor{last.created_at_unix_millis, last.definition.id};
  }

  // Children: reap the exited, stop the unwanted.
  std::vector<std::string> ids;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, child] : children_) ids.push_back(id);
  }
  for (const std::string& id : ids) {
    Child* child;
    {
      absl::MutexLock lock(&mu_);
      child = &children_.at(id);
    }
    if (auto code = child->process->Poll()) {
      Reap(id, *child, *code);
      absl::MutexLock lock(&mu_);
      children_.erase(id);
      continue;
    }
    auto it = flows.find(id);
    const bool wanted = it != flows.end() && WantsWorker(it->second.state) &&
                        it->second.generation == child->generation;
    if (wanted) continue;
    if (child->term_sent == absl::InfiniteFuture()) {
      log->info("flow {}: stopping worker {} ({})", id, child->process->pid(),
                it == flows.end() ? "flow deleted"
                                  : absl::StrCat("flow ", FlowStateName(it->second.state)));
      child->process->Signal(SIGTERM);
      child->term_sent = absl::Now();
    } else if (absl::Now() - child->term_sent > options_.stop_grace) {
      log->warn("flow {}: worker {} ignored SIGTERM for {}; killing it", id, child->process->pid(),
                absl::FormatDuration(options_.stop_grace));
      child->process->Signal(SIGKILL);
    }
  }

  for (auto& [id, flow] : flows) {
    bool have_child;
    {
      absl::MutexLock lock(&mu_);
      have_child = children_.count(id) > 0;
    }
    if (WantsWorker(flow.state)) {
      if (!have_child && absl::Now() >= backoff_[id].next_start) Spawn(flow);
      continue;
    }
    backoff_.erase(id);
    // A stop completes once no worker holds the flow (ours has exited; others' leases expired).
    if (flow.state == FlowState::kStopping && !have_child) {
      auto lease = store_->GetLease(id);
      if (lease.ok() && (!lease->has_value() || (*lease)->expired)) {
        auto stopped = store_->Transition(id, FlowOp::kFinishStop);
        if (stopped.ok()) {
          log->info("flow {}: stopped", id);
        } else if (!absl::IsFailedPrecondition(stopped.status())) {
          log->warn("flow {}: {}", id, stopped.status().ToString());
        }
      }
    }
  }
  for (auto it = backoff_.begin(); it != backoff_.end();) {
    it = flows.count(it->first) ? std::next(it) : backoff_.erase(it);
  }
}

}  // namespace ductstream::control
