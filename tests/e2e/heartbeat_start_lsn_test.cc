// ductstream-worker end to end: source heartbeats keep an idle flow's slot moving, and
// -start-lsn starts a flow at a chosen WAL position regardless of its stored checkpoint.

#include <gtest/gtest.h>
#include <signal.h>

#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/e2e/worker_e2e.h"

namespace ductstream::e2e {
namespace {

TEST_F(WorkerE2eTest, HeartbeatsMoveAnIdleFlowsSlotPastTheStartPosition) {
  Sql("CREATE TABLE quiet (id int PRIMARY KEY)");
  const std::string flow = WriteFlow({{"heartbeat_interval", "500ms"}});
  ASSERT_EQ(RunWorker(flow, 1), 0) << ReadFile(Log());  // creates the slot and publication
  // An observer slot on the same database decodes what the flow's slot decodes, including the
  // heartbeats (non-transactional logical messages), without consuming anything.
  const std::string observer = testing::PgSandbox::UniqueName("observer");
  slots_to_drop_.push_back(observer);
  Sql(absl::StrCat("SELECT pg_create_logical_replication_slot('", observer, "', 'pgoutput')"));
  const Lsn start = ValueLsn("SELECT pg_current_wal_insert_lsn()");
  ASSERT_LE(ConfirmedFlush(), start);

  auto heartbeats = [&] {
    std::vector<Lsn> lsns;
    auto r = sql_->Exec(absl::StrCat(
        "SELECT lsn FROM pg_logical_slot_peek_binary_changes('", observer,
        "', NULL, NULL, 'proto_version', '1', 'publication_names', 'e2e_pub', 'messages', "
        "'true') WHERE position('ductstream.heartbeat'::bytea IN data) > 0 ORDER BY lsn"));
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return lsns;
    for (int i = 0; i < postgres::RowCount(*r); ++i) {
      lsns.push_back(*Lsn::Parse(*postgres::GetValue(*r, i, 0)));
    }
    return lsns;
  };

  // Nothing is written to any published table while the worker runs.
  auto worker = Spawn(flow);
  ASSERT_NE(worker, nullptr);
  std::vector<Lsn> beats;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(250));
    beats = heartbeats();
    if (beats.size() >= 2 && ConfirmedFlush() > beats.front()) break;
  }
  worker->Signal(SIGTERM);
  EXPECT_EQ(worker->Wait(), 0) << ReadFile(Log());

  ASSERT_GE(beats.size(), 2u) << "the worker emitted no heartbeats\n" << ReadFile(Log());
  EXPECT_GT(beats.front(), start);
  const Lsn confirmed = ConfirmedFlush();
  EXPECT_GT(confirmed, start) << "an idle flow's slot must not stay at its start position";
  EXPECT_GT(confirmed, beats.front()) << "the flow acknowledges past its own heartbeats";
  EXPECT_TRUE(Changes("quiet").empty()) << "heartbeats are not change rows";
}

TEST_F(WorkerE2eTest, StartLsnSkipsEarlierCommitsAndOverridesTheCheckpoint) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, note text)");
  const std::string flow = WriteFlow();
  ASSERT_EQ(RunWorker(flow, 1), 0) << ReadFile(Log());
  Sql("INSERT INTO t VALUES (1, 'early'), (2, 'early')");
  ASSERT_EQ(RunWorker(flow), 0) << ReadFile(Log());  // delivered and checkpointed
  const Lsn checkpointed = ConfirmedFlush();         // acknowledged = the stored checkpoint

  // Committed after the stored checkpoint, but before the position the next run is given (the
  // insert position: the sandbox commits asynchronously, so the write position may lag).
  Sql("INSERT INTO t VALUES (10, 'skipped')");
  Sql("INSERT INTO t VALUES (11, 'skipped')");
  const Lsn start = ValueLsn("SELECT pg_current_wal_insert_lsn()");
  ASSERT_GT(start, checkpointed);
  Sql("INSERT INTO t VALUES (20, 'after'), (21, 'after')");
  ASSERT_EQ(RunWorker(flow, 3, {"-start-lsn", start.ToString()}), 0) << ReadFile(Log());
  EXPECT_TRUE(absl::StrContains(
      ReadFile(Log()),
      absl::StrCat("starting at ", start.ToString(), " (start_lsn overrides the checkpoint)")))
      << ReadFile(Log());

  auto inserted = [&] {
    std::vector<std::string> rows;
    for (const auto& row : Changes("t")) {
      if (row["__op"] == "insert") {
        rows.push_back(absl::StrCat(row["id"].get<int>(), ":", row["note"].get<std::string>()));
      }
    }
    return rows;
  };
  EXPECT_EQ(inserted(), (std::vector<std::string>{"1:early", "2:early", "20:after", "21:after"}));
  EXPECT_GE(ConfirmedFlush(), start);

  // The run from -start-lsn left its own checkpoint: a plain restart continues from there and
  // never goes back for the skipped commits.
  Sql("INSERT INTO t VALUES (30, 'later')");
  ASSERT_EQ(RunWorker(flow), 0) << ReadFile(Log());
  EXPECT_EQ(inserted(),
            (std::vector<std::string>{"1:early", "2:early", "20:after", "21:after", "30:later"}));
}

}  // namespace
}  // namespace ductstream::e2e
