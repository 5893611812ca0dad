// The file destination's staging of streamed transactions: Arrow files written before the
// commit and labelled after it are the files an ordinary write of the labelled batch makes.

#include "ductstream/destination/file_destination.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <arrow/api.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ductstream/codec/testing_batches.h"
#include "ductstream/testing/pg_sandbox.h"

namespace ductstream::destination {
namespace {

namespace fs = std::filesystem;

// The sample changes with their commit labels replaced, as SpeculativeStreams does: built row
// by row (placeholders, while the transaction streams) or constant (labelled at its commit).
cdc::RelationChanges WithCommitLabels(uint64_t commit_lsn, int64_t commit_ts, bool built) {
  cdc::RelationChanges changes = codec::sample::MakeSampleChanges();
  const auto& rb = changes.records;
  const int lsn_index = rb->schema()->GetFieldIndex(cdc::kCommitLsnColumn);
  const int ts_index = rb->schema()->GetFieldIndex(cdc::kCommitTsColumn);
  const auto ts_type = rb->schema()->field(ts_index)->type();
  arrow::ArrayVector columns = rb->columns();
  if (built) {
    arrow::UInt64Builder lsn;
    arrow::TimestampBuilder ts(ts_type, arrow::default_memory_pool());
    for (int64_t i = 0; i < rb->num_rows(); ++i) {
      EXPECT_TRUE(lsn.Append(commit_lsn).ok());
      EXPECT_TRUE(ts.Append(commit_ts).ok());
    }
    columns[lsn_index] = lsn.Finish().ValueOrDie();
    columns[ts_index] = ts.Finish().ValueOrDie();
  } else {
    columns[lsn_index] =
        arrow::MakeArrayFromScalar(arrow::UInt64Scalar(commit_lsn), rb->num_rows()).ValueOrDie();
    columns[ts_index] =
        arrow::MakeArrayFromScalar(arrow::TimestampScalar(commit_ts, ts_type), rb->num_rows())
            .ValueOrDie();
  }
  changes.records = arrow::RecordBatch::Make(rb->schema(), rb->num_rows(), std::move(columns));
  changes.first_commit_lsn = Lsn(commit_lsn);
  return changes;
}

// A batch of two relations (two files), unlabelled or labelled.
cdc::ChangeBatch Batch(bool labelled) {
  cdc::ChangeBatch batch;
  for (const char* table : {"first", "second"}) {
    cdc::RelationChanges r =
        labelled ? WithCommitLabels(0x1234ABCD, 777777777, false) : WithCommitLabels(0, 0, true);
    r.table = table;
    batch.relations.push_back(std::move(r));
  }
  return batch;
}

std::string Contents(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Every file under `dir`, relative, with its contents.
std::vector<std::pair<std::string, std::string>> Files(const fs::path& dir) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out.emplace_back(fs::relative(e.path(), dir).string(), Contents(e));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Files being written are hidden from dataset readers (a leading '.') and end in ".tmp".
void ExpectOnlyHiddenTempFiles(const fs::path& dir) {
  const auto files = Files(dir);
  EXPECT_EQ(files.size(), 2u);
  for (const auto& [name, contents] : files) {
    const std::string file = fs::path(name).filename().string();
    EXPECT_TRUE(absl::StartsWith(file, ".") && absl::EndsWith(file, ".tmp")) << name;
    EXPECT_FALSE(contents.empty());
  }
}

class FileDestinationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) / testing::PgSandbox::UniqueName("filedest");
  }
  void TearDown() override { fs::remove_all(root_); }

  std::unique_ptr<runner::Destination> Make(const std::string& sub,
                                            codec::WireFormat format = codec::WireFormat::kArrow) {
    FileDestinationConfig config;
    config.name = "files";
    config.path = (root_ / sub).string();
    config.format = format;
    auto d = MakeFileDestination(config);
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? std::move(*d) : nullptr;
  }

  fs::path root_;
};

TEST_F(FileDestinationTest, StagedArrowFilesAreThoseOfTheLabelledBatch) {
  auto direct = Make("direct");
  auto staging = Make("staged");
  ASSERT_TRUE(staging->stages());
  const cdc::ChangeBatch labelled = Batch(true);
  {
    auto prepared = direct->Prepare(labelled);
    ASSERT_TRUE(prepared.ok()) << prepared.status();
    ExpectOnlyHiddenTempFiles(root_ / "direct");
    ASSERT_TRUE(direct->WritePrepared(labelled, std::move(*prepared)).ok());
  }

  auto staged = staging->Stage(Batch(false));
  ASSERT_TRUE(staged.ok()) << staged.status();
  // Before the commit: temporary files only.
  ExpectOnlyHiddenTempFiles(root_ / "staged");

  auto prepared = staging->PrepareStaged(labelled, std::move(*staged));
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  ASSERT_TRUE(staging->WritePrepared(labelled, std::move(*prepared)).ok());

  const auto expected = Files(root_ / "direct");
  ASSERT_EQ(expected.size(), 2u);
  // Written straight to the file, as the arrow encoder encodes it.
  auto encoder = codec::MakeEncoder(codec::WireFormat::kArrow, {});
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  for (size_t i = 0; i < expected.size(); ++i) {
    std::string encoded;
    ASSERT_TRUE((*encoder)->Encode(labelled.relations[i], &encoded).ok());
    EXPECT_TRUE(encoded == expected[i].second) << expected[i].first << " is not the encoder's";
  }
  const auto got = Files(root_ / "staged");
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].first, expected[i].first);
    EXPECT_TRUE(got[i].second == expected[i].second) << got[i].first << " differs";
  }
}

TEST_F(FileDestinationTest, AStagingNeverUsedLeavesNothing) {
  auto staging = Make("staged");
  {
    auto staged = staging->Stage(Batch(false));  // the transaction aborts
    ASSERT_TRUE(staged.ok()) << staged.status();
    EXPECT_EQ(Files(root_ / "staged").size(), 2u);
  }
  EXPECT_TRUE(Files(root_ / "staged").empty());
}

TEST_F(FileDestinationTest, AStagingOfOtherRowsIsRefusedAndRemoved) {
  auto staging = Make("staged");
  auto staged = staging->Stage(Batch(false));
  ASSERT_TRUE(staged.ok()) << staged.status();
  cdc::ChangeBatch other = Batch(true);
  other.relations[1].records = other.relations[1].records->Slice(1);
  auto prepared = staging->PrepareStaged(other, std::move(*staged));
  EXPECT_EQ(prepared.status().code(), absl::StatusCode::kFailedPrecondition) << prepared.status();
  EXPECT_TRUE(Files(root_ / "staged").empty());
}

TEST_F(FileDestinationTest, OnlyArrowFilesStage) {
  EXPECT_FALSE(Make("p", codec::WireFormat::kParquet)->stages());
  EXPECT_FALSE(Make("j", codec::WireFormat::kJson)->stages());
}

}  // namespace
}  // namespace ductstream::destination
