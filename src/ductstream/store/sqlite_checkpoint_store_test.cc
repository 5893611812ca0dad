#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "ductstream/store/checkpoint_store.h"

namespace ductstream::store {
namespace {

class SqliteCheckpointStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ds-store-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    path_ = (dir_ / "nested" / "checkpoints.db").string();  // directories are created
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<CheckpointStore> OpenStore() {
    auto store = OpenSqliteCheckpointStore(path_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  static Checkpoint At(const char* lsn, int64_t generation = 1) {
    Checkpoint cp;
    cp.lsn = *Lsn::Parse(lsn);
    cp.generation = generation;
    return cp;
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(SqliteCheckpointStoreTest, PutGetAndPersistAcrossReopen) {
  {
    auto store = OpenStore();
    EXPECT_EQ(store->Get(FlowId("f1")).status().code(), absl::StatusCode::kNotFound);
    Checkpoint cp = At("1/ABC");
    cp.metadata["table"] = "public.orders";
    ASSERT_TRUE(store->Put(FlowId("f1"), cp).ok());
  }
  auto store = OpenStore();  // migrations are idempotent; data survives
  auto got = store->Get(FlowId("f1"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->lsn.ToString(), "1/ABC");
  EXPECT_EQ(got->generation, 1);
  EXPECT_EQ(got->metadata.at("table"), "public.orders");
  EXPECT_GT(got->updated_at_unix_millis, 0);
}

TEST_F(SqliteCheckpointStoreTest, CheckpointsOnlyMoveForward) {
  auto store = OpenStore();
  ASSERT_TRUE(store->Put(FlowId("f"), At("0/200")).ok());
  ASSERT_TRUE(store->Put(FlowId("f"), At("0/200")).ok());  // same position: idempotent
  absl::Status back = store->Put(FlowId("f"), At("0/1FF"));
  EXPECT_EQ(back.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(back.message().find("behind the stored 0/200"), absl::string_view::npos) << back;
  EXPECT_EQ(store->Get(FlowId("f"))->lsn.ToString(), "0/200");
  // Numeric, not textual, comparison: 10/0 is ahead of 9/FFFFFFFF.
  ASSERT_TRUE(store->Put(FlowId("f"), At("9/FFFFFFFF")).ok());
  ASSERT_TRUE(store->Put(FlowId("f"), At("10/0")).ok());
  // The operator override may rewind.
  ASSERT_TRUE(store->Put(FlowId("f"), At("0/10"), /*force=*/true).ok());
  EXPECT_EQ(store->Get(FlowId("f"))->lsn.ToString(), "0/10");
}

TEST_F(SqliteCheckpointStoreTest, StaleGenerationIsFenced) {
  auto store = OpenStore();
  ASSERT_TRUE(store->Put(FlowId("f"), At("0/100", /*generation=*/3)).ok());
  absl::Status stale = store->Put(FlowId("f"), At("0/900", /*generation=*/2));
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted);
  EXPECT_NE(stale.message().find("fenced"), absl::string_view::npos);
  EXPECT_EQ(store->Get(FlowId("f"))->lsn.ToString(), "0/100");
  ASSERT_TRUE(store->Put(FlowId("f"), At("0/900", /*generation=*/4)).ok());
  EXPECT_EQ(store->Get(FlowId("f"))->generation, 4);
}

TEST_F(SqliteCheckpointStoreTest, ListNewestFirst) {
  auto store = OpenStore();
  ASSERT_TRUE(store->Put(FlowId("old"), At("0/1")).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(store->Put(FlowId("new"), At("0/2")).ok());
  auto list = store->List();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].first.value(), "new");
  EXPECT_EQ((*list)[1].first.value(), "old");
}

TEST_F(SqliteCheckpointStoreTest, ConcurrentOpenersAndWritersAgree) {
  // Several stores (separate connections, as separate processes would have) migrate and write
  // the same file at once; the highest LSN wins and nothing errors except refused regressions.
  constexpr int kThreads = 4;
  constexpr int kWrites = 50;
  std::vector<std::thread> threads;
  std::atomic<int> unexpected{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto store = OpenSqliteCheckpointStore(path_);
      if (!store.ok()) {
        ++unexpected;
        return;
      }
      for (int i = 1; i <= kWrites; ++i) {
        Checkpoint cp;
        cp.lsn = Lsn(static_cast<uint64_t>(i * kThreads + t));
        cp.generation = 1;
        absl::Status s = (*store)->Put(FlowId("shared"), cp);
        if (!s.ok() && s.code() != absl::StatusCode::kFailedPrecondition) ++unexpected;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(unexpected.load(), 0);
  auto store = OpenStore();
  EXPECT_EQ(store->Get(FlowId("shared"))->lsn.value(),
            static_cast<uint64_t>(kWrites * kThreads + kThreads - 1));
}

TEST_F(SqliteCheckpointStoreTest, UnwritablePathIsAClearError) {
  auto store = OpenSqliteCheckpointStore("/proc/ductstream-cannot-write-here/x.db");
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("x.db"), absl::string_view::npos) << store.status();
}

}  // namespace
}  // namespace ductstream::store
