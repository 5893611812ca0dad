// The null destination (decode-only benchmarks): counts what it is given, discards it, and
// rejects options it does not have.

#include "ductstream/destination/null_destination.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "ductstream/codec/testing_batches.h"

namespace ductstream::destination {
namespace {

TEST(NullDestinationTest, CountsRowsAndBytesOfEveryBatch) {
  NullDestinationCounts counts;
  auto dest = MakeNullDestination(NullDestinationConfig{"sink"}, &counts);
  ASSERT_TRUE(dest.ok()) << dest.status();
  EXPECT_EQ((*dest)->name(), "sink");

  cdc::ChangeBatch batch;
  batch.relations.push_back(codec::sample::MakeSampleChanges());
  batch.relations.push_back(codec::sample::MakeSampleChanges());
  batch.bytes = 1234;
  const int64_t rows = batch.num_rows();
  ASSERT_GT(rows, 0);
  ASSERT_TRUE((*dest)->Write(batch).ok());
  ASSERT_TRUE((*dest)->Write(cdc::ChangeBatch{}).ok());
  ASSERT_TRUE((*dest)->Write(batch).ok());
  ASSERT_TRUE((*dest)->Close().ok());

  EXPECT_EQ(counts.batches, 3);
  EXPECT_EQ(counts.rows, 2 * rows);
  EXPECT_EQ(counts.bytes, 2 * 1234);
}

TEST(NullDestinationTest, TakesNoOptionsButFormatAndFlowId) {
  EXPECT_TRUE(
      CheckNullDestinationOptions(flow::Endpoint{"sink", "null", {}}, "destinations[0]").ok());
  EXPECT_TRUE(CheckNullDestinationOptions(
                  flow::Endpoint{"sink", "null", {{"flow_id", "f1"}, {"format", "parquet"}}},
                  "destinations[0]")
                  .ok());
  absl::Status s = CheckNullDestinationOptions(flow::Endpoint{"sink", "null", {{"path", "/tmp/x"}}},
                                               "destinations[1]");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "destinations[1].options.path: unknown option")) << s;
}

// The connector type is known to flow files (it is not a proto EndpointType), and what
// validation adds to a destination's options (its resolved format) is accepted.
TEST(NullDestinationTest, FlowFilesAcceptIt) {
  auto flow = flow::ParseFlowJson(R"json({"name": "dry", "wire_format": "parquet",
    "source": {"name": "pg", "type": "postgres",
               "options": {"dsn": "host=localhost", "slot": "s", "publication": "p"}},
    "destinations": [{"name": "sink", "type": "null"}]})json");
  ASSERT_TRUE(flow.ok()) << flow.status();
  ASSERT_TRUE(flow::ValidateFlow(*flow).ok());
  ASSERT_EQ(flow->destinations.size(), 1u);
  EXPECT_EQ(flow->destinations[0].type, "null");
  EXPECT_TRUE(CheckNullDestinationOptions(flow->destinations[0], "destinations[0]").ok());
}

}  // namespace
}  // namespace ductstream::destination
