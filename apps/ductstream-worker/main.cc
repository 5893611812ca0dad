// ductstream-worker: the data plane for exactly one flow (SPEC.md §2.2).
#include <signal.h>

#include <atomic>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "ductstream/base/flags.h"
#include "ductstream/base/logging.h"
#include "ductstream/worker/worker.h"

namespace {

std::atomic<bool> g_stop{false};

extern "C" void OnSignal(int) { g_stop.store(true); }

}  // namespace

int main(int argc, char** argv) {
  ductstream::worker::WorkerFlags flags;
  std::string config;
  bool resolve_staging = false;
  CLI::App app{"DuctStream worker: replicates one flow from PostgreSQL to its destinations"};
  app.set_version_flag("--version", std::string("ductstream-worker ") + DS_VERSION);
  app.add_option("--flow", flags.flow_file, "flow definition file (JSON, SPEC §4)");
  app.add_option("--flow-id", flags.flow_id, "flow to run from the control plane");
  app.add_option("--max-empty-reads", flags.max_empty_reads,
                 "stop after N consecutive empty reads (0 = run until SIGTERM)");
  app.add_option("--mode", flags.mode, "cdc or backfill");
  app.add_option("--start-lsn", flags.start_lsn, "start here instead of the checkpoint (X/Y)");
  app.add_option("--tables", flags.tables, "backfill: schema.table,...");
  app.add_option("--schemas", flags.schemas, "backfill: schema,...");
  app.add_option("--snapshot-workers", flags.snapshot_workers,
                 "snapshot/backfill: parallel COPY connections");
  app.add_option("--partition-column", flags.partition_column,
                 "snapshot/backfill: hash-partition tables on this column");
  app.add_option("--partition-count", flags.partition_count,
                 "snapshot/backfill: hash partitions per table");
  app.add_flag("--resolve-staging", resolve_staging, "backfill: resolve staging when done");
  app.add_option("--config", config, "accepted and ignored (compatibility)");
  // Go flag syntax (-flow x, -flow=x, --flow=x) as the original worker accepted.
  std::vector<std::string> args = ductstream::base::NormalizeGoStyleFlags(argc, argv);
  std::vector<const char*> cargs;
  for (const auto& a : args) cargs.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(cargs.size()), cargs.data());
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  (void)ductstream::base::SetLogLevel();

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  absl::Status status = ductstream::worker::RunWorker(flags, g_stop);
  if (!status.ok()) {
    ductstream::base::GetLogger("worker")->error("{}", status.ToString());
    // 2: the flow or the flags are wrong (fix them); 3: the lease says this worker must not run
    // the flow now (another holds it, or it is not running); 1: the flow failed.
    if (status.code() == absl::StatusCode::kInvalidArgument ||
        status.code() == absl::StatusCode::kUnimplemented) {
      return 2;
    }
    return ductstream::worker::IsLeaseOutcome(status) ? 3 : 1;
  }
  return 0;
}
