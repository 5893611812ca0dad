#include <filesystem>
#include <string>
#include <vector>

#include "absl/base/internal/endian.h"
#include "absl/strings/str_cat.h"
#include "ductstream/snapshot/catalog.h"
#include "ductstream/snapshot/copy.h"
#include "ductstream/snapshot/state.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ductstream::snapshot {
namespace {

namespace pgo = postgres::pgoutput;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

void PutInt16(std::string& out, int16_t v) {
  const uint16_t be = absl::big_endian::FromHost16(static_cast<uint16_t>(v));
  out.append(reinterpret_cast<const char*>(&be), 2);
}
void PutInt32(std::string& out, int32_t v) {
  const uint32_t be = absl::big_endian::FromHost32(static_cast<uint32_t>(v));
  out.append(reinterpret_cast<const char*>(&be), 4);
}

// A COPY BINARY stream: header, rows (nullopt = NULL), trailer.
std::string CopyStream(const std::vector<std::vector<std::optional<std::string>>>& rows) {
  std::string out("PGCOPY\n\377\r\n\0", 11);
  PutInt32(out, 0);  // flags
  PutInt32(out, 0);  // header extension
  for (const auto& row : rows) {
    PutInt16(out, static_cast<int16_t>(row.size()));
    for (const auto& cell : row) {
      if (!cell.has_value()) {
        PutInt32(out, -1);
        continue;
      }
      PutInt32(out, static_cast<int32_t>(cell->size()));
      out += *cell;
    }
  }
  PutInt16(out, -1);
  return out;
}

// Rows as strings ("NULL" for null cells) for comparison.
std::vector<std::string> ParseAll(const std::string& stream, size_t piece) {
  std::vector<std::string> rows;
  CopyBinaryParser parser([&](const std::vector<pgo::Cell>& cells) {
    std::string row;
    for (const auto& c : cells) {
      absl::StrAppend(&row, c.kind == pgo::CellKind::kNull ? "NULL" : std::string(c.data), "|");
    }
    rows.push_back(row);
    return absl::OkStatus();
  });
  for (size_t i = 0; i < stream.size(); i += piece) {
    EXPECT_TRUE(parser.Feed(absl::string_view(stream).substr(i, piece)).ok());
  }
  EXPECT_TRUE(parser.Finish().ok());
  EXPECT_EQ(parser.rows(), static_cast<int64_t>(rows.size()));
  return rows;
}

TEST(CopyBinaryParserTest, ParsesRowsWithNullsAndEmptyValuesWhateverTheMessageBoundaries) {
  const std::string stream =
      CopyStream({{"a", std::nullopt, ""}, {std::string("\0\1", 2), "bc", "d"}, {}});
  for (size_t piece : {stream.size(), size_t{1}, size_t{3}, size_t{7}}) {
    SCOPED_TRACE(piece);
    EXPECT_THAT(ParseAll(stream, piece),
                ElementsAre("a|NULL||", absl::StrCat(std::string("\0\1", 2), "|bc|d|"), ""));
  }
}

TEST(CopyBinaryParserTest, RejectsABadSignatureAndATruncatedStream) {
  CopyBinaryParser parser([](const std::vector<pgo::Cell>&) { return absl::OkStatus(); });
  EXPECT_FALSE(parser.Feed(std::string("PGCOPX\n\377\r\n\0\0\0\0\0\0\0\0\0", 19)).ok());

  const std::string stream = CopyStream({{"a"}});
  CopyBinaryParser truncated([](const std::vector<pgo::Cell>&) { return absl::OkStatus(); });
  ASSERT_TRUE(truncated.Feed(absl::string_view(stream).substr(0, stream.size() - 2)).ok());
  EXPECT_EQ(truncated.rows(), 1);
  EXPECT_THAT(truncated.Finish().message(), HasSubstr("ended before the trailer"));
}

TEST(CopyBinaryParserTest, AnErrorFromTheRowCallbackStopsTheParse) {
  int calls = 0;
  CopyBinaryParser parser([&](const std::vector<pgo::Cell>&) {
    ++calls;
    return absl::ResourceExhaustedError("full");
  });
  EXPECT_EQ(parser.Feed(CopyStream({{"a"}, {"b"}})).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(calls, 1);
}

CopyTable Table(std::string name, int64_t pages, int64_t rows) {
  CopyTable t;
  t.name = name;
  const size_t dot = name.find('.');
  t.read_schema = name.substr(0, dot);
  t.read_table = name.substr(dot + 1);
  t.pages = pages;
  t.rows_estimate = rows;
  t.columns = {{"id", Oid(23), -1, true}, {"Odd \"name\"", Oid(25), -1, false}};
  return t;
}

TEST(PlanChunksTest, PageRangesCoverTheTableAndTheLastIsOpenEnded) {
  PlanOptions o;
  o.chunk_bytes = 100 * 8192;
  const auto chunks = PlanChunks({Table("public.big", 1000, 50000)}, o);
  ASSERT_EQ(chunks.size(), 10u);
  EXPECT_EQ(chunks[0].range, "ctid:0-100");
  EXPECT_EQ(chunks[9].range, "ctid:900--1");
  int64_t rows = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    EXPECT_EQ(chunks[i].index, static_cast<int>(i));
    EXPECT_EQ(chunks[i].count, 10);
    rows += chunks[i].rows_estimate;
  }
  EXPECT_EQ(rows, 50000);
}

TEST(PlanChunksTest, EveryWorkerGetsAChunkOfATableWorthSplittingButTinyTablesStayWhole) {
  PlanOptions o;
  o.workers = 4;
  const auto chunks = PlanChunks(
      {Table("public.mid", 200, 0), Table("public.tiny", 3, 10), Table("public.empty", 0, 0)}, o);
  ASSERT_EQ(chunks.size(), 6u);
  EXPECT_EQ(chunks[0].range, "ctid:0-50");
  EXPECT_EQ(chunks[3].range, "ctid:150--1");
  EXPECT_EQ(chunks[4].range, "ctid:0--1");
  EXPECT_EQ(chunks[5].table, "public.empty");
}

TEST(PlanChunksTest, HashPartitionsWhenAPartitionColumnIsSet) {
  PlanOptions o;
  o.partition_column = "id";
  o.partition_count = 3;
  const auto chunks = PlanChunks({Table("s.t", 10, 30)}, o);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[2].range, "hash:id:2/3");
}

TEST(CopyStatementTest, QuotesNamesAndBoundsTheChunk) {
  CopyTable t = Table("public.big", 10, 10);
  t.row_filter = "(id > 5)";
  Chunk c;
  c.range = "ctid:3-7";
  auto sql = CopyStatement(t, c);
  ASSERT_TRUE(sql.ok()) << sql.status();
  EXPECT_EQ(*sql,
            "COPY (SELECT \"id\", \"Odd \"\"name\"\"\" FROM ONLY \"public\".\"big\" WHERE ctid >= "
            "'(3,0)'::tid AND ctid < '(7,0)'::tid AND ((id > 5))) TO STDOUT (FORMAT binary)");
  c.range = "ctid:7--1";
  EXPECT_THAT(*CopyStatement(t, c), HasSubstr("WHERE ctid >= '(7,0)'::tid AND ((id"));
  c.range = "hash:id:1/4";
  EXPECT_THAT(*CopyStatement(t, c),
              HasSubstr("COALESCE(((hashtext(\"id\"::text) % 4) + 4) % 4, 0) = 1"));
  c.range = "bogus";
  EXPECT_FALSE(CopyStatement(t, c).ok());
}

TEST(ChunkSeqBaseTest, ChunksNeverShareSequenceNumbers) {
  EXPECT_GT(ChunkSeqBase(0), 0);
  EXPECT_EQ(ChunkSeqBase(1) - ChunkSeqBase(0), int64_t{1} << 32);
}

TEST(FileSnapshotStateTest, PersistsThePlanAndDoneChunksAcrossInstances) {
  const std::string path =
      (std::filesystem::path(::testing::TempDir()) / "ds_snapshot_state" / "state.json").string();
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
  SnapshotRun run;
  run.key = "flow-a";
  run.kind = "initial";
  run.status = RunStatus::kCopying;
  run.lsn = Lsn(0x16B3748);
  for (int i = 0; i < 3; ++i) {
    Chunk c;
    c.table = "public.t";
    c.index = i;
    c.count = 3;
    c.range = absl::StrCat("ctid:", i, "-", i + 1);
    run.chunks.push_back(c);
  }
  {
    auto state = MakeFileSnapshotState(path);
    ASSERT_TRUE(state->Save(run).ok());
    Chunk done = run.chunks[1];
    done.rows = 42;
    done.bytes = 4200;
    ASSERT_TRUE(state->MarkChunkDone("flow-a", done).ok());
    Chunk missing = run.chunks[1];
    missing.index = 9;
    EXPECT_EQ(state->MarkChunkDone("flow-a", missing).code(), absl::StatusCode::kNotFound);
  }
  auto state = MakeFileSnapshotState(path);
  auto loaded = state->Load("flow-a");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->lsn, Lsn(0x16B3748));
  EXPECT_EQ((*loaded)->chunks_done(), 1);
  EXPECT_TRUE((*loaded)->chunks[1].done);
  EXPECT_EQ((*loaded)->chunks[1].rows, 42);
  ASSERT_TRUE(state->SetStatus("flow-a", RunStatus::kDone).ok());
  EXPECT_EQ((*MakeFileSnapshotState(path)->Load("flow-a"))->status, RunStatus::kDone);
  EXPECT_FALSE((*state->Load("other")).has_value());
}

}  // namespace
}  // namespace ductstream::snapshot
