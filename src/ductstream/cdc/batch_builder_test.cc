#include "ductstream/cdc/batch_builder.h"

#include <gtest/gtest.h>

#include <vector>

namespace ductstream::cdc {
namespace {

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

}  // namespace
}  // namespace ductstream::cdc
