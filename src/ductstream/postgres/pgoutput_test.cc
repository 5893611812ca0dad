#include "ductstream/postgres/pgoutput.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ductstream::postgres::pgoutput {
namespace {

// Builds messages byte by byte, big-endian, as the server does.
class Msg {
 public:
  explicit Msg(char type) { bytes_ += type; }
  Msg& U8(uint8_t v) {
    bytes_ += static_cast<char>(v);
    return *this;
  }
  Msg& U16(uint16_t v) { return Big(v, 2); }
  Msg& U32(uint32_t v) { return Big(v, 4); }
  Msg& U64(uint64_t v) { return Big(v, 8); }
  Msg& Str(absl::string_view s) {
    absl::StrAppend(&bytes_, s);
    bytes_ += '\0';
    return *this;
  }
  Msg& Raw(absl::string_view s) {
    absl::StrAppend(&bytes_, s);
    return *this;
  }
  Msg& TextCell(absl::string_view s) { return U8('t').U32(static_cast<uint32_t>(s.size())).Raw(s); }
  Msg& BinaryCell(absl::string_view s) {
    return U8('b').U32(static_cast<uint32_t>(s.size())).Raw(s);
  }
  const std::string& str() const { return bytes_; }

 private:
  Msg& Big(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) bytes_ += static_cast<char>((v >> (8 * i)) & 0xFF);
    return *this;
  }
  std::string bytes_;
};

std::string CellsToString(const std::vector<Cell>& cells) {
  std::vector<std::string> out;
  for (const Cell& c : cells) {
    switch (c.kind) {
      case CellKind::kNull:
        out.push_back("NULL");
        break;
      case CellKind::kUnchangedToast:
        out.push_back("UNCHANGED");
        break;
      case CellKind::kText:
        out.push_back(absl::StrCat("t:", c.data));
        break;
      case CellKind::kBinary:
        out.push_back(absl::StrCat("b:", c.data.size()));
        break;
    }
  }
  return absl::StrJoin(out, ",");
}

// Records every callback as one line of text.
class Recorder final : public Handler {
 public:
  std::vector<std::string> events;

  absl::Status OnBegin(const BeginMessage& m) override {
    return Add("begin final=", m.final_lsn.ToString(), " ts=", m.commit_time,
               " xid=", m.xid.value());
  }
  absl::Status OnCommit(const CommitMessage& m) override {
    return Add("commit lsn=", m.commit_lsn.ToString(), " end=", m.end_lsn.ToString(),
               " ts=", m.commit_time);
  }
  absl::Status OnOrigin(const OriginMessage& m) override {
    return Add("origin ", m.name, " ", m.commit_lsn.ToString());
  }
  absl::Status OnRelation(const RelationMessage& m) override {
    std::vector<std::string> cols;
    for (const auto& c : m.columns) {
      cols.push_back(
          absl::StrCat(c.is_key ? "*" : "", c.name, ":", c.type_oid.value(), "/", c.type_modifier));
    }
    return Add("relation xid=", m.xid.value(), " ", m.relation_id.value(), " ", m.schema, ".",
               m.name, " ri=", std::string(1, static_cast<char>(m.replica_identity)), " [",
               absl::StrJoin(cols, ","), "]");
  }
  absl::Status OnType(const TypeMessage& m) override {
    return Add("type ", m.type_oid.value(), " ", m.schema, ".", m.name);
  }
  absl::Status OnInsert(const InsertMessage& m) override {
    return Add("insert xid=", m.xid.value(), " rel=", m.relation_id.value(), " new=[",
               CellsToString(m.new_tuple), "]");
  }
  absl::Status OnUpdate(const UpdateMessage& m) override {
    return Add(
        "update rel=", m.relation_id.value(), " old=",
        m.old_kind == OldTupleKind::kNone ? "none" : std::string(1, static_cast<char>(m.old_kind)),
        "[", CellsToString(m.old_tuple), "] new=[", CellsToString(m.new_tuple), "]");
  }
  absl::Status OnDelete(const DeleteMessage& m) override {
    return Add("delete rel=", m.relation_id.value(),
               " old=", std::string(1, static_cast<char>(m.old_kind)), "[",
               CellsToString(m.old_tuple), "]");
  }
  absl::Status OnTruncate(const TruncateMessage& m) override {
    std::vector<uint32_t> ids;
    for (Oid o : m.relation_ids) ids.push_back(o.value());
    return Add("truncate cascade=", m.cascade, " restart=", m.restart_identity, " [",
               absl::StrJoin(ids, ","), "]");
  }
  absl::Status OnMessage(const LogicalMessage& m) override {
    return Add("message tx=", m.transactional, " ", m.prefix, "=", m.content);
  }
  absl::Status OnStreamStart(const StreamStartMessage& m) override {
    return Add("stream_start xid=", m.xid.value(), " first=", m.first_segment);
  }
  absl::Status OnStreamStop() override { return Add("stream_stop"); }
  absl::Status OnStreamCommit(const StreamCommitMessage& m) override {
    return Add("stream_commit xid=", m.xid.value(), " end=", m.end_lsn.ToString());
  }
  absl::Status OnStreamAbort(const StreamAbortMessage& m) override {
    return Add("stream_abort xid=", m.xid.value(), " sub=", m.subxid.value(),
               m.abort_lsn ? absl::StrCat(" lsn=", m.abort_lsn->ToString()) : "");
  }

 private:
  template <typename... T>
  absl::Status Add(const T&... parts) {
    events.push_back(absl::StrCat(parts...));
    return absl::OkStatus();
  }
};

TEST(PgoutputTest, TransactionWithRelationAndRows) {
  Decoder d(1);
  Recorder rec;
  ASSERT_TRUE(d.Decode(Msg('B').U64(0x1000).U64(42).U32(777).str(), rec).ok());
  ASSERT_TRUE(d.Decode(Msg('R')
                           .U32(16384)
                           .Str("public")
                           .Str("orders")
                           .U8('d')
                           .U16(2)
                           .U8(1)
                           .Str("id")
                           .U32(23)
                           .U32(0xFFFFFFFF)
                           .U8(0)
                           .Str("note")
                           .U32(1043)
                           .U32(36)
                           .str(),
                       rec)
                  .ok());
  ASSERT_TRUE(d.Decode(Msg('I').U32(16384).U8('N').U16(2).TextCell("1").U8('n').str(), rec).ok());
  ASSERT_TRUE(d.Decode(Msg('U').U32(16384).U8('N').U16(2).TextCell("1").U8('u').str(), rec).ok());
  ASSERT_TRUE(d.Decode(Msg('U')
                           .U32(16384)
                           .U8('K')
                           .U16(2)
                           .TextCell("1")
                           .U8('n')
                           .U8('N')
                           .U16(2)
                           .TextCell("2")
                           .TextCell("x")
                           .str(),
                       rec)
                  .ok());
  ASSERT_TRUE(
      d.Decode(Msg('D').U32(16384).U8('O').U16(2).TextCell("2").TextCell("x").str(), rec).ok());
  ASSERT_TRUE(d.Decode(Msg('C').U8(0).U64(0x1000).U64(0x1030).U64(42).str(), rec).ok());
  EXPECT_EQ(rec.events, (std::vector<std::string>{
                            "begin final=0/1000 ts=42 xid=777",
                            "relation xid=0 16384 public.orders ri=d [*id:23/-1,note:1043/36]",
                            "insert xid=0 rel=16384 new=[t:1,NULL]",
                            "update rel=16384 old=none[] new=[t:1,UNCHANGED]",
                            "update rel=16384 old=K[t:1,NULL] new=[t:2,t:x]",
                            "delete rel=16384 old=O[t:2,t:x]",
                            "commit lsn=0/1000 end=0/1030 ts=42",
                        }));
}

TEST(PgoutputTest, EmptySchemaMeansPgCatalogAndBinaryCells) {
  Decoder d(2);
  Recorder rec;
  ASSERT_TRUE(d.Decode(Msg('Y').U32(99999).Str("").Str("mood").str(), rec).ok());
  ASSERT_TRUE(
      d.Decode(Msg('I').U32(5).U8('N').U16(1).BinaryCell(std::string("\0\0\0\x2a", 4)).str(), rec)
          .ok());
  EXPECT_EQ(rec.events, (std::vector<std::string>{"type 99999 pg_catalog.mood",
                                                  "insert xid=0 rel=5 new=[b:4]"}));
}

TEST(PgoutputTest, TruncateOriginAndMessage) {
  Decoder d(1);
  Recorder rec;
  ASSERT_TRUE(d.Decode(Msg('T').U32(2).U8(3).U32(10).U32(11).str(), rec).ok());
  ASSERT_TRUE(d.Decode(Msg('O').U64(0x20).Str("upstream").str(), rec).ok());
  ASSERT_TRUE(
      d.Decode(Msg('M').U8(1).U64(0x30).Str("ductstream").U32(5).Raw("hello").str(), rec).ok());
  EXPECT_EQ(rec.events,
            (std::vector<std::string>{"truncate cascade=1 restart=1 [10,11]",
                                      "origin upstream 0/20", "message tx=1 ductstream=hello"}));
}

TEST(PgoutputTest, StreamedTransactionCarriesXid) {
  Decoder d(2);
  Recorder rec;
  ASSERT_TRUE(d.Decode(Msg('S').U32(900).U8(1).str(), rec).ok());
  EXPECT_TRUE(d.in_stream());
  ASSERT_TRUE(d.Decode(Msg('R').U32(900).U32(7).Str("s").Str("t").U8('f').U16(0).str(), rec).ok());
  ASSERT_TRUE(d.Decode(Msg('I').U32(900).U32(7).U8('N').U16(0).str(), rec).ok());
  ASSERT_TRUE(d.Decode(Msg('E').str(), rec).ok());
  EXPECT_FALSE(d.in_stream());
  ASSERT_TRUE(d.Decode(Msg('A').U32(900).U32(901).str(), rec).ok());
  ASSERT_TRUE(d.Decode(Msg('c').U32(900).U8(0).U64(0x50).U64(0x60).U64(7).str(), rec).ok());
  EXPECT_EQ(rec.events, (std::vector<std::string>{
                            "stream_start xid=900 first=1", "relation xid=900 7 s.t ri=f []",
                            "insert xid=900 rel=7 new=[]", "stream_stop",
                            "stream_abort xid=900 sub=901", "stream_commit xid=900 end=0/60"}));
}

TEST(PgoutputTest, ParallelStreamAbortCarriesLsn) {
  Decoder d(4, /*parallel_streaming=*/true);
  Recorder rec;
  ASSERT_TRUE(d.Decode(Msg('A').U32(5).U32(5).U64(0x99).U64(1).str(), rec).ok());
  EXPECT_EQ(rec.events, (std::vector<std::string>{"stream_abort xid=5 sub=5 lsn=0/99"}));
  // Without parallel streaming the same bytes have 16 trailing bytes: an error, not a guess.
  Decoder plain(4);
  EXPECT_FALSE(plain.Decode(Msg('A').U32(5).U32(5).U64(0x99).U64(1).str(), rec).ok());
}

TEST(PgoutputTest, MalformedInputIsAnErrorNotACrash) {
  Recorder rec;
  struct Case {
    std::string bytes;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"", "empty"},
      {Msg('B').U64(1).str(), "truncated"},
      {Msg('C').U8(0).U64(1).U64(2).U64(3).U8(9).str(), "trailing"},
      {Msg('R').U32(1).Raw("public").str(), "unterminated"},
      {Msg('R').U32(1).Str("s").Str("t").U8('z').U16(0).str(), "replica identity"},
      {Msg('I').U32(1).U8('X').str(), "expected 'N'"},
      {Msg('I').U32(1).U8('N').U16(1).U8('q').str(), "cell kind"},
      {Msg('I').U32(1).U8('N').U16(1).U8('t').U32(100).Raw("ab").str(), "truncated"},
      {Msg('I').U32(1).U8('N').U16(1).U8('t').U32(0x80000000).str(), "negative length"},
      {Msg('D').U32(1).U8('N').str(), "expected 'K' or 'O'"},
      {Msg('T').U32(1000000).U8(0).str(), "truncated"},
      {Msg('E').str(), "without Stream Start"},
      {Msg('Z').str(), "unknown pgoutput message"},
  };
  for (const auto& c : cases) {
    Decoder d(2);
    absl::Status s = d.Decode(c.bytes, rec);
    EXPECT_FALSE(s.ok()) << c.expect;
    EXPECT_NE(s.message().find(c.expect), absl::string_view::npos) << s.message();
  }
  Decoder v1(1);
  EXPECT_FALSE(v1.Decode(Msg('S').U32(1).U8(1).str(), rec).ok());  // streaming needs v2
  Decoder d(2);
  EXPECT_EQ(d.Decode(Msg('P').str(), rec).code(), absl::StatusCode::kUnimplemented);
}

TEST(PgoutputTest, TimestampsConvertToUnixEpoch) {
  EXPECT_EQ(PgTimestampToUnixMicros(0), 946684800000000LL);  // 2000-01-01T00:00:00Z
}

}  // namespace
}  // namespace ductstream::postgres::pgoutput
