// The PostgreSQL checkpoint store against the sandbox server: the same contract as the SQLite
// store (sqlite_checkpoint_store_test.cc), plus concurrent migration by several openers, pg_lsn
// ordering across the 32-bit boundary, and selection from the environment.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "absl/strings/match.h"
#include "ductstream/postgres/connection.h"
#include "ductstream/store/checkpoint_store.h"
#include "ductstream/testing/pg_sandbox.h"

namespace ductstream::store {
namespace {

class PostgresCheckpointStoreTest : public testing::PostgresTest {
 protected:
  void SetUp() override {
    PostgresTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto db = pg().CreateDatabase("ckpt");
    ASSERT_TRUE(db.ok()) << db.status();
    dsn_ = pg().Dsn(*db);
  }

  std::unique_ptr<CheckpointStore> OpenStore() {
    auto store = OpenPostgresCheckpointStore(dsn_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  // Runs SQL on a separate connection, for inspecting what the store wrote.
  std::string Query(const std::string& sql) {
    auto conn = postgres::Connection::Connect(dsn_);
    EXPECT_TRUE(conn.ok()) << conn.status();
    if (!conn.ok()) return "";
    auto value = (*conn)->QueryValue(sql);
    EXPECT_TRUE(value.ok()) << value.status();
    return value.ok() ? *value : "";
  }

  static Checkpoint At(const char* lsn, int64_t generation = 1) {
    Checkpoint cp;
    cp.lsn = *Lsn::Parse(lsn);
    cp.generation = generation;
    return cp;
  }

  std::string dsn_;
};

TEST_F(PostgresCheckpointStoreTest, PutGetAndPersistAcrossReopen) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->Get(FlowId("f1")).status().code(), absl::StatusCode::kNotFound);
    Checkpoint cp = At("1/ABC");
    cp.metadata["table"] = "public.orders";
    cp.metadata["quote"] = "it's \"quoted\"";
    ASSERT_TRUE(store->Put(FlowId("f1"), cp).ok());
  }
  auto store = OpenStore();  // migrations are idempotent; data survives
  ASSERT_NE(store, nullptr);
  auto got = store->Get(FlowId("f1"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->lsn.ToString(), "1/ABC");
  EXPECT_EQ(got->generation, 1);
  EXPECT_EQ(got->metadata.at("table"), "public.orders");
  EXPECT_EQ(got->metadata.at("quote"), "it's \"quoted\"");
  EXPECT_GT(got->updated_at_unix_millis, 1'600'000'000'000);
  // The schema is the documented one: pg_lsn, JSONB, one recorded migration.
  EXPECT_EQ(Query("SELECT pg_typeof(lsn)::text FROM checkpoints LIMIT 1"), "pg_lsn");
  EXPECT_EQ(Query("SELECT metadata->>'table' FROM checkpoints WHERE flow_id = 'f1'"),
            "public.orders");
  EXPECT_EQ(Query("SELECT count(*) FROM ductstream_checkpoint_migrations"), "1");
  EXPECT_EQ(Query("SELECT count(*) FROM pg_indexes WHERE indexname = 'checkpoints_updated_at_idx'"),
            "1");
}

TEST_F(PostgresCheckpointStoreTest, CheckpointsOnlyMoveForward) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put(FlowId("f"), At("0/200")).ok());
  ASSERT_TRUE(store->Put(FlowId("f"), At("0/200")).ok());  // same position: idempotent
  absl::Status back = store->Put(FlowId("f"), At("0/1FF"));
  EXPECT_EQ(back.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(back.message().find("behind the stored 0/200"), absl::string_view::npos) << back;
  EXPECT_EQ(store->Get(FlowId("f"))->lsn.ToString(), "0/200");
  // The operator override may rewind.
  ASSERT_TRUE(store->Put(FlowId("f"), At("0/10"), /*force=*/true).ok());
  EXPECT_EQ(store->Get(FlowId("f"))->lsn.ToString(), "0/10");
}

TEST_F(PostgresCheckpointStoreTest, LsnsCompareNumericallyAcrossThe32BitBoundary) {
  // As text, "0/FFFFFFFF" > "1/0" and "9/FFFFFFFF" > "10/0"; as positions they are behind.
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put(FlowId("f"), At("0/FFFFFFFF")).ok());
  ASSERT_TRUE(store->Put(FlowId("f"), At("1/0")).ok());
  EXPECT_EQ(store->Get(FlowId("f"))->lsn.ToString(), "1/0");
  absl::Status back = store->Put(FlowId("f"), At("0/FFFFFFFF"));
  EXPECT_EQ(back.code(), absl::StatusCode::kFailedPrecondition) << back;
  ASSERT_TRUE(store->Put(FlowId("f"), At("9/FFFFFFFF")).ok());
  ASSERT_TRUE(store->Put(FlowId("f"), At("10/0")).ok());
  EXPECT_EQ(store->Put(FlowId("f"), At("9/FFFFFFFF")).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store->Put(FlowId("f"), At("FFFFFFFF/FFFFFFFF")).ok());
  EXPECT_EQ(store->Get(FlowId("f"))->lsn.value(), UINT64_MAX);
}

TEST_F(PostgresCheckpointStoreTest, StaleGenerationIsFenced) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put(FlowId("f"), At("0/100", /*generation=*/3)).ok());
  absl::Status stale = store->Put(FlowId("f"), At("0/900", /*generation=*/2));
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted);
  EXPECT_NE(stale.message().find("fenced"), absl::string_view::npos) << stale;
  EXPECT_EQ(store->Get(FlowId("f"))->lsn.ToString(), "0/100");
  // A stale generation with a lower LSN reports the fencing, which is what the worker must act on.
  EXPECT_EQ(store->Put(FlowId("f"), At("0/50", 2)).code(), absl::StatusCode::kAborted);
  // A newer generation moves on; force overrides the generation too.
  ASSERT_TRUE(store->Put(FlowId("f"), At("0/900", /*generation=*/4)).ok());
  EXPECT_EQ(store->Get(FlowId("f"))->generation, 4);
  ASSERT_TRUE(store->Put(FlowId("f"), At("0/1", /*generation=*/0), /*force=*/true).ok());
  EXPECT_EQ(store->Get(FlowId("f"))->generation, 0);
}

TEST_F(PostgresCheckpointStoreTest, ListNewestFirst) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto empty = store->List();
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->empty());
  ASSERT_TRUE(store->Put(FlowId("old"), At("0/1")).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(store->Put(FlowId("new"), At("0/2")).ok());
  auto list = store->List();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].first.value(), "new");
  EXPECT_EQ((*list)[0].second.lsn.ToString(), "0/2");
  EXPECT_EQ((*list)[1].first.value(), "old");
  EXPECT_GE((*list)[0].second.updated_at_unix_millis, (*list)[1].second.updated_at_unix_millis);
}

TEST_F(PostgresCheckpointStoreTest, ConcurrentOpenersMigrateOnce) {
  // Four processes' worth of connections open a fresh database at the same moment; the advisory
  // lock serialises the migrations so none of them fails and each version is recorded once.
  constexpr int kThreads = 4;
  std::atomic<int> ready{0};
  std::vector<absl::Status> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ++ready;
      while (ready.load() < kThreads) std::this_thread::yield();
      results[t] = OpenPostgresCheckpointStore(dsn_).status();
    });
  }
  for (auto& th : threads) th.join();
  for (const absl::Status& s : results) EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(Query("SELECT count(*) FROM ductstream_checkpoint_migrations"), "1");
}

TEST_F(PostgresCheckpointStoreTest, ConcurrentWritersAgree) {
  // Separate stores (connections) and threads sharing one store race on one flow: the highest
  // LSN wins and nothing errors except refused regressions.
  constexpr int kThreads = 4;
  constexpr int kWrites = 40;
  auto shared = OpenStore();
  ASSERT_NE(shared, nullptr);
  std::vector<std::thread> threads;
  std::atomic<int> unexpected{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::unique_ptr<CheckpointStore> own;
      CheckpointStore* store = shared.get();
      if (t % 2 == 0) {
        auto opened = OpenPostgresCheckpointStore(dsn_);
        if (!opened.ok()) {
          ++unexpected;
          return;
        }
        own = std::move(*opened);
        store = own.get();
      }
      for (int i = 1; i <= kWrites; ++i) {
        Checkpoint cp;
        cp.lsn = Lsn(static_cast<uint64_t>(i * kThreads + t));
        cp.generation = 1;
        absl::Status s = store->Put(FlowId("shared"), cp);
        if (!s.ok() && s.code() != absl::StatusCode::kFailedPrecondition) ++unexpected;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_EQ(shared->Get(FlowId("shared"))->lsn.value(),
            static_cast<uint64_t>(kWrites * kThreads + kThreads - 1));
}

TEST_F(PostgresCheckpointStoreTest, ReconnectsAfterTheConnectionIsKilled) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put(FlowId("f"), At("0/1")).ok());
  Query(
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
      "WHERE datname = current_database() AND pid <> pg_backend_pid()");
  // The first call may see the dead connection (retriable); the next one reconnects.
  absl::Status first = store->Put(FlowId("f"), At("0/2"));
  if (!first.ok()) {
    EXPECT_EQ(first.code(), absl::StatusCode::kUnavailable) << first;
    EXPECT_TRUE(absl::StrContains(first.message(), "checkpoint store")) << first;
    ASSERT_TRUE(store->Put(FlowId("f"), At("0/2")).ok());
  }
  EXPECT_EQ(store->Get(FlowId("f"))->lsn.ToString(), "0/2");
}

TEST_F(PostgresCheckpointStoreTest, UnreachableServerIsAClearError) {
  auto store = OpenPostgresCheckpointStore(
      "host=127.0.0.1 port=1 dbname=x user=u password=hunter2 connect_timeout=2");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable) << store.status();
  EXPECT_TRUE(absl::StrContains(store.status().message(), "checkpoint store")) << store.status();
  EXPECT_FALSE(absl::StrContains(store.status().message(), "hunter2")) << store.status();
}

TEST_F(PostgresCheckpointStoreTest, OpenFromEnvSelectsPostgres) {
  const std::string dsn = dsn_;
  EnvLookup env = [dsn](absl::string_view name) -> std::optional<std::string> {
    if (name == "DUCTSTREAM_POSTGRES_DSN") return dsn;
    if (name == "DUCTSTREAM_CHECKPOINT_BACKEND") return "postgres";
    return std::nullopt;
  };
  auto opened = OpenCheckpointStoreFromEnv(DefaultCheckpointBackend::kSqlite, env);
  ASSERT_TRUE(opened.ok()) << opened.status();
  ASSERT_NE(opened->store, nullptr);
  EXPECT_TRUE(absl::StartsWith(opened->description, "postgres ")) << opened->description;
  ASSERT_TRUE(opened->store->Put(FlowId("env"), At("2/0")).ok());
  EXPECT_EQ(Query("SELECT lsn::text FROM checkpoints WHERE flow_id = 'env'"), "2/0");
}

}  // namespace
}  // namespace ductstream::store
