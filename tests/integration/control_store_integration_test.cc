// The control store's contract on both backends (the embedded SQLite file and a PostgreSQL
// database): flows, validated transitions with generations and history, leases and fencing, and
// migrations by several openers at once.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ductstream/control/control_store.h"
#include "ductstream/testing/pg_sandbox.h"

namespace ductstream::control {
namespace {

using store::SqlDialect;

flow::FlowDefinition SampleFlow(const std::string& id) {
  flow::FlowDefinition f;
  f.id = id;
  f.name = "orders to files";
  f.wire_format = codec::WireFormat::kParquet;
  f.parallelism = 2;
  f.source = {"pg",
              "postgres",
              {{"dsn", "host=db user=u password=hunter2"}, {"slot", "s"}, {"publication", "p"}}};
  f.destinations = {{"files", "file", {{"path", "/tmp/out"}, {"format", "parquet"}}}};
  return f;
}

class ControlStoreTest : public testing::PostgresTest,
                         public ::testing::WithParamInterface<SqlDialect> {
 protected:
  void SetUp() override {
    if (GetParam() == SqlDialect::kPostgres) {
      PostgresTest::SetUp();
      if (IsSkipped() || HasFatalFailure()) return;
      auto db = pg().CreateDatabase("control");
      ASSERT_TRUE(db.ok()) << db.status();
      where_ = {SqlDialect::kPostgres, pg().Dsn(*db), "postgres"};
    } else {
      dir_ = std::filesystem::temp_directory_path() / testing::PgSandbox::UniqueName("ds_control");
      where_ = {SqlDialect::kSqlite, (dir_ / "state" / "control.db").string(), "sqlite"};
    }
    store_ = Open();
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<ControlStore> Open() {
    auto s = OpenControlStore(where_);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

  StateDatabase where_;
  std::filesystem::path dir_;
  std::unique_ptr<ControlStore> store_;
};

TEST_P(ControlStoreTest, CreateGetListUpdateDelete) {
  ASSERT_NE(store_, nullptr);
  auto created = store_->CreateFlow(SampleFlow("f1"));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->state, FlowState::kCreated);
  EXPECT_EQ(created->generation, 1);
  EXPECT_GT(created->created_at_unix_millis, 0);
  EXPECT_EQ(created->definition.name, "orders to files");
  EXPECT_EQ(created->definition.source.options.at("dsn"), "host=db user=u password=hunter2")
      << "the store keeps secrets: workers read them from here";
  EXPECT_EQ(created->definition.destinations.at(0).options.at("path"), "/tmp/out");
  EXPECT_EQ(created->definition.parallelism, 2);
  ASSERT_TRUE(created->definition.wire_format.has_value());

  EXPECT_EQ(store_->CreateFlow(SampleFlow("f1")).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->GetFlow("nope").status().code(), absl::StatusCode::kNotFound);

  for (int i = 2; i <= 5; ++i)
    ASSERT_TRUE(store_->CreateFlow(SampleFlow(absl::StrCat("f", i))).ok());
  // Paging: 2 + 2 + 1, in creation order, nothing repeated or skipped.
  std::vector<std::string> seen;
  std::optional<FlowCursor> cursor;
  for (int page = 0; page < 4; ++page) {
    auto flows = store_->ListFlows(cursor, 2);
    ASSERT_TRUE(flows.ok()) << flows.status();
    if (flows->empty()) break;
    for (const auto& f : *flows) seen.push_back(f.definition.id);
    cursor = FlowCursor{flows->back().created_at_unix_millis, flows->back().definition.id};
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"f1", "f2", "f3", "f4", "f5"}));

  flow::FlowDefinition changed = SampleFlow("f1");
  changed.name = "renamed";
  changed.destinations[0].options["path"] = "/tmp/other";
  auto updated = store_->UpdateFlow(changed);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->definition.name, "renamed");
  EXPECT_EQ(updated->definition.destinations[0].options.at("path"), "/tmp/other");
  EXPECT_EQ(updated->state, FlowState::kCreated);

  ASSERT_TRUE(store_->Transition("f1", FlowOp::kStart).ok());
  auto refused = store_->UpdateFlow(changed);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "running")) << refused.status();

  auto deleted = store_->DeleteFlow("f1");
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_TRUE(*deleted);
  EXPECT_FALSE(*store_->DeleteFlow("f1"));
  EXPECT_EQ(store_->GetFlow("f1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->ListEvents("f1")->empty()) << "history goes with the flow";
}

TEST_P(ControlStoreTest, TransitionsAreValidatedAndBumpTheGeneration) {
  ASSERT_NE(store_, nullptr);
  ASSERT_TRUE(store_->CreateFlow(SampleFlow("f")).ok());
  auto running = store_->Transition("f", FlowOp::kStart);
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_EQ(running->state, FlowState::kRunning);
  EXPECT_EQ(running->generation, 2);

  auto again = store_->Transition("f", FlowOp::kStart);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(again.status().message(), "is running")) << again.status();
  EXPECT_EQ(store_->GetFlow("f")->generation, 2) << "a refused transition changes nothing";

  EXPECT_EQ(store_->Transition("f", FlowOp::kPause)->state, FlowState::kPaused);
  EXPECT_EQ(store_->Transition("f", FlowOp::kResume)->state, FlowState::kRunning);
  auto failed = store_->Transition("f", FlowOp::kFail, "worker exited 1: slot is gone");
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_EQ(failed->state, FlowState::kFailed);
  EXPECT_EQ(failed->failure_reason, "worker exited 1: slot is gone");
  auto restarted = store_->Transition("f", FlowOp::kStart);
  EXPECT_EQ(restarted->failure_reason, "") << "the next transition clears the reason";
  EXPECT_EQ(store_->Transition("f", FlowOp::kStop)->state, FlowState::kStopping);
  auto stopped = store_->Transition("f", FlowOp::kFinishStop);
  EXPECT_EQ(stopped->state, FlowState::kStopped);
  EXPECT_EQ(stopped->generation, 8);

  auto events = store_->ListEvents("f");
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 8u);
  EXPECT_FALSE((*events)[0].from.has_value());
  EXPECT_EQ((*events)[0].reason, "create");
  EXPECT_EQ((*events)[1].from, FlowState::kCreated);
  EXPECT_EQ((*events)[1].to, FlowState::kRunning);
  EXPECT_EQ((*events)[4].reason, "worker exited 1: slot is gone");
  for (size_t i = 0; i < events->size(); ++i) EXPECT_EQ((*events)[i].generation, int64_t(i) + 1);

  EXPECT_EQ(store_->Transition("ghost", FlowOp::kStart).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_P(ControlStoreTest, LeasesFenceWorkers) {
  ASSERT_NE(store_, nullptr);
  ASSERT_TRUE(store_->CreateFlow(SampleFlow("f")).ok());
  auto not_running = store_->AcquireLease("f", 1, "w1", absl::Seconds(30));
  EXPECT_EQ(not_running.status().code(), absl::StatusCode::kFailedPrecondition);
  const int64_t gen = store_->Transition("f", FlowOp::kStart)->generation;

  EXPECT_EQ(store_->AcquireLease("f", gen - 1, "w1", absl::Seconds(30)).status().code(),
            absl::StatusCode::kFailedPrecondition)
      << "a worker started for an older generation is stale";
  auto first = store_->AcquireLease("f", gen, "w1", absl::Seconds(30));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_GT(first->token, 0);

  // A second worker cannot take a live lease; the message names the holder.
  auto second = store_->AcquireLease("f", gen, "w2", absl::Seconds(30));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(second.status().message(), "w1")) << second.status();
  EXPECT_TRUE(store_->RenewLease("f", *first, absl::Seconds(30)).ok());

  // An expired lease can be taken over, with a higher token; the old holder's renewal fails.
  ASSERT_TRUE(store_->RenewLease("f", *first, absl::Milliseconds(1)).ok());
  absl::SleepFor(absl::Milliseconds(20));
  auto lease = store_->GetLease("f");
  ASSERT_TRUE(lease.ok() && lease->has_value());
  EXPECT_TRUE((*lease)->expired);
  auto takeover = store_->AcquireLease("f", gen, "w2", absl::Seconds(30));
  ASSERT_TRUE(takeover.ok()) << takeover.status();
  EXPECT_GT(takeover->token, first->token);
  auto lost = store_->RenewLease("f", *first, absl::Seconds(30));
  EXPECT_EQ(lost.code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(absl::StrContains(lost.message(), "took it over")) << lost;

  // Pausing ends the lease: the holder's next renewal fails and names the state.
  ASSERT_TRUE(store_->Transition("f", FlowOp::kPause).ok());
  auto ended = store_->RenewLease("f", *takeover, absl::Seconds(30));
  EXPECT_EQ(ended.code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(absl::StrContains(ended.message(), "paused")) << ended;

  // Released leases are free at once.
  const int64_t gen2 = store_->Transition("f", FlowOp::kResume)->generation;
  auto third = store_->AcquireLease("f", gen2, "w3", absl::Seconds(30));
  ASSERT_TRUE(third.ok()) << third.status();
  ASSERT_TRUE(store_->ReleaseLease("f", *third).ok());
  EXPECT_FALSE(store_->GetLease("f")->has_value());
  EXPECT_TRUE(store_->AcquireLease("f", gen2, "w4", absl::Seconds(30)).ok());
}

TEST_P(ControlStoreTest, CheckpointFenceRefusesTheOldLeaseHolder) {
  ASSERT_NE(store_, nullptr);
  auto checkpoints = OpenCheckpointStore(where_);
  ASSERT_TRUE(checkpoints.ok()) << checkpoints.status();
  store::CheckpointStore& cps = **checkpoints;
  const FlowId flow("f");
  // Fencing a flow without a checkpoint creates one at 0/0 ("from the slot's position").
  ASSERT_TRUE(cps.Fence(flow, 1).ok());
  EXPECT_EQ(cps.Get(flow)->lsn, Lsn(0));
  store::Checkpoint cp;
  cp.lsn = *Lsn::Parse("0/100");
  cp.generation = 1;
  ASSERT_TRUE(cps.Put(flow, cp).ok());
  // A new holder (token 2) fences: the LSN stays, the old holder is refused.
  ASSERT_TRUE(cps.Fence(flow, 2).ok());
  auto stored = cps.Get(flow);
  EXPECT_EQ(stored->lsn, *Lsn::Parse("0/100"));
  EXPECT_EQ(stored->generation, 2);
  cp.lsn = *Lsn::Parse("0/200");
  EXPECT_EQ(cps.Put(flow, cp).code(), absl::StatusCode::kAborted);
  cp.generation = 2;
  EXPECT_TRUE(cps.Put(flow, cp).ok());
  // Fencing never lowers the generation.
  ASSERT_TRUE(cps.Fence(flow, 1).ok());
  EXPECT_EQ(cps.Get(flow)->generation, 2);
}

TEST_P(ControlStoreTest, ConcurrentOpenersAndLeaseRaces) {
  ASSERT_NE(store_, nullptr);
  store_.reset();
  // Fresh openers migrate concurrently (the first test's store already migrated this database in
  // SetUp; use a new one for PostgreSQL to exercise the race).
  if (GetParam() == SqlDialect::kPostgres) {
    auto db = pg().CreateDatabase("control_race");
    ASSERT_TRUE(db.ok());
    where_.target = pg().Dsn(*db);
  } else {
    where_.target = (dir_ / "race.db").string();
  }
  std::vector<std::unique_ptr<ControlStore>> stores(4);
  std::vector<std::thread> threads;
  std::atomic<int> opened{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto s = OpenControlStore(where_);
      if (s.ok()) {
        stores[i] = std::move(*s);
        ++opened;
      } else {
        ADD_FAILURE() << s.status();
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(opened.load(), 4);
  ASSERT_TRUE(stores[0]->CreateFlow(SampleFlow("f")).ok());
  const int64_t gen = stores[0]->Transition("f", FlowOp::kStart)->generation;
  // Four workers race for one lease: exactly one wins.
  threads.clear();
  std::atomic<int> winners{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto lease = stores[i]->AcquireLease("f", gen, absl::StrCat("w", i), absl::Seconds(30));
      if (lease.ok()) {
        ++winners;
      } else {
        EXPECT_EQ(lease.status().code(), absl::StatusCode::kUnavailable) << lease.status();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(winners.load(), 1);
}

INSTANTIATE_TEST_SUITE_P(Backends, ControlStoreTest,
                         ::testing::Values(SqlDialect::kSqlite, SqlDialect::kPostgres),
                         [](const auto& info) {
                           return info.param == SqlDialect::kSqlite ? "Sqlite" : "Postgres";
                         });

}  // namespace
}  // namespace ductstream::control
