#pragma once

// Test access to a throwaway PostgreSQL cluster (scripts/pg-sandbox).
//
// Under ctest the `postgres` fixture starts one cluster for the whole run and every test binary
// attaches to it through its state file; a test binary run by hand starts its own cluster and
// stops it at exit. Tests isolate themselves with their own database, slot and publication
// (UniqueName, CreateDatabase), so many binaries can share one cluster at once.

#include <memory>
#include <string>
#include "absl/strings/string_view.h"

#include <gtest/gtest.h>

#include "absl/status/statusor.h"

namespace ductstream::testing {

/// Lifecycle: AttachOrStart → use → destruction stops the cluster if this object started it.
/// Thread-safe after construction (it only hands out strings and opens fresh connections).
class PgSandbox {
 public:
  /// Attaches to the cluster named by $DS_PG_SANDBOX (a state file written by
  /// `scripts/pg-sandbox start`), or by the build tree's default state file when its server is
  /// alive; otherwise starts a new cluster owned by this object.
  static absl::StatusOr<std::unique_ptr<PgSandbox>> AttachOrStart();
  ~PgSandbox();
  PgSandbox(const PgSandbox&) = delete;
  PgSandbox& operator=(const PgSandbox&) = delete;

  /// libpq conninfo for `dbname` on this cluster as the superuser.
  std::string Dsn(absl::string_view dbname = "postgres") const;
  const std::string& host() const { return host_; }
  int port() const { return port_; }

  /// A name unique across processes and calls, valid as a database, slot or publication name:
  /// "<prefix>_<pid>_<random per process>_<counter>", lower case, at most 63 bytes.
  static std::string UniqueName(absl::string_view prefix);

  /// Creates a fresh, empty database and returns its name.
  absl::StatusOr<std::string> CreateDatabase(absl::string_view prefix);

 private:
  PgSandbox(std::string state_file, bool owned)
      : state_file_(std::move(state_file)), owned_(owned) {}
  absl::Status Load();

  std::string state_file_;
  bool owned_;
  std::string host_;
  int port_ = 0;
  std::string user_;
};

/// The process-wide sandbox, attached or started on first use.
absl::StatusOr<PgSandbox*> SharedPgSandbox();

/// Base fixture for tests that need PostgreSQL. If the sandbox cannot be reached the test fails
/// with the reason; it is only skipped when DS_REQUIRE_SERVERS=0 is set explicitly (CI never
/// sets that, so a missing server can never turn a CI run green).
class PostgresTest : public ::testing::Test {
 protected:
  void SetUp() override;
  PgSandbox& pg() { return *pg_; }

 private:
  PgSandbox* pg_ = nullptr;
};

/// Source tree root and the project virtualenv's python (the independent reader).
std::string SourceDir();
std::string PythonBin();

}  // namespace ductstream::testing
