// The pgstream store's contract against a real PostgreSQL (SPEC.md §12, docs/streams.md):
// disjoint claims under concurrent consumers, redelivery after the visibility timeout, consumer
// groups that each see everything (also when they start late), replay by LSN (compared as pg_lsn)
// and by time, idempotent appends and pruning.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "ductstream/streams/stream_store.h"
#include "ductstream/testing/pg_sandbox.h"

namespace ductstream::streams {
namespace {

std::vector<NewEvent> MakeEvents(int n, uint64_t first_lsn, uint64_t lsn_step = 0x10) {
  std::vector<NewEvent> out;
  for (int i = 0; i < n; ++i) {
    NewEvent e;
    e.namespace_name = "public";
    e.table_name = "orders";
    e.lsn = Lsn(first_lsn + i * lsn_step);
    e.commit_lsn = Lsn(first_lsn + i * lsn_step);
    e.seq = i;
    e.wire_format = "json";
    // Bytes that a text round trip would damage.
    e.payload = absl::StrCat("{\"i\":", i, "}", std::string("\0\xff\n", 3));
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<int64_t> Ids(const std::vector<StreamMessage>& messages) {
  std::vector<int64_t> ids;
  for (const StreamMessage& m : messages) ids.push_back(m.id);
  return ids;
}

class StreamStoreTest : public testing::PostgresTest {
 protected:
  void SetUp() override {
    PostgresTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto db = pg().CreateDatabase("streams");
    ASSERT_TRUE(db.ok()) << db.status();
    dsn_ = pg().Dsn(*db);
    store_ = Open();
    ASSERT_NE(store_, nullptr);
  }

  std::unique_ptr<StreamStore> Open() {
    auto s = StreamStore::Open(dsn_);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

  std::vector<StreamMessage> Pull(StreamStore& store, const std::string& group, int max,
                                  absl::Duration visibility = absl::Seconds(60),
                                  const std::string& stream = "orders") {
    PullRequest r;
    r.stream = stream;
    r.group = group;
    r.max_messages = max;
    r.visibility = visibility;
    r.consumer_id = "test";
    auto got = store.Pull(r);
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? *got : std::vector<StreamMessage>{};
  }

  // Pulls and acks until the group has nothing left; returns every id it received, in order.
  std::vector<int64_t> Drain(StreamStore& store, const std::string& group) {
    std::vector<int64_t> all;
    for (;;) {
      auto batch = Pull(store, group, 50);
      if (batch.empty()) return all;
      const auto ids = Ids(batch);
      auto acked = store.Ack("orders", group, ids);
      EXPECT_TRUE(acked.ok()) << acked.status();
      EXPECT_EQ(*acked, static_cast<int64_t>(ids.size()));
      all.insert(all.end(), ids.begin(), ids.end());
    }
  }

  int64_t Count(const std::string& sql) {
    auto db = store::OpenPostgresDatabase(dsn_);
    EXPECT_TRUE(db.ok()) << db.status();
    auto rows = (*db)->Query(sql);
    EXPECT_TRUE(rows.ok()) << rows.status();
    return std::stoll(rows->at(0).at(0).value_or("-1"));
  }

  std::string dsn_;
  std::unique_ptr<StreamStore> store_;
};

TEST_F(StreamStoreTest, PullReturnsEventsInOrderWithTheirBytes) {
  const auto events = MakeEvents(5, 0x1000000);
  ASSERT_EQ(*store_->Append("orders", "flow-1", events), 5);
  auto got = Pull(*store_, "g", 10);
  ASSERT_EQ(got.size(), 5u);
  for (size_t i = 0; i < got.size(); ++i) {
    if (i > 0) {
      EXPECT_LT(got[i - 1].id, got[i].id);
    }
    EXPECT_EQ(got[i].stream, "orders");
    EXPECT_EQ(got[i].namespace_name, "public");
    EXPECT_EQ(got[i].table_name, "orders");
    EXPECT_EQ(got[i].lsn, events[i].lsn.ToString());
    EXPECT_EQ(got[i].wire_format, "json");
    EXPECT_EQ(got[i].payload, events[i].payload);
    EXPECT_EQ(got[i].attempts, 1);
    EXPECT_LT(absl::AbsDuration(absl::Now() - got[i].created_at), absl::Minutes(1));
  }
  // Claimed: nothing more for the group until they are acked or time out.
  EXPECT_TRUE(Pull(*store_, "g", 10).empty());
  EXPECT_EQ(*store_->Ack("orders", "g", Ids(got)), 5);
  // Acking again counts nothing; neither does acking ids the group never claimed.
  EXPECT_EQ(*store_->Ack("orders", "g", Ids(got)), 0);
  EXPECT_EQ(*store_->Ack("orders", "g", std::vector<int64_t>{999999}), 0);
  EXPECT_EQ(*store_->Ack("orders", "g", std::vector<int64_t>{}), 0);
  EXPECT_TRUE(Pull(*store_, "g", 10).empty());
}

TEST_F(StreamStoreTest, StreamAndGroupAreRequired) {
  PullRequest r;
  r.group = "g";
  EXPECT_EQ(store_->Pull(r).status().code(), absl::StatusCode::kInvalidArgument);
  r.stream = "orders";
  r.group = "";
  EXPECT_EQ(store_->Pull(r).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Ack("", "g", std::vector<int64_t>{1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Replay("orders", "", std::nullopt, std::nullopt).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(StreamStoreTest, ConsumersOfOneGroupNeverHoldTheSameMessage) {
  constexpr int kEvents = 1500;
  constexpr int kConsumers = 4;
  ASSERT_EQ(*store_->Append("orders", "flow-1", MakeEvents(kEvents, 0x1000000)), kEvents);
  // Registers the group before the race, so every consumer claims from the same deliveries.
  ASSERT_TRUE(store_->Replay("orders", "workers", std::nullopt, std::nullopt).ok());

  absl::Mutex mu;
  std::set<int64_t> held;      // claimed and not yet acked, by anyone
  std::set<int64_t> received;  // everything ever claimed
  std::atomic<int> overlaps{0};
  std::atomic<int> duplicates{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      auto store = Open();
      ASSERT_NE(store, nullptr);
      for (int empty = 0; empty < 3;) {
        PullRequest r;
        r.stream = "orders";
        r.group = "workers";
        r.max_messages = 7;
        r.visibility = absl::Seconds(120);
        r.consumer_id = absl::StrCat("consumer-", c);
        auto got = store->Pull(r);
        ASSERT_TRUE(got.ok()) << got.status();
        if (got->empty()) {
          ++empty;
          continue;
        }
        empty = 0;
        {
          absl::MutexLock lock(&mu);
          for (const StreamMessage& m : *got) {
            if (!held.insert(m.id).second) ++overlaps;
            if (!received.insert(m.id).second) ++duplicates;
          }
        }
        std::this_thread::yield();
        {
          // Released before the ack: another consumer may only get them after that anyway.
          absl::MutexLock lock(&mu);
          for (const StreamMessage& m : *got) held.erase(m.id);
        }
        auto acked = store->Ack("orders", "workers", Ids(*got));
        ASSERT_TRUE(acked.ok()) << acked.status();
        EXPECT_EQ(*acked, static_cast<int64_t>(got->size()));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(duplicates.load(), 0);
  EXPECT_EQ(received.size(), static_cast<size_t>(kEvents));
  EXPECT_EQ(Count("SELECT count(*) FROM stream_deliveries WHERE consumer_group = 'workers' AND "
                  "status = 'acked'"),
            kEvents);
}

TEST_F(StreamStoreTest, UnackedMessagesComeBackAfterTheVisibilityTimeout) {
  ASSERT_EQ(*store_->Append("orders", "flow-1", MakeEvents(6, 0x1000000)), 6);
  // A consumer claims three and dies without acking.
  auto first = Pull(*store_, "g", 3, absl::Milliseconds(800));
  ASSERT_EQ(first.size(), 3u);
  // Meanwhile another consumer gets only the other three.
  auto other_store = Open();
  auto second = Pull(*other_store, "g", 10, absl::Seconds(60));
  ASSERT_EQ(second.size(), 3u);
  for (const auto& m : second) {
    for (const auto& f : first) EXPECT_NE(m.id, f.id);
  }
  EXPECT_TRUE(Pull(*other_store, "g", 10).empty());
  absl::SleepFor(absl::Milliseconds(1200));
  auto again = Pull(*other_store, "g", 10, absl::Seconds(60));
  EXPECT_EQ(Ids(again), Ids(first));
  for (const auto& m : again) EXPECT_EQ(m.attempts, 2);
  // The late ack of the dead consumer's claim still counts once (it was processed).
  EXPECT_EQ(*other_store->Ack("orders", "g", Ids(again)), 3);
  EXPECT_EQ(*other_store->Ack("orders", "g", Ids(second)), 3);
  absl::SleepFor(absl::Milliseconds(900));
  EXPECT_TRUE(Pull(*store_, "g", 10).empty());
}

TEST_F(StreamStoreTest, EveryGroupReceivesEverythingIncludingLateGroups) {
  ASSERT_EQ(*store_->Append("orders", "flow-1", MakeEvents(40, 0x1000000)), 40);
  const auto search_first = Drain(*store_, "search");
  ASSERT_EQ(search_first.size(), 40u);
  ASSERT_EQ(*store_->Append("orders", "flow-1", MakeEvents(10, 0x2000000)), 10);
  // A group whose first pull comes after 50 events exist gets all 50.
  const auto audit = Drain(*store_, "audit");
  EXPECT_EQ(audit.size(), 50u);
  const auto search_rest = Drain(*store_, "search");
  EXPECT_EQ(search_rest.size(), 10u);
  std::set<int64_t> search(search_first.begin(), search_first.end());
  search.insert(search_rest.begin(), search_rest.end());
  EXPECT_EQ(search, std::set<int64_t>(audit.begin(), audit.end()));
  // Another stream in the same tables is separate.
  EXPECT_TRUE(Pull(*store_, "search", 10, absl::Seconds(60), "payments").empty());
}

TEST_F(StreamStoreTest, ReplayFromAnLsnComparesPositionsNotText) {
  // 0/9000000 < 0/10000000 as positions, but not as text.
  std::vector<NewEvent> events = MakeEvents(3, 0x9000000, 0x100);
  auto high = MakeEvents(3, 0x10000000, 0x100);
  for (auto& e : high) e.seq += 100;
  events.insert(events.end(), high.begin(), high.end());
  ASSERT_EQ(*store_->Append("orders", "flow-1", events), 6);
  ASSERT_EQ(Drain(*store_, "g").size(), 6u);

  auto reset = store_->Replay("orders", "g", Lsn(0x10000000), std::nullopt);
  ASSERT_TRUE(reset.ok()) << reset.status();
  EXPECT_EQ(*reset, 3);
  auto again = Pull(*store_, "g", 10);
  ASSERT_EQ(again.size(), 3u);
  for (const auto& m : again) EXPECT_EQ(Lsn::Parse(m.lsn)->value() >= 0x10000000, true) << m.lsn;
  EXPECT_EQ(*store_->Ack("orders", "g", Ids(again)), 3);
  // Replaying from an LSN below everything resets all six; other groups are untouched.
  EXPECT_EQ(*store_->Replay("orders", "g", Lsn(0x100), std::nullopt), 6);
  EXPECT_EQ(Drain(*store_, "g").size(), 6u);
  EXPECT_EQ(*store_->Replay("orders", "g", Lsn(0x20000000), std::nullopt), 0);
}

TEST_F(StreamStoreTest, ReplaySinceATime) {
  ASSERT_EQ(*store_->Append("orders", "flow-1", MakeEvents(4, 0x1000000)), 4);
  absl::SleepFor(absl::Milliseconds(50));
  const absl::Time cut = absl::Now();
  absl::SleepFor(absl::Milliseconds(50));
  ASSERT_EQ(*store_->Append("orders", "flow-1", MakeEvents(2, 0x2000000)), 2);
  const auto all = Drain(*store_, "g");
  ASSERT_EQ(all.size(), 6u);
  EXPECT_EQ(*store_->Replay("orders", "g", std::nullopt, cut), 2);
  auto again = Pull(*store_, "g", 10);
  EXPECT_EQ(Ids(again), std::vector<int64_t>(all.end() - 2, all.end()));
  // Both filters: events after the cut and at or after 0/2000010; claimed ones are reset too.
  EXPECT_EQ(*store_->Replay("orders", "g", Lsn(0x2000010), cut), 1);
  EXPECT_EQ(Ids(Pull(*store_, "g", 10)), std::vector<int64_t>{all.back()});
}

TEST_F(StreamStoreTest, AppendingABatchAgainAddsNothing) {
  const auto events = MakeEvents(700, 0x1000000);  // more than one INSERT statement
  ASSERT_EQ(*store_->Append("orders", "flow-1", events), 700);
  ASSERT_EQ(Drain(*store_, "g").size(), 700u);
  // The worker crashed after the commit and before its checkpoint: the batch comes again,
  // overlapping with new changes.
  auto replayed = std::vector<NewEvent>(events.end() - 100, events.end());
  auto fresh = MakeEvents(5, 0x5000000);
  replayed.insert(replayed.end(), fresh.begin(), fresh.end());
  EXPECT_EQ(*store_->Append("orders", "flow-1", replayed), 5);
  EXPECT_EQ(Count("SELECT count(*) FROM stream_events"), 705);
  EXPECT_EQ(Drain(*store_, "g").size(), 5u);
  // The same identities from another flow are other events.
  EXPECT_EQ(*store_->Append("orders", "flow-2", fresh), 5);
}

TEST_F(StreamStoreTest, PruneDeletesOnlyWhatEveryGroupAcked) {
  ASSERT_EQ(*store_->Append("orders", "flow-1", MakeEvents(10, 0x1000000)), 10);
  // No group yet: nothing is pruned, a first consumer still gets the history.
  EXPECT_EQ(*store_->Prune("orders", absl::ZeroDuration()), 0);
  ASSERT_EQ(Drain(*store_, "a").size(), 10u);
  auto b = Pull(*store_, "b", 4);
  ASSERT_EQ(b.size(), 4u);
  ASSERT_EQ(*store_->Ack("orders", "b", Ids(b)), 4);
  // Retention not reached yet.
  EXPECT_EQ(*store_->Prune("orders", absl::Hours(1)), 0);
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(*store_->Prune("orders", absl::Milliseconds(10)), 4);
  EXPECT_EQ(Count("SELECT count(*) FROM stream_events"), 6);
  EXPECT_EQ(Count("SELECT count(*) FROM stream_deliveries"), 12);
  EXPECT_EQ(Drain(*store_, "b").size(), 6u);
}

TEST_F(StreamStoreTest, SeveralOpenersMigrateOnce) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      if (!StreamStore::Open(dsn_).ok()) ++failures;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM ductstream_stream_migrations"), 1);
}

}  // namespace
}  // namespace ductstream::streams
