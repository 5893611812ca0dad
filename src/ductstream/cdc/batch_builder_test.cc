#include "ductstream/cdc/batch_builder.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace ductstream::cdc {
namespace {

namespace pgo = postgres::pgoutput;

// A restarted walsender may first report the slot's confirmed position, older than the
// checkpoint the flow resumes from: that must never become a checkpoint (the store refuses to
// move backwards and the flow would stop).
TEST(BatchBuilderTest, KeepalivesBehindTheStartPositionEmitNoCheckpoint) {
  std::vector<Lsn> checkpoints;
  BatchBuilder builder(
      BuilderOptions{}, [](Oid) { return absl::NotFoundError("no catalog"); },
      [&](ChangeBatch batch) {
        checkpoints.push_back(batch.checkpoint);
        return absl::OkStatus();
      });
  builder.StartAt(Lsn(1000));
  ASSERT_TRUE(builder.AdvanceIdle(Lsn(900)).ok());
  ASSERT_TRUE(builder.AdvanceIdle(Lsn(1000)).ok());
  EXPECT_TRUE(checkpoints.empty());
  ASSERT_TRUE(builder.AdvanceIdle(Lsn(1100)).ok());
  EXPECT_EQ(checkpoints, std::vector<Lsn>{Lsn(1100)});
  // A later StartAt at or behind what was seen (a reconnect) changes nothing.
  builder.StartAt(Lsn(1050));
  EXPECT_EQ(builder.committed(), Lsn(1100));
  EXPECT_FALSE(builder.has_pending());
}

// The batch that ends a burst carries the server's WAL position as its checkpoint, so the slot
// moves past the WAL after the last commit without waiting for an idle period; never from inside
// a transaction, and never backwards from the last commit.
TEST(BatchBuilderTest, FlushThroughCoversTheServersPositionOnlyBetweenTransactions) {
  std::vector<std::pair<int64_t, Lsn>> batches;  // rows, checkpoint
  BatchBuilder builder(BuilderOptions{}, nullptr, [&](ChangeBatch batch) {
    int64_t rows = 0;
    for (const auto& rel : batch.relations) rows += rel.num_rows();
    batches.emplace_back(rows, batch.checkpoint);
    return absl::OkStatus();
  });
  pgo::RelationMessage rel;
  rel.relation_id = Oid(16384);
  rel.schema = "public";
  rel.name = "t";
  rel.columns = {{true, "id", Oid(23), -1}};
  ASSERT_TRUE(builder.OnRelation(rel).ok());
  auto transaction = [&](uint64_t lsn, absl::string_view id, bool commit) {
    pgo::BeginMessage begin;
    begin.final_lsn = Lsn(lsn);
    ASSERT_TRUE(builder.OnBegin(begin).ok());
    pgo::InsertMessage insert;
    insert.relation_id = rel.relation_id;
    insert.new_tuple = {pgo::Cell{pgo::CellKind::kText, id}};
    ASSERT_TRUE(builder.OnInsert(insert).ok());
    if (!commit) return;
    pgo::CommitMessage c;
    c.commit_lsn = Lsn(lsn);
    c.end_lsn = Lsn(lsn + 8);
    ASSERT_TRUE(builder.OnCommit(c).ok());
  };
  transaction(100, "1", true);
  ASSERT_TRUE(builder.FlushThrough(Lsn(300)).ok());
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0], std::make_pair(int64_t{1}, Lsn(300)));

  transaction(400, "2", /*commit=*/false);
  ASSERT_TRUE(builder.FlushThrough(Lsn(500)).ok());
  EXPECT_EQ(batches.size(), 1u) << "nothing leaves an open transaction";
  EXPECT_EQ(builder.committed(), Lsn(300));
  pgo::CommitMessage c;
  c.commit_lsn = Lsn(400);
  c.end_lsn = Lsn(408);
  ASSERT_TRUE(builder.OnCommit(c).ok());
  ASSERT_TRUE(builder.FlushThrough(Lsn(350)).ok());  // a position behind the last commit
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[1], std::make_pair(int64_t{1}, Lsn(408)));
  EXPECT_FALSE(builder.has_pending());
}

}  // namespace
}  // namespace ductstream::cdc
