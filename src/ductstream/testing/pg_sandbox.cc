#include "ductstream/testing/pg_sandbox.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ductstream/base/status.h"
#include "ductstream/postgres/connection.h"
#include "ductstream/testing/subprocess.h"

namespace ductstream::testing {
namespace {

std::string EnvOr(const char* name, absl::string_view fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? std::string(v) : std::string(fallback);
}

std::string SandboxScript() { return SourceDir() + "/scripts/pg-sandbox"; }

absl::StatusOr<absl::flat_hash_map<std::string, std::string>> ReadState(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("no sandbox state file at ", path));
  absl::flat_hash_map<std::string, std::string> kv;
  std::string line;
  while (std::getline(in, line)) {
    std::pair<std::string, std::string> p = absl::StrSplit(line, absl::MaxSplits('=', 1));
    if (!p.first.empty()) kv[p.first] = p.second;
  }
  return kv;
}

bool ServerAlive(const std::string& dsn) { return postgres::Connection::Connect(dsn).ok(); }

}  // namespace

std::string SourceDir() { return EnvOr("DS_SOURCE_DIR", DS_DEFAULT_SOURCE_DIR); }
std::string PythonBin() { return EnvOr("DS_PYTHON", DS_DEFAULT_PYTHON); }

absl::Status PgSandbox::Load() {
  DS_ASSIGN_OR_RETURN(auto kv, ReadState(state_file_));
  host_ = kv["PGHOST"];
  user_ = kv["PGUSER"].empty() ? "postgres" : kv["PGUSER"];
  if (host_.empty() || !absl::SimpleAtoi(kv["PGPORT"], &port_)) {
    return absl::InvalidArgumentError(absl::StrCat("malformed sandbox state file ", state_file_));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<PgSandbox>> PgSandbox::AttachOrStart() {
  // 1. An explicit state file (ctest's `postgres` fixture sets none; scripts may).
  // 2. The build tree's fixture state file, if its server answers.
  for (const std::string& candidate :
       {EnvOr("DS_PG_SANDBOX", ""), std::string(DS_DEFAULT_PG_SANDBOX_STATE)}) {
    if (candidate.empty() || access(candidate.c_str(), R_OK) != 0) continue;
    std::unique_ptr<PgSandbox> sandbox(new PgSandbox(candidate, /*owned=*/false));
    if (sandbox->Load().ok() && ServerAlive(sandbox->Dsn())) return sandbox;
  }
  // 3. Start one of our own.
  std::string state = absl::StrCat(EnvOr("TMPDIR", "/tmp"), "/ds-pg-test-", getpid(), ".state");
  auto started = RunCommand({SandboxScript(), "start", state});
  if (!started.ok()) return started.status();
  if (started->exit_code != 0) {
    return absl::UnavailableError(absl::StrCat("scripts/pg-sandbox start failed (exit ",
                                               started->exit_code, "): ", started->err));
  }
  std::unique_ptr<PgSandbox> sandbox(new PgSandbox(state, /*owned=*/true));
  DS_RETURN_IF_ERROR(sandbox->Load());
  return sandbox;
}

PgSandbox::~PgSandbox() {
  if (owned_) (void)RunCommand({SandboxScript(), "stop", state_file_});
}

std::string PgSandbox::Dsn(absl::string_view dbname) const {
  return absl::StrCat("host=", host_, " port=", port_, " user=", user_, " dbname=", dbname);
}

std::string PgSandbox::UniqueName(absl::string_view prefix) {
  static std::atomic<int> counter{0};
  // The pid alone repeats: pids are reused, and what an earlier test process left behind (its
  // checkpoint file under TempDir(), a slot in a sandbox kept with DS_PG_SANDBOX) must never be
  // picked up by a later one that got the same pid. A random token per process makes names
  // unique across runs too.
  static const uint32_t token = std::random_device{}();
  std::string name = absl::AsciiStrToLower(absl::StrCat(
      prefix, "_", getpid(), "_", absl::Hex(token, absl::kZeroPad8), "_", counter.fetch_add(1)));
  if (name.size() > 63) name = name.substr(name.size() - 63);
  return name;
}

absl::StatusOr<std::string> PgSandbox::CreateDatabase(absl::string_view prefix) {
  std::string name = UniqueName(prefix);
  DS_ASSIGN_OR_RETURN(auto conn, postgres::Connection::Connect(Dsn()));
  DS_RETURN_IF_ERROR(conn->Exec(absl::StrCat("CREATE DATABASE \"", name, "\"")).status());
  return name;
}

absl::StatusOr<PgSandbox*> SharedPgSandbox() {
  static std::once_flag once;
  static absl::StatusOr<std::unique_ptr<PgSandbox>>* shared = nullptr;
  std::call_once(once, [] {
    // Intentionally a static that is destroyed at exit, so an owned cluster gets stopped.
    static absl::StatusOr<std::unique_ptr<PgSandbox>> instance = PgSandbox::AttachOrStart();
    shared = &instance;
  });
  if (!shared->ok()) return shared->status();
  return shared->value().get();
}

void PostgresTest::SetUp() {
  auto sandbox = SharedPgSandbox();
  if (!sandbox.ok()) {
    if (EnvOr("DS_REQUIRE_SERVERS", "1") == "0") {
      GTEST_SKIP() << "PostgreSQL sandbox unavailable and DS_REQUIRE_SERVERS=0: "
                   << sandbox.status();
    }
    FAIL() << "PostgreSQL sandbox unavailable: " << sandbox.status();
  }
  pg_ = *sandbox;
}

}  // namespace ductstream::testing
