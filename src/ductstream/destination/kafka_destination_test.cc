// The kafka destination against librdkafka's mock cluster (in-process, no network beyond
// loopback): messages, keys and headers as a consumer sees them, the size limit, and outages
// injected with the mock's broker-down switch. The real broker is exercised end to end in
// tests/e2e/kafka_destination_test.cc.

#include "ductstream/destination/kafka_destination.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ductstream/codec/row_json.h"
#include "ductstream/codec/testing_batches.h"

namespace ductstream::destination {
namespace {

using ::testing::HasSubstr;

struct Consumed {
  std::string key;
  bool has_key = false;
  std::string value;
  std::map<std::string, std::string> headers;
};

class MockCluster {
 public:
  MockCluster() {
    char errstr[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    mock_ = rd_kafka_mock_cluster_new(rk_, 1);
    // One partition each (the mock would auto-create four), so a consumer of partition 0 sees
    // every message in production order.
    for (const char* topic : {"cdc.public.widgets", "fixed", "rec-arrow", "rec-parquet", "rec-avro",
                              "rec-proto", "tx", "ductstream.progress.tx-replay"}) {
      rd_kafka_mock_topic_create(mock_, topic, 1, 1);
    }
  }
  ~MockCluster() {
    rd_kafka_mock_cluster_destroy(mock_);
    rd_kafka_destroy(rk_);
  }
  std::string bootstraps() const { return rd_kafka_mock_cluster_bootstraps(mock_); }
  rd_kafka_mock_cluster_t* mock() { return mock_; }

  /// Reads partition 0 of `topic` from the beginning until `want` messages or `wait`.
  std::vector<Consumed> Read(const std::string& topic, size_t want,
                             absl::Duration wait = absl::Seconds(15)) {
    char errstr[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps().c_str(), errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", "test", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "isolation.level", "read_uncommitted", errstr, sizeof(errstr));
    rd_kafka_t* c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic.c_str(), 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    std::vector<Consumed> out;
    const absl::Time deadline = absl::Now() + wait;
    while (out.size() < want && absl::Now() < deadline) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(c, 200);
      if (m == nullptr) continue;
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        Consumed r;
        r.has_key = m->key != nullptr;
        if (r.has_key) r.key.assign(static_cast<const char*>(m->key), m->key_len);
        r.value.assign(static_cast<const char*>(m->payload), m->len);
        rd_kafka_headers_t* hdrs = nullptr;
        if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
          const char* name;
          const void* value;
          size_t size;
          for (size_t i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &value, &size); ++i) {
            r.headers[name] = std::string(static_cast<const char*>(value), size);
          }
        }
        out.push_back(std::move(r));
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return out;
  }

 private:
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_mock_cluster_t* mock_ = nullptr;
};

cdc::ChangeBatch SampleBatch() {
  cdc::ChangeBatch batch;
  batch.relations.push_back(codec::sample::MakeSampleChanges());
  batch.checkpoint = Lsn(0x1000);
  return batch;
}

class KafkaDestinationTest : public ::testing::Test {
 protected:
  std::unique_ptr<runner::Destination> Make(KafkaOptions options) {
    options.brokers = cluster_.bootstraps();
    if (options.topic.empty()) options.topic = "cdc.{schema}.{table}";
    KafkaDestinationConfig config;
    config.name = "k";
    config.options = std::move(options);
    auto d = MakeKafkaDestination(std::move(config));
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? std::move(*d) : nullptr;
  }

  MockCluster cluster_;
};

TEST_F(KafkaDestinationTest, BatchModeOneMessagePerRelationWithHeaders) {
  auto d = Make({});
  ASSERT_NE(d, nullptr);
  ASSERT_TRUE(d->Write(SampleBatch()).ok());
  ASSERT_TRUE(d->Close().ok());
  auto got = cluster_.Read("cdc.public.widgets", 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].key, "public.widgets");
  EXPECT_EQ(got[0].headers["ductstream-format"], "arrow");
  EXPECT_EQ(got[0].headers["ductstream-content-type"], "application/vnd.apache.arrow.stream");
  EXPECT_EQ(got[0].headers["ductstream-namespace"], "public");
  EXPECT_EQ(got[0].headers["ductstream-table"], "widgets");
  EXPECT_EQ(got[0].headers["ductstream-schema"], "public.widgets");
  EXPECT_EQ(got[0].headers["ductstream-rows"], "6");
  EXPECT_THAT(got[0].headers["ductstream-op"], HasSubstr("insert,update,delete"));
  // The Arrow IPC stream starts with the continuation marker.
  ASSERT_GE(got[0].value.size(), 4u);
  EXPECT_EQ(static_cast<unsigned char>(got[0].value[0]), 0xFF);
}

TEST_F(KafkaDestinationTest, RecordModeOneMessagePerChangeKeyedByPrimaryKey) {
  KafkaOptions o;
  o.message_mode = KafkaMessageMode::kRecord;
  o.format = codec::WireFormat::kJson;
  o.topic = "fixed";
  auto d = Make(o);
  ASSERT_NE(d, nullptr);
  ASSERT_TRUE(d->Write(SampleBatch()).ok());
  auto got = cluster_.Read("fixed", 6);
  ASSERT_EQ(got.size(), 6u);
  const auto& data = codec::sample::Data();
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].headers["ductstream-op"], data.op[i]) << i;
    EXPECT_EQ(got[i].headers["ductstream-seq"], absl::StrCat(data.seq[i])) << i;
    EXPECT_EQ(got[i].headers["ductstream-format"], "json");
    EXPECT_THAT(got[i].value, HasSubstr(absl::StrCat("\"op\":\"", data.op[i], "\""))) << i;
    if (data.op[i] == "truncate") {
      EXPECT_FALSE(got[i].has_key) << "a truncate has no row to key";
    } else {
      EXPECT_TRUE(got[i].has_key) << i;
      EXPECT_THAT(got[i].key, HasSubstr("\"account\":")) << i;
      EXPECT_THAT(got[i].key, HasSubstr("\"id\":")) << i;
    }
  }
}

TEST_F(KafkaDestinationTest, RecordModeEncodesOneRowDocumentsInEveryFormat) {
  for (codec::WireFormat f : {codec::WireFormat::kArrow, codec::WireFormat::kParquet,
                              codec::WireFormat::kAvro, codec::WireFormat::kProto}) {
    KafkaOptions o;
    o.message_mode = KafkaMessageMode::kRecord;
    o.format = f;
    o.topic = absl::StrCat("rec-", codec::WireFormatName(f));
    auto d = Make(o);
    ASSERT_NE(d, nullptr);
    ASSERT_TRUE(d->Write(SampleBatch()).ok()) << codec::WireFormatName(f);
    auto got = cluster_.Read(o.topic, 6);
    EXPECT_EQ(got.size(), 6u) << codec::WireFormatName(f);
  }
}

TEST_F(KafkaDestinationTest, MessageOverTheSizeLimitIsAnErrorNeverADrop) {
  KafkaOptions o;
  o.max_message_bytes = 1000;  // the sample batch encodes to several KB
  auto d = Make(o);
  ASSERT_NE(d, nullptr);
  absl::Status s = d->Write(SampleBatch());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), HasSubstr("over the size limit"));
  EXPECT_THAT(s.message(), HasSubstr("cdc.public.widgets"));
  EXPECT_THAT(s.message(), HasSubstr("max_message_bytes=1000"));
}

TEST_F(KafkaDestinationTest, BrokerDownIsRetriedUntilItReturns) {
  KafkaOptions o;
  o.delivery_timeout = absl::Seconds(1);
  o.retry_backoff = absl::Milliseconds(100);
  o.retry_backoff_max = absl::Milliseconds(400);
  auto d = Make(o);
  ASSERT_NE(d, nullptr);
  rd_kafka_mock_broker_set_down(cluster_.mock(), 1);
  std::thread up([&] {
    absl::SleepFor(absl::Seconds(3));
    rd_kafka_mock_broker_set_up(cluster_.mock(), 1);
  });
  const absl::Time start = absl::Now();
  absl::Status s = d->Write(SampleBatch());
  up.join();
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_GE(absl::Now() - start, absl::Seconds(2)) << "Write returned while the broker was down";
  EXPECT_GE(cluster_.Read("cdc.public.widgets", 1).size(), 1u);
}

TEST_F(KafkaDestinationTest, RetryTimeoutEndsTheWaitWithARetriableError) {
  KafkaOptions o;
  o.delivery_timeout = absl::Milliseconds(500);
  o.retry_backoff = absl::Milliseconds(100);
  o.retry_timeout = absl::Seconds(2);
  auto d = Make(o);
  ASSERT_NE(d, nullptr);
  rd_kafka_mock_broker_set_down(cluster_.mock(), 1);
  absl::Status s = d->Write(SampleBatch());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_THAT(s.message(), HasSubstr("retry_timeout"));
  rd_kafka_mock_broker_set_up(cluster_.mock(), 1);
}

TEST_F(KafkaDestinationTest, BadLibrdkafkaPropertyFailsAtCreation) {
  KafkaOptions o;
  o.brokers = "x";
  o.topic = "t";
  o.librdkafka["no.such.property"] = "1";
  KafkaDestinationConfig config;
  config.name = "k";
  config.options = o;
  auto d = MakeKafkaDestination(config);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(d.status().message(), HasSubstr("no.such.property"));
}

// --- transactional exactly-once ------------------------------------------------------------

cdc::RelationChanges SampleSlice(int64_t offset, int64_t length) {
  cdc::RelationChanges changes = codec::sample::MakeSampleChanges();
  const auto& data = codec::sample::Data();
  changes.records = changes.records->Slice(offset, length);
  changes.first_commit_lsn = Lsn(data.commit_lsn[offset]);
  changes.first_seq = data.seq[offset];
  return changes;
}

// The identities of the rows of every relation of `batch`, in order.
std::vector<std::pair<uint64_t, int64_t>> Identities(const cdc::ChangeBatch& batch) {
  std::vector<std::pair<uint64_t, int64_t>> out;
  for (const auto& changes : batch.relations) {
    const auto* commit = static_cast<const arrow::UInt64Array*>(
        changes.records->GetColumnByName(cdc::kCommitLsnColumn).get());
    const auto* seq = static_cast<const arrow::Int64Array*>(
        changes.records->GetColumnByName(cdc::kSeqColumn).get());
    for (int64_t r = 0; r < changes.num_rows(); ++r) {
      out.emplace_back(commit->Value(r), seq->Value(r));
    }
  }
  return out;
}

TEST(ChangePositionTest, LastChangePositionIsTheHighestIdentity) {
  const auto& data = codec::sample::Data();
  auto last = LastChangePosition(SampleBatch());
  ASSERT_TRUE(last.has_value());
  // The sample's last row is a snapshot row ("load"), which never counts as stream progress.
  ASSERT_EQ(data.op.back(), "load");
  EXPECT_EQ(last->commit_lsn, Lsn(data.commit_lsn[data.op.size() - 2]));
  EXPECT_EQ(last->seq, data.seq[data.op.size() - 2]);
  EXPECT_FALSE(LastChangePosition(cdc::ChangeBatch{}).has_value());
  // Identities compare by commit LSN first, then seq.
  EXPECT_LT((ChangePosition{Lsn(5), 9}), (ChangePosition{Lsn(6), 0}));
  EXPECT_LT((ChangePosition{Lsn(6), 0}), (ChangePosition{Lsn(6), 1}));
}

TEST(ChangePositionTest, DropChangesThroughKeepsHigherSeqOfTheSameCommit) {
  const auto& data = codec::sample::Data();
  const cdc::ChangeBatch batch = SampleBatch();
  int64_t dropped = -1;
  // Through the first change of the first transaction: its second change (same commit LSN,
  // seq 1) must still be written.
  cdc::ChangeBatch rest =
      DropChangesThrough(batch, ChangePosition{Lsn(data.commit_lsn[0]), 0}, &dropped);
  EXPECT_EQ(dropped, 1);
  ASSERT_EQ(rest.relations.size(), 1u);
  EXPECT_EQ(rest.num_rows(), 5);
  EXPECT_EQ(rest.relations[0].first_commit_lsn, Lsn(data.commit_lsn[1]));
  EXPECT_EQ(rest.relations[0].first_seq, 1);
  EXPECT_EQ(rest.checkpoint, batch.checkpoint);
  EXPECT_EQ(Identities(rest).front(), std::make_pair(data.commit_lsn[1], data.seq[1]));

  // Through a whole transaction, between two stored identities, and past everything.
  rest = DropChangesThrough(batch, ChangePosition{Lsn(data.commit_lsn[3]), 0}, &dropped);
  EXPECT_EQ(dropped, 4);
  EXPECT_EQ(Identities(rest),
            (std::vector<std::pair<uint64_t, int64_t>>{{data.commit_lsn[4], data.seq[4]},
                                                       {data.commit_lsn[5], data.seq[5]}}));
  rest = DropChangesThrough(batch, ChangePosition{Lsn(data.commit_lsn[3] + 1), 0}, &dropped);
  EXPECT_EQ(dropped, 4);
  rest = DropChangesThrough(batch, ChangePosition{Lsn(data.commit_lsn[4]), data.seq[4]}, &dropped);
  EXPECT_EQ(dropped, 5);
  // Snapshot rows are never skipped, whatever their label: a chunk copied again after a crash
  // or a backfill may sit below the recorded position although no run delivered it.
  ASSERT_EQ(data.op[5], "load");
  EXPECT_EQ(Identities(rest),
            (std::vector<std::pair<uint64_t, int64_t>>{{data.commit_lsn[5], data.seq[5]}}));
  rest = DropChangesThrough(batch, ChangePosition{Lsn(~uint64_t{0} >> 1), 0}, &dropped);
  EXPECT_EQ(dropped, 5);
  EXPECT_EQ(rest.num_rows(), 1);
  EXPECT_EQ(rest.checkpoint, batch.checkpoint);

  cdc::ChangeBatch streamed;
  streamed.relations = {SampleSlice(0, 5)};
  rest =
      DropChangesThrough(streamed, ChangePosition{Lsn(data.commit_lsn[4]), data.seq[4]}, &dropped);
  EXPECT_EQ(dropped, 5);
  EXPECT_TRUE(rest.relations.empty()) << "a relation wholly committed is left out";

  // Before everything: the relation as it was (no slice).
  rest = DropChangesThrough(batch, ChangePosition{Lsn(1), 0}, &dropped);
  EXPECT_EQ(dropped, 0);
  ASSERT_EQ(rest.relations.size(), 1u);
  EXPECT_EQ(rest.relations[0].records.get(), batch.relations[0].records.get());
}

TEST(ChangePositionTest, DropChangesThroughWorksPerRelation) {
  const auto& data = codec::sample::Data();
  cdc::ChangeBatch batch;
  batch.relations = {SampleSlice(0, 3), SampleSlice(3, 3)};
  int64_t dropped = -1;
  cdc::ChangeBatch rest =
      DropChangesThrough(batch, ChangePosition{Lsn(data.commit_lsn[2]), data.seq[2]}, &dropped);
  EXPECT_EQ(dropped, 3);
  ASSERT_EQ(rest.relations.size(), 1u);
  EXPECT_EQ(rest.relations[0].records.get(), batch.relations[1].records.get());
  rest = DropChangesThrough(batch, ChangePosition{Lsn(data.commit_lsn[3]), data.seq[3]}, &dropped);
  EXPECT_EQ(dropped, 4);
  ASSERT_EQ(rest.relations.size(), 1u);
  EXPECT_EQ(rest.relations[0].num_rows(), 2);
  EXPECT_EQ(rest.relations[0].first_commit_lsn, Lsn(data.commit_lsn[4]));
}

TEST(ChangePositionTest, ProgressRecordRoundTrips) {
  const ChangePosition p{*Lsn::Parse("16/B374D848"), 42};
  const std::string value = EncodeKafkaProgress(p, *Lsn::Parse("16/B374D900"));
  EXPECT_THAT(value, HasSubstr("\"commit_lsn\":\"16/B374D848\""));
  EXPECT_THAT(value, HasSubstr("\"checkpoint\":\"16/B374D900\""));
  auto parsed = ParseKafkaProgress(value);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, p);
  EXPECT_THAT(EncodeKafkaProgress(p, Lsn()), HasSubstr("\"checkpoint\":null"));
  for (const char* bad :
       {"", "{", "[]", "{\"seq\":1}", "{\"commit_lsn\":\"0/1\"}",
        "{\"commit_lsn\":\"zz\",\"seq\":1}", "{\"commit_lsn\":\"0/1\",\"seq\":\"1\"}"}) {
    EXPECT_FALSE(ParseKafkaProgress(bad).ok()) << bad;
  }
}

// A producer that committed part of the changes and "crashed" (its checkpoint never moved): the
// next producer with the same transactional id is handed the whole batch again and writes only
// what the first did not commit.
TEST_F(KafkaDestinationTest, TransactionalReplayAfterACrashWritesEveryChangeOnce) {
  const auto& data = codec::sample::Data();
  KafkaOptions o;
  o.message_mode = KafkaMessageMode::kRecord;
  o.format = codec::WireFormat::kJson;
  o.topic = "tx";
  o.transactional_id = "tx-replay";
  {
    auto first = Make(o);
    ASSERT_NE(first, nullptr);
    cdc::ChangeBatch part;
    part.relations.push_back(SampleSlice(0, 2));  // the first transaction's two changes
    ASSERT_TRUE(first->Write(part).ok());
    // No Close: a crash.
  }
  auto second = Make(o);
  ASSERT_NE(second, nullptr);
  cdc::ChangeBatch first_half;
  first_half.relations.push_back(SampleSlice(0, 3));
  ASSERT_TRUE(second->Write(first_half).ok());
  ASSERT_TRUE(second->Write(SampleBatch()).ok()) << "a replay of an overlapping batch";
  ASSERT_TRUE(second->Close().ok());

  // The progress topic holds the last change written.
  auto progress = cluster_.Read(KafkaProgressTopic(o), 3, absl::Seconds(10));
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back().key, "tx-replay");
  auto last = ParseKafkaProgress(progress.back().value);
  ASSERT_TRUE(last.ok()) << last.status();
  // The last streamed change: the sample's final row is a snapshot row, which is not progress.
  EXPECT_EQ(*last, (ChangePosition{Lsn(data.commit_lsn[4]), data.seq[4]}));
  auto got = cluster_.Read("tx", 7, absl::Seconds(3));
  ASSERT_EQ(got.size(), 6u) << "every change exactly once";
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].headers["ductstream-commit-lsn"], Lsn(data.commit_lsn[i]).ToString()) << i;
    EXPECT_EQ(got[i].headers["ductstream-seq"], absl::StrCat(data.seq[i])) << i;
  }
}

// What the data path does with a destination that prepares: messages rendered on other threads
// (a few batches ahead), produced in batch order by the writer; a prepared batch that is dropped
// unused (the flow stopped first) produces nothing.
TEST_F(KafkaDestinationTest, PreparedBatchesAreProducedInOrder) {
  const auto& data = codec::sample::Data();
  KafkaOptions o;
  o.message_mode = KafkaMessageMode::kRecord;
  o.format = codec::WireFormat::kJson;
  o.topic = "fixed";
  auto d = Make(o);
  ASSERT_NE(d, nullptr);
  ASSERT_TRUE(d->prepares());
  const cdc::ChangeBatch batch = SampleBatch();
  auto first = std::async(std::launch::async, [&] { return d->Prepare(batch); });
  auto second = std::async(std::launch::async, [&] { return d->Prepare(batch); });
  {
    auto dropped = d->Prepare(batch);
    ASSERT_TRUE(dropped.ok()) << dropped.status();
  }
  auto one = first.get();
  auto two = second.get();
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_TRUE(two.ok()) << two.status();
  ASSERT_TRUE(d->WritePrepared(batch, *std::move(one)).ok());
  ASSERT_TRUE(d->WritePrepared(batch, *std::move(two)).ok());
  ASSERT_TRUE(d->Close().ok());
  const auto got = cluster_.Read("fixed", 2 * data.op.size() + 1, absl::Seconds(3));
  ASSERT_EQ(got.size(), 2 * data.op.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const size_t row = i % data.op.size();
    EXPECT_EQ(got[i].headers.at("ductstream-op"), data.op[row]) << i;
    EXPECT_EQ(got[i].headers.at("ductstream-seq"), absl::StrCat(data.seq[row])) << i;
    EXPECT_EQ(got[i].headers.at("ductstream-lsn"), Lsn(data.lsn[row]).ToString()) << i;
  }

  o.transactional_id = "tx-prepare";
  auto transactional = Make(o);
  ASSERT_NE(transactional, nullptr);
  EXPECT_FALSE(transactional->prepares()) << "what is left to write depends on the progress topic";
}

// The messages of a batch, rendered without a producer (bench/encode_bench.cc measures this).
TEST(KafkaBatchMessagesTest, RecordModeMessagesWithoutAProducer) {
  const auto& data = codec::sample::Data();
  KafkaOptions o;
  o.topic = "cdc.{schema}.{table}";
  o.message_mode = KafkaMessageMode::kRecord;
  o.format = codec::WireFormat::kJson;
  auto messages = KafkaBatchMessages::Create(o);
  ASSERT_TRUE(messages.ok()) << messages.status();
  auto renderer = codec::RowJsonRenderer::Create(codec::sample::MakeSampleChanges());
  ASSERT_TRUE(renderer.ok()) << renderer.status();
  for (int round = 0; round < 2; ++round) {  // the second Build reuses the first one's buffers
    ASSERT_TRUE((*messages)->Build(SampleBatch()).ok());
    ASSERT_EQ((*messages)->size(), data.op.size());
    EXPECT_EQ((*messages)->topics(), std::vector<std::string>{"cdc.public.widgets"});
    for (size_t i = 0; i < data.op.size(); ++i) {
      SCOPED_TRACE(absl::StrCat("round ", round, ", change ", i));
      const auto row = static_cast<int64_t>(i);
      EXPECT_EQ((*messages)->topic(i), "cdc.public.widgets");
      std::string key;
      (*renderer)->AppendKey(row, &key);
      EXPECT_EQ((*messages)->has_key(i), data.op[i] != "truncate");
      EXPECT_EQ((*messages)->key(i), (*messages)->has_key(i) ? key : "");
      std::string value;
      (*renderer)->AppendChange(row, &value);
      EXPECT_EQ((*messages)->value(i), value);
      std::vector<std::pair<std::string, std::string>> headers;
      (*messages)->ForEachHeader(i, [&](absl::string_view name, absl::string_view text) {
        headers.emplace_back(name, text);
      });
      const std::vector<std::pair<std::string, std::string>> want = {
          {"ductstream-format", "json"},
          {"ductstream-content-type", std::string(codec::ContentType(codec::WireFormat::kJson))},
          {"ductstream-namespace", "public"},
          {"ductstream-table", "widgets"},
          {"ductstream-schema", "public.widgets"},
          {"ductstream-op", data.op[i]},
          {"ductstream-lsn", Lsn(data.lsn[i]).ToString()},
          {"ductstream-commit-lsn", Lsn(data.commit_lsn[i]).ToString()},
          {"ductstream-seq", absl::StrCat(data.seq[i])}};
      EXPECT_EQ(headers, want);
      EXPECT_THAT((*messages)->Describe(i),
                  HasSubstr(absl::StrCat("public.widgets (", data.op[i], " at ",
                                         Lsn(data.lsn[i]).ToString(), ", key ")));
    }
  }
  (*messages)->Add("progress", "id", "{}", "the progress record");
  ASSERT_EQ((*messages)->size(), data.op.size() + 1);
  const size_t last = data.op.size();
  EXPECT_EQ((*messages)->topic(last), "progress");
  EXPECT_EQ((*messages)->key(last), "id");
  EXPECT_EQ((*messages)->value(last), "{}");
  EXPECT_EQ((*messages)->Describe(last), "the progress record");
  int headers = 0;
  (*messages)->ForEachHeader(last, [&](absl::string_view, absl::string_view) { ++headers; });
  EXPECT_EQ(headers, 0);
  (*messages)->Clear();
  EXPECT_TRUE((*messages)->empty());
}

}  // namespace
}  // namespace ductstream::destination
