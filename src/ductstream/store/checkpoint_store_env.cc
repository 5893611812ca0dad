// Checkpoint backend selection from the environment (SPEC §9.1).

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "ductstream/base/redact.h"
#include "ductstream/base/status.h"
#include "ductstream/store/checkpoint_store.h"

namespace ductstream::store {
namespace {

// An empty variable counts as unset, as it did in the Go implementation (os.Getenv cannot tell
// them apart) and as `VAR=` in a Kubernetes manifest means.
std::optional<std::string> NonEmpty(const EnvLookup& env, absl::string_view name) {
  std::optional<std::string> value = env(name);
  if (value.has_value() && absl::StripAsciiWhitespace(*value).empty()) return std::nullopt;
  return value;
}

// Accepts the SQLite URI forms users copy from other tools: "file:/x/y.db?mode=rwc" → "/x/y.db".
std::string SqlitePathFromDsn(absl::string_view dsn) {
  absl::ConsumePrefix(&dsn, "file:");
  if (const size_t q = dsn.find('?'); q != absl::string_view::npos) dsn = dsn.substr(0, q);
  return std::string(dsn);
}

absl::StatusOr<CheckpointStoreSelection> Sqlite(const EnvLookup& env) {
  CheckpointStoreSelection selection;
  selection.backend = CheckpointBackend::kSqlite;
  if (auto dsn = NonEmpty(env, "DUCTSTREAM_CHECKPOINT_DSN")) {
    selection.target = SqlitePathFromDsn(*dsn);
  } else if (auto path = NonEmpty(env, "DUCTSTREAM_CHECKPOINT_PATH")) {
    selection.target = *path;
  } else if (auto home = NonEmpty(env, "HOME")) {
    selection.target = absl::StrCat(absl::StripSuffix(*home, "/"), "/.ductstream/checkpoints.db");
  } else {
    return absl::InvalidArgumentError(
        "checkpoint store: sqlite needs a path, and HOME is not set for the default "
        "~/.ductstream/checkpoints.db; set DUCTSTREAM_CHECKPOINT_PATH");
  }
  if (selection.target.empty()) {
    return absl::InvalidArgumentError(
        "checkpoint store: DUCTSTREAM_CHECKPOINT_DSN names no file path");
  }
  selection.description = absl::StrCat("sqlite ", selection.target);
  return selection;
}

absl::StatusOr<CheckpointStoreSelection> Postgres(const EnvLookup& env) {
  auto dsn = NonEmpty(env, "DUCTSTREAM_POSTGRES_DSN");
  if (!dsn.has_value()) {
    return absl::InvalidArgumentError(
        "checkpoint store: DUCTSTREAM_CHECKPOINT_BACKEND=postgres requires DUCTSTREAM_POSTGRES_DSN "
        "(the control database)");
  }
  CheckpointStoreSelection selection;
  selection.backend = CheckpointBackend::kPostgres;
  selection.target = *dsn;
  selection.description = absl::StrCat("postgres ", base::RedactDsn(*dsn));
  return selection;
}

CheckpointStoreSelection None() {
  CheckpointStoreSelection selection;
  selection.description = "none";
  return selection;
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](absl::string_view name) -> std::optional<std::string> {
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

absl::StatusOr<CheckpointStoreSelection> SelectCheckpointBackend(
    const EnvLookup& env, DefaultCheckpointBackend default_backend) {
  if (auto backend = NonEmpty(env, "DUCTSTREAM_CHECKPOINT_BACKEND")) {
    const std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(*backend));
    if (name == "postgres") return Postgres(env);
    if (name == "sqlite") return Sqlite(env);
    if (name == "none") return None();
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint store: DUCTSTREAM_CHECKPOINT_BACKEND=\"", *backend,
                     "\" is not a backend (expected postgres, sqlite or none)"));
  }
  if (NonEmpty(env, "DUCTSTREAM_POSTGRES_DSN")) return Postgres(env);
  if (NonEmpty(env, "DUCTSTREAM_CHECKPOINT_DSN") || NonEmpty(env, "DUCTSTREAM_CHECKPOINT_PATH")) {
    return Sqlite(env);
  }
  switch (default_backend) {
    case DefaultCheckpointBackend::kSqlite:
      return Sqlite(env);
    case DefaultCheckpointBackend::kNone:
      break;
  }
  return None();
}

absl::StatusOr<OpenedCheckpointStore> OpenCheckpointStoreFromEnv(
    DefaultCheckpointBackend default_backend, const EnvLookup& env) {
  DS_ASSIGN_OR_RETURN(CheckpointStoreSelection selection,
                      SelectCheckpointBackend(env, default_backend));
  OpenedCheckpointStore opened;
  opened.description = selection.description;
  switch (selection.backend) {
    case CheckpointBackend::kNone:
      return opened;
    case CheckpointBackend::kSqlite: {
      DS_ASSIGN_OR_RETURN(opened.store, OpenSqliteCheckpointStore(selection.target));
      return opened;
    }
    case CheckpointBackend::kPostgres: {
      DS_ASSIGN_OR_RETURN(opened.store, OpenPostgresCheckpointStore(selection.target));
      return opened;
    }
  }
  return absl::InternalError("checkpoint store: unhandled backend");
}

}  // namespace ductstream::store
