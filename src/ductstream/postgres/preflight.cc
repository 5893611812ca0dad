#include "ductstream/postgres/preflight.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ductstream/base/status.h"

namespace ductstream::postgres {

absl::StatusOr<SourceReport> CheckSource(absl::string_view conninfo) {
  DS_ASSIGN_OR_RETURN(auto conn, Connection::Connect(conninfo));
  SourceReport report;
  DS_ASSIGN_OR_RETURN(
      Result r,
      conn->Exec("SELECT version(), current_setting('server_version_num'), "
                 "current_setting('wal_level'), current_setting('max_replication_slots'), "
                 "(SELECT count(*) FROM pg_replication_slots), "
                 "current_setting('max_wal_senders'), "
                 "(SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user)"));
  report.version = std::string(GetValue(r, 0, 0).value_or(""));
  auto to_int = [](std::optional<absl::string_view> v) {
    int out = 0;
    return absl::SimpleAtoi(v.value_or(""), &out) ? out : 0;
  };
  report.server_version_num = to_int(GetValue(r, 0, 1));
  report.wal_level = std::string(GetValue(r, 0, 2).value_or(""));
  report.max_replication_slots = to_int(GetValue(r, 0, 3));
  report.used_replication_slots = to_int(GetValue(r, 0, 4));
  report.max_wal_senders = to_int(GetValue(r, 0, 5));
  report.can_replicate = GetValue(r, 0, 6).value_or("f") == "t";

  if (report.server_version_num < 100000) {
    report.problems.push_back("PostgreSQL 10 or newer is required for pgoutput");
  }
  if (report.wal_level != "logical") {
    report.problems.push_back(absl::StrCat("wal_level is '", report.wal_level,
                                           "': set wal_level = logical and restart the server"));
  }
  if (report.used_replication_slots >= report.max_replication_slots) {
    report.problems.push_back(absl::StrCat("all ", report.max_replication_slots,
                                           " replication slots are in use: raise "
                                           "max_replication_slots or drop an unused slot"));
  }
  if (report.max_wal_senders == 0) {
    report.problems.push_back("max_wal_senders is 0: raise it and restart the server");
  }
  if (!report.can_replicate) {
    report.problems.push_back(
        "the connecting role lacks REPLICATION: ALTER ROLE <role> WITH REPLICATION");
  }

  if (report.problems.empty()) {
    DS_ASSIGN_OR_RETURN(auto repl, Connection::Connect(conninfo, Connection::Mode::kReplication));
    DS_ASSIGN_OR_RETURN(report.identity, IdentifySystem(*repl));
  }
  return report;
}

}  // namespace ductstream::postgres
