#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "ductstream/store/checkpoint_store.h"

namespace ductstream::store {
namespace {

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](absl::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

CheckpointStoreSelection Select(
    std::map<std::string, std::string> vars,
    DefaultCheckpointBackend fallback = DefaultCheckpointBackend::kNone) {
  auto selection = SelectCheckpointBackend(FakeEnv(std::move(vars)), fallback);
  EXPECT_TRUE(selection.ok()) << selection.status();
  return selection.ok() ? *selection : CheckpointStoreSelection{};
}

TEST(CheckpointBackendSelectionTest, ExplicitPostgresRedactsThePassword) {
  auto s = Select({{"DUCTSTREAM_CHECKPOINT_BACKEND", "Postgres"},
                   {"DUCTSTREAM_POSTGRES_DSN", "host=db user=u password=hunter2"},
                   {"DUCTSTREAM_CHECKPOINT_PATH", "/ignored.db"}});
  EXPECT_EQ(s.backend, CheckpointBackend::kPostgres);
  EXPECT_EQ(s.target, "host=db user=u password=hunter2");
  EXPECT_EQ(s.description, "postgres host=db user=u password=*****");
}

TEST(CheckpointBackendSelectionTest, ExplicitPostgresWithoutDsnIsAClearError) {
  auto s = SelectCheckpointBackend(FakeEnv({{"DUCTSTREAM_CHECKPOINT_BACKEND", "postgres"}}),
                                   DefaultCheckpointBackend::kSqlite);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("requires DUCTSTREAM_POSTGRES_DSN"), absl::string_view::npos)
      << s.status();
}

TEST(CheckpointBackendSelectionTest, ExplicitSqlitePathPrecedence) {
  // DSN (with file: prefix and query stripped) beats PATH, which beats the home default.
  auto s = Select({{"DUCTSTREAM_CHECKPOINT_BACKEND", "sqlite"},
                   {"DUCTSTREAM_CHECKPOINT_DSN", "file:/data/cp.db?_journal=WAL&mode=rwc"},
                   {"DUCTSTREAM_CHECKPOINT_PATH", "/other.db"},
                   {"DUCTSTREAM_POSTGRES_DSN", "host=db"}});
  EXPECT_EQ(s.backend, CheckpointBackend::kSqlite);
  EXPECT_EQ(s.target, "/data/cp.db");
  EXPECT_EQ(s.description, "sqlite /data/cp.db");

  s = Select({{"DUCTSTREAM_CHECKPOINT_BACKEND", "SQLITE"},
              {"DUCTSTREAM_CHECKPOINT_PATH", "/other.db"},
              {"HOME", "/home/u"}});
  EXPECT_EQ(s.target, "/other.db");

  s = Select({{"DUCTSTREAM_CHECKPOINT_BACKEND", "sqlite"}, {"HOME", "/home/u/"}});
  EXPECT_EQ(s.target, "/home/u/.ductstream/checkpoints.db");

  s = Select(
      {{"DUCTSTREAM_CHECKPOINT_BACKEND", "sqlite"}, {"DUCTSTREAM_CHECKPOINT_DSN", ":memory:"}});
  EXPECT_EQ(s.target, ":memory:");
}

TEST(CheckpointBackendSelectionTest, SqliteWithoutAnyPathOrHomeIsAnError) {
  auto s = SelectCheckpointBackend(FakeEnv({{"DUCTSTREAM_CHECKPOINT_BACKEND", "sqlite"}}),
                                   DefaultCheckpointBackend::kNone);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("DUCTSTREAM_CHECKPOINT_PATH"), absl::string_view::npos);
}

TEST(CheckpointBackendSelectionTest, ExplicitNoneWinsOverEverything) {
  auto s = Select({{"DUCTSTREAM_CHECKPOINT_BACKEND", "none"},
                   {"DUCTSTREAM_POSTGRES_DSN", "host=db"},
                   {"DUCTSTREAM_CHECKPOINT_PATH", "/x.db"}},
                  DefaultCheckpointBackend::kSqlite);
  EXPECT_EQ(s.backend, CheckpointBackend::kNone);
  EXPECT_EQ(s.description, "none");
}

TEST(CheckpointBackendSelectionTest, UnknownBackendListsTheValidOnes) {
  auto s = SelectCheckpointBackend(FakeEnv({{"DUCTSTREAM_CHECKPOINT_BACKEND", "redis"}}),
                                   DefaultCheckpointBackend::kNone);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("\"redis\""), absl::string_view::npos);
  EXPECT_NE(s.status().message().find("postgres, sqlite or none"), absl::string_view::npos);
}

TEST(CheckpointBackendSelectionTest, AutoSelection) {
  // Control DSN → postgres, even when a SQLite path is also configured.
  EXPECT_EQ(
      Select({{"DUCTSTREAM_POSTGRES_DSN", "host=db"}, {"DUCTSTREAM_CHECKPOINT_PATH", "/x.db"}})
          .backend,
      CheckpointBackend::kPostgres);
  // An empty backend variable counts as unset.
  EXPECT_EQ(Select({{"DUCTSTREAM_CHECKPOINT_BACKEND", ""}, {"DUCTSTREAM_CHECKPOINT_PATH", "/x.db"}})
                .target,
            "/x.db");
  EXPECT_EQ(Select({{"DUCTSTREAM_CHECKPOINT_DSN", "file:/y.db"}}).target, "/y.db");
  EXPECT_EQ(Select({{"DUCTSTREAM_POSTGRES_DSN", ""}, {"HOME", "/h"}}).backend,
            CheckpointBackend::kNone);
  // Nothing configured: the caller's default.
  EXPECT_EQ(Select({{"HOME", "/h"}}, DefaultCheckpointBackend::kNone).backend,
            CheckpointBackend::kNone);
  auto worker = Select({{"HOME", "/h"}}, DefaultCheckpointBackend::kSqlite);
  EXPECT_EQ(worker.backend, CheckpointBackend::kSqlite);
  EXPECT_EQ(worker.target, "/h/.ductstream/checkpoints.db");
}

TEST(CheckpointBackendSelectionTest, OpenFromEnvOpensSqliteOrNothing) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("ds-store-env-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const std::string path = (dir / "cp.db").string();
  auto opened = OpenCheckpointStoreFromEnv(DefaultCheckpointBackend::kNone,
                                           FakeEnv({{"DUCTSTREAM_CHECKPOINT_PATH", path}}));
  ASSERT_TRUE(opened.ok()) << opened.status();
  ASSERT_NE(opened->store, nullptr);
  EXPECT_EQ(opened->description, "sqlite " + path);
  Checkpoint cp;
  cp.lsn = Lsn(42);
  EXPECT_TRUE(opened->store->Put(FlowId("f"), cp).ok());
  EXPECT_TRUE(std::filesystem::exists(path));

  auto none = OpenCheckpointStoreFromEnv(DefaultCheckpointBackend::kNone, FakeEnv({}));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->store, nullptr);
  EXPECT_EQ(none->description, "none");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ductstream::store
