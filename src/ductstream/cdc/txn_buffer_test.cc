#include "ductstream/cdc/txn_buffer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace ductstream::cdc {
namespace {

// An Insert message of (sub)transaction `xid` carrying `payload` after the header bytes.
std::string Insert(uint32_t xid, absl::string_view payload) {
  std::string m = "I";
  for (int shift = 24; shift >= 0; shift -= 8) m.push_back(static_cast<char>(xid >> shift));
  absl::StrAppend(&m, payload);
  return m;
}

std::vector<std::string> Drain(TxnBuffer& buffer, Xid top) {
  std::vector<std::string> out;
  EXPECT_TRUE(buffer
                  .Commit(top,
                          [&](Lsn lsn, absl::string_view m) {
                            out.push_back(absl::StrCat(lsn.value(), ":", m.substr(5)));
                            return absl::OkStatus();
                          })
                  .ok());
  return out;
}

TEST(TxnBufferTest, ReplaysInOrderAndForgets) {
  TxnBuffer buffer(1 << 20, "");
  ASSERT_TRUE(buffer.Append(Xid(7), Lsn(1), Insert(7, "a")).ok());
  ASSERT_TRUE(buffer.Append(Xid(9), Lsn(2), Insert(9, "other")).ok());
  ASSERT_TRUE(buffer.Append(Xid(7), Lsn(3), Insert(7, "b")).ok());
  EXPECT_EQ(Drain(buffer, Xid(7)), (std::vector<std::string>{"1:a", "3:b"}));
  EXPECT_TRUE(Drain(buffer, Xid(7)).empty());
  EXPECT_EQ(Drain(buffer, Xid(9)), (std::vector<std::string>{"2:other"}));
  EXPECT_TRUE(buffer.empty());
  EXPECT_EQ(buffer.memory_bytes(), 0);
}

TEST(TxnBufferTest, AbortDiscardsTransactionOrSubtransaction) {
  TxnBuffer buffer(1 << 20, "");
  ASSERT_TRUE(buffer.Append(Xid(7), Lsn(1), Insert(7, "keep")).ok());
  ASSERT_TRUE(buffer.Append(Xid(7), Lsn(2), Insert(8, "sub")).ok());
  ASSERT_TRUE(buffer.Append(Xid(7), Lsn(3), Insert(7, "keep2")).ok());
  ASSERT_TRUE(buffer.Abort(Xid(7), Xid(8)).ok());
  EXPECT_EQ(Drain(buffer, Xid(7)), (std::vector<std::string>{"1:keep", "3:keep2"}));

  ASSERT_TRUE(buffer.Append(Xid(10), Lsn(4), Insert(10, "gone")).ok());
  ASSERT_TRUE(buffer.Abort(Xid(10), Xid(10)).ok());
  EXPECT_TRUE(Drain(buffer, Xid(10)).empty());
  EXPECT_TRUE(buffer.empty());
}

TEST(TxnBufferTest, SpillsPastTheMemoryLimitAndKeepsOrderAndAborts) {
  TxnBuffer buffer(/*memory_limit=*/4096, "");
  std::vector<std::string> expected;
  for (int i = 0; i < 2000; ++i) {
    const uint32_t xid = i % 3 == 0 ? 8 : 7;  // every third row in an aborted subtransaction
    ASSERT_TRUE(buffer.Append(Xid(7), Lsn(i), Insert(xid, absl::StrCat("row", i))).ok());
    if (xid == 7) expected.push_back(absl::StrCat(i, ":row", i));
  }
  EXPECT_LE(buffer.memory_bytes(), 4096);
  EXPECT_GT(buffer.spilled_bytes_total(), 0);
  ASSERT_TRUE(buffer.Abort(Xid(7), Xid(8)).ok());
  EXPECT_EQ(Drain(buffer, Xid(7)), expected);
}

// Regression: the replay of a committed streamed transaction fills batches, the in-flight queue
// and the writer; the buffer must not keep its own up-to-memory_limit bytes on top of that.
TEST(TxnBufferTest, SpilledTransactionReplaysWithNothingInMemory) {
  TxnBuffer buffer(/*memory_limit=*/4096, "");
  std::vector<std::string> expected;
  int i = 0;
  auto append = [&] {
    ASSERT_TRUE(buffer.Append(Xid(7), Lsn(i), Insert(7, absl::StrCat("row", i))).ok());
    expected.push_back(absl::StrCat(i, ":row", i));
    ++i;
  };
  while (buffer.spilled_bytes_total() == 0) append();
  for (int k = 0; k < 3; ++k) append();  // an in-memory tail after the spill
  ASSERT_GT(buffer.memory_bytes(), 0);
  std::vector<std::string> got;
  int64_t max_memory_during_replay = -1;
  ASSERT_TRUE(buffer
                  .Commit(Xid(7),
                          [&](Lsn lsn, absl::string_view m) {
                            max_memory_during_replay =
                                std::max(max_memory_during_replay, buffer.memory_bytes());
                            got.push_back(absl::StrCat(lsn.value(), ":", m.substr(5)));
                            return absl::OkStatus();
                          })
                  .ok());
  EXPECT_EQ(got, expected);
  EXPECT_EQ(max_memory_during_replay, 0);
  EXPECT_EQ(buffer.memory_bytes(), 0);
}

TEST(TxnBufferTest, InMemoryReplayReleasesMemoryAsItGoes) {
  TxnBuffer buffer(1 << 20, "");
  // Messages larger than a block (1/16 of the limit) each have a block of their own.
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(buffer.Append(Xid(7), Lsn(i), Insert(7, std::string(100000, 'x'))).ok());
  }
  ASSERT_GT(buffer.memory_bytes(), 8 * 100000);
  std::vector<int64_t> memory;
  ASSERT_TRUE(buffer
                  .Commit(Xid(7),
                          [&](Lsn, absl::string_view) {
                            memory.push_back(buffer.memory_bytes());
                            return absl::OkStatus();
                          })
                  .ok());
  ASSERT_EQ(memory.size(), 8u);
  for (size_t k = 1; k < memory.size(); ++k) EXPECT_LT(memory[k], memory[k - 1]) << k;
  EXPECT_EQ(buffer.spilled_bytes_total(), 0);
  EXPECT_EQ(buffer.memory_bytes(), 0);
}

TEST(TxnBufferTest, MemoryStaysNearTheLimit) {
  constexpr int64_t kLimit = 64 << 10;
  TxnBuffer buffer(kLimit, "");
  for (int i = 0; i < 20000; ++i) {
    ASSERT_TRUE(buffer.Append(Xid(7), Lsn(i), Insert(7, std::string(200, 'y'))).ok());
    ASSERT_LE(buffer.memory_bytes(), kLimit);  // a spill follows any append past the limit
  }
  EXPECT_GT(buffer.spilled_bytes_total(), 20000 * 200);
}

// Regression: the bytes of an aborted subtransaction stay counted until released; a transaction
// left with only those must still give its memory back when it is the one chosen to spill.
TEST(TxnBufferTest, AbortedSubtransactionMemoryIsReleasedBySpilling) {
  constexpr int64_t kLimit = 64 << 10;
  TxnBuffer buffer(kLimit, "");
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(buffer.Append(Xid(7), Lsn(i), Insert(8, std::string(200, 'a'))).ok());
  }
  ASSERT_TRUE(buffer.Abort(Xid(7), Xid(8)).ok());
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(buffer.Append(Xid(9), Lsn(1000 + i), Insert(9, std::string(200, 'b'))).ok());
    ASSERT_LE(buffer.memory_bytes(), kLimit);
  }
  EXPECT_TRUE(Drain(buffer, Xid(7)).empty());
  EXPECT_EQ(Drain(buffer, Xid(9)).size(), 2000u);
}

TEST(TxnBufferTest, RejectsNonDataMessages) {
  TxnBuffer buffer(1 << 20, "");
  EXPECT_FALSE(buffer.Append(Xid(1), Lsn(1), "B1234").ok());
  EXPECT_FALSE(StreamedMessageXid("I12").ok());
}

TEST(TxnBufferTest, UnwritableSpillDirIsAClearError) {
  TxnBuffer buffer(/*memory_limit=*/10, "/nonexistent-dir");
  absl::Status s = buffer.Append(Xid(7), Lsn(1), Insert(7, "0123456789"));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent-dir"), std::string::npos) << s;
}

}  // namespace
}  // namespace ductstream::cdc
