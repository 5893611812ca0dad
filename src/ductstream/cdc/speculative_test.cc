#include "ductstream/cdc/speculative.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ductstream/cdc/assembler.h"
#include "ductstream/cdc/batch_builder.h"
#include "ductstream/cdc/txn_buffer.h"

namespace ductstream::cdc {
namespace {

// pgoutput protocol v2 messages, written by hand (docs: "Logical Replication Message Formats").
class Wire {
 public:
  Wire& U8(uint8_t v) {
    s_.push_back(static_cast<char>(v));
    return *this;
  }
  Wire& U16(uint16_t v) { return Be(v, 2); }
  Wire& U32(uint32_t v) { return Be(v, 4); }
  Wire& U64(uint64_t v) { return Be(v, 8); }
  Wire& Str(absl::string_view v) {
    s_.append(v.data(), v.size());
    s_.push_back('\0');
    return *this;
  }
  // A tuple of (id int4, note text) in text format; an empty note is NULL.
  Wire& Tuple(int id, absl::string_view note) {
    U16(2);
    const std::string ids = absl::StrCat(id);
    U8('t').U32(static_cast<uint32_t>(ids.size()));
    s_ += ids;
    if (note.empty()) return U8('n');
    U8('t').U32(static_cast<uint32_t>(note.size()));
    s_.append(note.data(), note.size());
    return *this;
  }
  std::string str() const { return s_; }

 private:
  Wire& Be(uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) s_.push_back(static_cast<char>(v >> (8 * i)));
    return *this;
  }
  std::string s_;
};

constexpr uint32_t kRel = 16384;

std::string Relation(uint32_t xid, bool streamed) {
  Wire w;
  w.U8('R');
  if (streamed) w.U32(xid);
  w.U32(kRel).Str("public").Str("t").U8('d').U16(2);
  w.U8(1).Str("id").U32(23).U32(0xFFFFFFFF);
  w.U8(0).Str("note").U32(25).U32(0xFFFFFFFF);
  return w.str();
}
std::string Insert(uint32_t xid, bool streamed, int id, absl::string_view note) {
  Wire w;
  w.U8('I');
  if (streamed) w.U32(xid);
  return w.U32(kRel).U8('N').Tuple(id, note).str();
}
std::string Update(uint32_t xid, int id, absl::string_view note) {
  return Wire().U8('U').U32(xid).U32(kRel).U8('N').Tuple(id, note).str();
}
std::string Delete(uint32_t xid, int id) {
  return Wire().U8('D').U32(xid).U32(kRel).U8('K').Tuple(id, "").str();
}
std::string Begin(uint64_t final_lsn, uint32_t xid) {
  return Wire().U8('B').U64(final_lsn).U64(1000).U32(xid).str();
}
std::string Commit(uint64_t lsn) {
  return Wire().U8('C').U8(0).U64(lsn).U64(lsn + 8).U64(1000).str();
}
std::string StreamStart(uint32_t xid, bool first) {
  return Wire().U8('S').U32(xid).U8(first ? 1 : 0).str();
}
std::string StreamStop() { return "E"; }
std::string StreamCommit(uint32_t xid, uint64_t lsn, uint64_t time) {
  return Wire().U8('c').U32(xid).U8(0).U64(lsn).U64(lsn + 8).U64(time).str();
}
std::string StreamAbort(uint32_t xid, uint32_t sub) {
  return Wire().U8('A').U32(xid).U32(sub).str();
}

// Two streamed transactions interleaved with ordinary ones: one commits after one of its
// subtransactions aborted, the other aborts; a Relation message is only sent inside the stream.
std::vector<std::string> Scenario() {
  std::vector<std::string> m;
  m.push_back(StreamStart(200, true));
  m.push_back(Relation(200, true));
  for (int i = 0; i < 10; ++i) m.push_back(Insert(200, true, i, absl::StrCat("top-", i)));
  for (int i = 10; i < 15; ++i) m.push_back(Insert(201, true, i, "aborted-sub"));
  m.push_back(StreamStop());
  m.push_back(StreamStart(300, true));
  m.push_back(Relation(300, true));
  for (int i = 100; i < 104; ++i) m.push_back(Insert(300, true, i, "aborted-top"));
  m.push_back(StreamStop());
  m.push_back(StreamStart(200, false));
  for (int i = 20; i < 23; ++i) m.push_back(Insert(202, true, i, "kept-sub"));
  m.push_back(Update(201, 3, "aborted-update"));
  m.push_back(Update(200, 4, "updated"));
  m.push_back(Delete(200, 5));
  m.push_back(Insert(200, true, 30, ""));
  m.push_back(StreamStop());
  m.push_back(StreamAbort(200, 201));
  m.push_back(StreamAbort(300, 300));
  m.push_back(StreamCommit(200, 5000, 123456));
  m.push_back(Begin(6000, 400));
  m.push_back(Insert(400, false, 40, "after"));
  m.push_back(Insert(400, false, 41, "after"));
  m.push_back(Commit(6000));
  return m;
}

struct Output {
  std::vector<std::string> rows;  // every cell of every row, in order
  Lsn last_checkpoint;
  int batches = 0;
};

absl::StatusOr<postgres::TypeInfo> NoCatalog(Oid oid) {
  return absl::NotFoundError(absl::StrCat("no catalog (oid ", oid.value(), ")"));
}

Output Replay(bool speculative, int64_t max_batch_bytes, int64_t memory_limit,
              int64_t* spilled = nullptr) {
  Output out;
  BuilderOptions options;
  options.batch_rows = 1000;
  options.max_batch_bytes = max_batch_bytes;
  BatchBuilder builder(options, NoCatalog, [&](ChangeBatch batch) {
    ++out.batches;
    if (batch.checkpoint.valid()) out.last_checkpoint = batch.checkpoint;
    for (const RelationChanges& r : batch.relations) {
      for (int64_t i = 0; i < r.records->num_rows(); ++i) {
        std::string row = r.table;
        for (int c = 0; c < r.records->num_columns(); ++c) {
          absl::StrAppend(&row, "|", r.records->schema()->field(c)->name(), "=",
                          r.records->column(c)->GetScalar(i).ValueOrDie()->ToString());
        }
        out.rows.push_back(row);
      }
    }
    return absl::OkStatus();
  });
  TxnBuffer buffer(memory_limit, "");
  SpeculativeStreams streams(options, NoCatalog, memory_limit, "");
  TransactionAssembler assembler(2, false, builder, buffer, speculative ? &streams : nullptr);
  uint64_t lsn = 100;
  for (const std::string& m : Scenario()) {
    absl::Status s = assembler.Process(Lsn(lsn), m);
    EXPECT_TRUE(s.ok()) << s;
    lsn += 10;
  }
  EXPECT_TRUE(builder.Flush().ok());
  EXPECT_FALSE(assembler.has_open_streams());
  if (spilled != nullptr) *spilled = streams.spilled_bytes_total();
  return out;
}

TEST(SpeculativeStreamsTest, SameRowsAsDecodingAtCommit) {
  const Output at_commit = Replay(false, 1 << 20, 1 << 20);
  ASSERT_EQ(at_commit.rows.size(), 10u + 3 + 3 + 2);  // 10 + kept sub + update/delete/insert
  for (int64_t max_batch_bytes : {int64_t{1} << 20, int64_t{300}}) {
    for (int64_t memory_limit : {int64_t{1} << 20, int64_t{1}}) {
      SCOPED_TRACE(absl::StrCat("max_batch_bytes ", max_batch_bytes, " memory ", memory_limit));
      int64_t spilled = 0;
      const Output speculative = Replay(true, max_batch_bytes, memory_limit, &spilled);
      EXPECT_EQ(speculative.rows, at_commit.rows);
      EXPECT_EQ(speculative.last_checkpoint, Lsn(6008));
      if (memory_limit == 1 && max_batch_bytes == 300) {
        // Batches finished before the commit go to disk past the limit (the rows still being
        // built stay in the builder, within max_batch_bytes).
        EXPECT_GT(spilled, 0);
      } else {
        EXPECT_EQ(spilled, 0);
      }
      if (max_batch_bytes == 300) {
        EXPECT_GT(speculative.batches, 3);
      }
    }
  }
}

TEST(SpeculativeStreamsTest, LabelsCommitAndRenumbersAroundAbortedSubtransactions) {
  const Output out = Replay(true, 1 << 20, 1);
  ASSERT_EQ(out.rows.size(), 18u);
  for (size_t i = 0; i < 16; ++i) {
    SCOPED_TRACE(out.rows[i]);
    EXPECT_NE(out.rows[i].find("|__commit_lsn=5000|"), std::string::npos);
    EXPECT_NE(out.rows[i].find("|__xid=200|"), std::string::npos);
    EXPECT_NE(out.rows[i].find(absl::StrCat("|__seq=", i, "|")), std::string::npos);
    EXPECT_EQ(out.rows[i].find("aborted"), std::string::npos);
  }
  // 123456 µs after 2000-01-01.
  EXPECT_NE(out.rows[0].find("__commit_ts=2000-01-01 00:00:00.123456"), std::string::npos)
      << out.rows[0];
  EXPECT_NE(out.rows[16].find("|__commit_lsn=6000|"), std::string::npos);
}

// What a stager made of a batch before its transaction committed; counts its destruction.
struct Recorded final : StagedWork {
  Recorded(int64_t rows, int64_t first_seq, uint64_t commit_lsn, int* destroyed)
      : rows(rows), first_seq(first_seq), commit_lsn(commit_lsn), destroyed(destroyed) {}
  ~Recorded() override { ++*destroyed; }
  int64_t rows;
  int64_t first_seq;
  uint64_t commit_lsn;  // the placeholder the staged batch carried
  int* destroyed;
};

TEST(SpeculativeStreamsTest, StagedBatchesReachTheirCommitUnlessRowsWereCutOut) {
  std::vector<std::string> m;
  // 500 commits whole; 600 commits after a subtransaction aborted; 700 aborts.
  m.push_back(StreamStart(500, true));
  m.push_back(Relation(500, true));
  for (int i = 0; i < 40; ++i) m.push_back(Insert(500, true, i, "whole"));
  m.push_back(StreamStop());
  m.push_back(StreamStart(600, true));
  m.push_back(Relation(600, true));
  for (int i = 100; i < 140; ++i) m.push_back(Insert(i < 110 ? 601 : 600, true, i, "cut"));
  m.push_back(StreamStop());
  m.push_back(StreamAbort(600, 601));
  m.push_back(StreamStart(700, true));
  m.push_back(Relation(700, true));
  for (int i = 200; i < 240; ++i) m.push_back(Insert(700, true, i, "aborted"));
  m.push_back(StreamStop());

  BuilderOptions options;
  options.batch_rows = 1000;
  options.max_batch_bytes = 300;  // a few rows per batch
  std::vector<ChangeBatch> emitted;
  BatchBuilder builder(options, NoCatalog, [&](ChangeBatch batch) {
    emitted.push_back(std::move(batch));
    return absl::OkStatus();
  });
  TxnBuffer buffer(1 << 20, "");
  SpeculativeStreams streams(options, NoCatalog, /*memory_limit=*/1, "");  // spills too
  int staged = 0;
  int destroyed = 0;
  streams.set_stager([&](const ChangeBatch& unlabelled) -> std::shared_ptr<StagedWork> {
    ++staged;
    EXPECT_FALSE(unlabelled.checkpoint.valid());
    EXPECT_EQ(unlabelled.relations.size(), 1u);
    const RelationChanges& r = unlabelled.relations.front();
    const auto& commit =
        static_cast<const arrow::UInt64Array&>(*r.records->GetColumnByName(kCommitLsnColumn));
    return std::make_shared<Recorded>(r.num_rows(), r.first_seq, commit.Value(0), &destroyed);
  });
  TransactionAssembler assembler(2, false, builder, buffer, &streams);
  uint64_t lsn = 100;
  auto process = [&](const std::string& message) {
    absl::Status s = assembler.Process(Lsn(lsn), message);
    ASSERT_TRUE(s.ok()) << s;
    lsn += 10;
  };
  for (const std::string& message : m) process(message);
  const int staged_while_streaming = staged;
  EXPECT_GT(staged_while_streaming, 6) << "each transaction was meant to span batches";
  EXPECT_TRUE(emitted.empty()) << "nothing is delivered before a commit";

  process(StreamAbort(700, 700));
  const int staged_for_700 = destroyed;
  EXPECT_GT(staged_for_700, 0) << "an aborted transaction's stagings are dropped";

  process(StreamCommit(500, 5000, 1));
  int whole_staged = 0;
  for (const ChangeBatch& batch : emitted) {
    if (batch.staged == nullptr) {
      EXPECT_TRUE(batch.checkpoint.valid()) << "only the batch cut by the commit is not staged";
      continue;
    }
    ++whole_staged;
    const auto* r = dynamic_cast<const Recorded*>(batch.staged.get());
    ASSERT_NE(r, nullptr);
    ASSERT_EQ(batch.relations.size(), 1u);
    EXPECT_EQ(r->rows, batch.relations.front().num_rows());
    EXPECT_EQ(r->first_seq, batch.relations.front().first_seq);
    EXPECT_EQ(r->commit_lsn, 0u) << "staged with a placeholder";
    EXPECT_EQ(batch.relations.front().first_commit_lsn, Lsn(5000));
  }
  EXPECT_GT(whole_staged, 2);
  EXPECT_EQ(staged, staged_while_streaming) << "the batch cut by the commit is not staged";

  const size_t before_600 = emitted.size();
  process(StreamCommit(600, 6000, 2));
  ASSERT_GT(emitted.size(), before_600);
  int64_t rows_600 = 0;
  for (size_t i = before_600; i < emitted.size(); ++i) {
    EXPECT_EQ(emitted[i].staged, nullptr) << "rows were cut out: the staging does not match";
    rows_600 += emitted[i].num_rows();
  }
  EXPECT_EQ(rows_600, 30);
  emitted.clear();  // the batches of 500 release their stagings
  EXPECT_EQ(destroyed, staged) << "every staging is released";
}

}  // namespace
}  // namespace ductstream::cdc
