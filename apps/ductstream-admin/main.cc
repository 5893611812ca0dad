// ductstream-admin: operator CLI. `source check` inspects a source database directly; the flow,
// checkpoint, ddl and stream commands arrive with the control-plane API.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "ductstream/base/flags.h"
#include "ductstream/base/logging.h"
#include "ductstream/base/redact.h"
#include "ductstream/postgres/preflight.h"

namespace {

int SourceCheck(const std::string& dsn, bool json, bool pretty) {
  auto report = ductstream::postgres::CheckSource(dsn);
  if (!report.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(report.status().message()).c_str());
    return 1;
  }
  if (json || pretty) {
    nlohmann::json out = {
        {"dsn", ductstream::base::RedactDsn(dsn)},
        {"version", report->version},
        {"server_version_num", report->server_version_num},
        {"wal_level", report->wal_level},
        {"max_replication_slots", report->max_replication_slots},
        {"used_replication_slots", report->used_replication_slots},
        {"max_wal_senders", report->max_wal_senders},
        {"can_replicate", report->can_replicate},
        {"system_id", report->identity.system_id},
        {"timeline", report->identity.timeline},
        {"xlogpos", report->identity.xlogpos.ToString()},
        {"ready", report->problems.empty()},
        {"problems", report->problems},
    };
    std::cout << out.dump(pretty ? 2 : -1) << "\n";
  } else {
    std::cout << "Source:            " << ductstream::base::RedactDsn(dsn) << "\n"
              << "Version:           " << report->version << "\n"
              << "wal_level:         " << report->wal_level << "\n"
              << "Replication slots: " << report->used_replication_slots << " used of "
              << report->max_replication_slots << "\n"
              << "WAL senders:       " << report->max_wal_senders << "\n";
    if (report->problems.empty()) {
      std::cout << "System identifier: " << report->identity.system_id << " (timeline "
                << report->identity.timeline << ", WAL at " << report->identity.xlogpos.ToString()
                << ")\n"
                << "Ready for logical replication.\n";
    } else {
      std::cout << "NOT ready for logical replication:\n";
      for (const auto& p : report->problems) std::cout << "- " << p << "\n";
    }
  }
  return report->problems.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"DuctStream admin CLI"};
  app.set_version_flag("--version", std::string("ductstream-admin ") + DS_VERSION);
  app.require_subcommand(1);

  auto* source = app.add_subcommand("source", "Inspect a source PostgreSQL database directly");
  source->require_subcommand(1);
  auto* check =
      source->add_subcommand("check", "Check that a database is ready for logical replication");
  std::string dsn;
  bool json = false;
  bool pretty = false;
  check->add_option("--dsn", dsn, "libpq conninfo or URI of the source database")->required();
  check->add_flag("--json", json, "JSON output");
  check->add_flag("--pretty", pretty, "indented JSON output (implies --json)");

  std::vector<std::string> args = ductstream::base::NormalizeGoStyleFlags(argc, argv);
  std::vector<const char*> cargs;
  for (const auto& a : args) cargs.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(cargs.size()), cargs.data());
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  (void)ductstream::base::SetLogLevel();
  if (check->parsed()) return SourceCheck(dsn, json, pretty);
  return 1;
}
