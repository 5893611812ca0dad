#pragma once

// Pre-flight check of a source database: is it ready for logical replication?

#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "ductstream/postgres/connection.h"

namespace ductstream::postgres {

struct SourceReport {
  std::string version;         // "PostgreSQL 15.20 (Debian ...) on x86_64..."
  int server_version_num = 0;  // 150020
  std::string wal_level;       // must be "logical"
  int max_replication_slots = 0;
  int used_replication_slots = 0;
  int max_wal_senders = 0;
  bool can_replicate = false;  // rolreplication or superuser
  SystemIdentity identity;     // from IDENTIFY_SYSTEM on a replication connection
  /// What stands in the way of logical replication, each with what to do about it.
  std::vector<std::string> problems;
};

/// Connects to `conninfo` (normally and as a walsender) and inspects the server.
absl::StatusOr<SourceReport> CheckSource(absl::string_view conninfo);

}  // namespace ductstream::postgres
