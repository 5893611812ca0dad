#include "ductstream/destination/kafka_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace ductstream::destination {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

flow::Endpoint Kafka(std::map<std::string, std::string> extra = {}) {
  flow::Endpoint e;
  e.name = "k";
  e.type = "kafka";
  e.options = {{"brokers", "b1:9092, b2:9092"}, {"topic", "ductstream.cdc"}};
  for (auto& [k, v] : extra) e.options[k] = v;
  return e;
}

TEST(KafkaOptionsTest, DefaultsAreDurableAndBatched) {
  auto o = ParseKafkaOptions(Kafka(), "destinations[0]");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->brokers, "b1:9092,b2:9092");
  EXPECT_EQ(o->topic, "ductstream.cdc");
  EXPECT_EQ(o->format, codec::WireFormat::kArrow);
  EXPECT_EQ(o->compression, "none");
  EXPECT_EQ(o->acks, KafkaAcks::kAll);
  EXPECT_TRUE(o->idempotence);
  EXPECT_EQ(o->message_mode, KafkaMessageMode::kBatch);
  EXPECT_TRUE(o->transactional_id.empty());
  EXPECT_EQ(o->max_message_bytes, 1000000);
  EXPECT_EQ(o->delivery_timeout, absl::Seconds(30));
  EXPECT_EQ(o->retry_timeout, absl::ZeroDuration());
  EXPECT_EQ(KafkaAcksValue(o->acks), "all");
}

TEST(KafkaOptionsTest, EveryOptionParses) {
  auto o = ParseKafkaOptions(Kafka({{"format", "json"},
                                    {"compression", "LZ4"},
                                    {"acks", "all"},
                                    {"message_mode", "record"},
                                    {"transactional_id", "tx-1"},
                                    {"progress_topic", "ops.progress"},
                                    {"max_message_bytes", "2MiB"},
                                    {"delivery_timeout", "5s"},
                                    {"retry_backoff", "100ms"},
                                    {"retry_backoff_max", "2s"},
                                    {"retry_timeout", "1m"},
                                    {"linger", "0"},
                                    {"client_id", "me"},
                                    {"idempotence", "yes"},
                                    {"flow_id", "injected"},
                                    {"librdkafka.security.protocol", "plaintext"}}),
                             "destinations[0]");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->format, codec::WireFormat::kJson);
  EXPECT_EQ(o->compression, "lz4");
  EXPECT_EQ(o->message_mode, KafkaMessageMode::kRecord);
  EXPECT_EQ(o->transactional_id, "tx-1");
  EXPECT_EQ(o->progress_topic, "ops.progress");
  EXPECT_EQ(KafkaProgressTopic(*o), "ops.progress");
  EXPECT_EQ(o->max_message_bytes, 2 << 20);
  EXPECT_EQ(o->delivery_timeout, absl::Seconds(5));
  EXPECT_EQ(o->retry_backoff, absl::Milliseconds(100));
  EXPECT_EQ(o->retry_backoff_max, absl::Seconds(2));
  EXPECT_EQ(o->retry_timeout, absl::Minutes(1));
  EXPECT_EQ(o->linger, absl::ZeroDuration());
  EXPECT_EQ(o->client_id, "me");
  EXPECT_EQ(o->librdkafka.at("security.protocol"), "plaintext");
}

TEST(KafkaOptionsTest, AcksSpellings) {
  for (auto [text, acks] :
       std::vector<std::pair<std::string, KafkaAcks>>{{"-1", KafkaAcks::kAll},
                                                      {"ALL", KafkaAcks::kAll},
                                                      {"1", KafkaAcks::kLeader},
                                                      {"leader", KafkaAcks::kLeader},
                                                      {"0", KafkaAcks::kNone},
                                                      {"none", KafkaAcks::kNone}}) {
    auto o = ParseKafkaOptions(Kafka({{"acks", text}}), "d");
    ASSERT_TRUE(o.ok()) << text << ": " << o.status();
    EXPECT_EQ(o->acks, acks) << text;
    // librdkafka's idempotent producer needs acks=all.
    EXPECT_EQ(o->idempotence, acks == KafkaAcks::kAll) << text;
  }
}

TEST(KafkaOptionsTest, EveryProblemIsReportedAtOnceWithItsField) {
  flow::Endpoint e;
  e.options = {{"acks", "most"},           {"compression", "brotli"}, {"message_mode", "rows"},
               {"max_message_bytes", "1"}, {"delivery_timeout", "0"}, {"retry_timeout", "soon"},
               {"topic", "cdc.{tabel}"},   {"idempotence", "maybe"},  {"linger.ms", "5"},
               {"format", "xml"}};
  auto o = ParseKafkaOptions(e, "destinations[1]");
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string m(o.status().message());
  EXPECT_THAT(m, AllOf(HasSubstr("destinations[1].options.brokers: required"),
                       HasSubstr("destinations[1].options.acks: \"most\""),
                       HasSubstr("destinations[1].options.compression: \"brotli\""),
                       HasSubstr("destinations[1].options.message_mode: \"rows\""),
                       HasSubstr("destinations[1].options.max_message_bytes"),
                       HasSubstr("destinations[1].options.delivery_timeout"),
                       HasSubstr("destinations[1].options.retry_timeout"),
                       HasSubstr("destinations[1].options.topic: \"cdc.{tabel}\": unknown "
                                 "placeholder"),
                       HasSubstr("destinations[1].options.idempotence"),
                       HasSubstr("destinations[1].options.linger.ms: unknown option"),
                       HasSubstr("destinations[1].options.format")));
}

TEST(KafkaOptionsTest, TransactionsNeedAcksAllAndIdempotence) {
  auto o = ParseKafkaOptions(Kafka({{"transactional_id", "t"}, {"acks", "1"}}), "d");
  ASSERT_FALSE(o.ok());
  EXPECT_THAT(o.status().message(), HasSubstr("needs acks=all"));
  o = ParseKafkaOptions(Kafka({{"transactional_id", "t"}, {"idempotence", "false"}}), "d");
  ASSERT_FALSE(o.ok());
  EXPECT_THAT(o.status().message(), HasSubstr("needs idempotence=true"));
}

TEST(KafkaOptionsTest, ProgressTopicDefaultsToOnePerTransactionalId) {
  auto o = ParseKafkaOptions(Kafka({{"transactional_id", "orders-flow"}}), "d");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->progress_topic.empty());
  EXPECT_EQ(KafkaProgressTopic(*o), "ductstream.progress.orders-flow");

  // An id that cannot name a topic needs an explicit progress_topic.
  o = ParseKafkaOptions(Kafka({{"transactional_id", "orders flow/1"}}), "d");
  ASSERT_FALSE(o.ok());
  EXPECT_THAT(o.status().message(),
              AllOf(HasSubstr("d.options.transactional_id"), HasSubstr("set progress_topic")));
  o = ParseKafkaOptions(
      Kafka({{"transactional_id", "orders flow/1"}, {"progress_topic", "orders-progress"}}), "d");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(KafkaProgressTopic(*o), "orders-progress");

  o = ParseKafkaOptions(Kafka({{"progress_topic", "p"}}), "d");
  ASSERT_FALSE(o.ok());
  EXPECT_THAT(o.status().message(), HasSubstr("only used with transactional_id"));
  o = ParseKafkaOptions(Kafka({{"transactional_id", "t"}, {"progress_topic", "a b"}}), "d");
  ASSERT_FALSE(o.ok());
  EXPECT_THAT(o.status().message(),
              AllOf(HasSubstr("d.options.progress_topic"), HasSubstr("not a Kafka topic name")));
  EXPECT_EQ(KafkaTopicNameProblem("ok.topic_name-1"), "");
  EXPECT_NE(KafkaTopicNameProblem(std::string(250, 'x')), "");
  EXPECT_NE(KafkaTopicNameProblem(".."), "");
}

TEST(KafkaOptionsTest, TopicTemplate) {
  EXPECT_EQ(KafkaTopicFor("cdc.{schema}.{table}", "public", "orders"), "cdc.public.orders");
  EXPECT_EQ(KafkaTopicFor("fixed", "public", "orders"), "fixed");
  auto o = ParseKafkaOptions(Kafka({{"topic", "{schema}_{table}"}}), "d");
  ASSERT_TRUE(o.ok()) << o.status();
}

TEST(KafkaOptionsTest, DocsListEveryOption) {
  std::vector<std::string> names;
  for (const auto& d : KafkaOptionDocs()) {
    names.emplace_back(d.name);
    EXPECT_FALSE(d.description.empty()) << d.name;
  }
  for (const char* expected : {"brokers", "topic", "format", "compression", "acks", "message_mode",
                               "transactional_id", "progress_topic", "max_message_bytes",
                               "delivery_timeout", "retry_timeout", "librdkafka.<property>"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
  }
}

}  // namespace
}  // namespace ductstream::destination
