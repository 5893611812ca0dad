#pragma once

// Options of the `kafka` destination and of `bufstream`, the same connector under the name the
// seed uses for Bufstream (any Kafka-API broker works: Apache Kafka, Bufstream, Redpanda).
// One table (KafkaOptionDocs) declares every option once: it drives the unknown-option check,
// the error messages and the reference in docs/connectors.md.

#include <cstdint>
#include <map>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ductstream/codec/codec.h"
#include "ductstream/flow/flow_config.h"

namespace ductstream::destination {

/// batch: one message per relation of each batch (the change records of one table, encoded as
/// one document in the wire format). record: one message per change, keyed by the row's primary
/// key so that log compaction keeps the latest change of every row.
enum class KafkaMessageMode { kBatch, kRecord };

/// The producer's `acks`: the broker answers once the leader alone (kLeader), or every in-sync
/// replica (kAll), has the message; kNone does not wait at all.
enum class KafkaAcks { kNone, kLeader, kAll };

struct KafkaOptions {
  /// Comma-separated host:port list (librdkafka's bootstrap.servers).
  std::string brokers;
  /// A topic name, or a template with {schema} and {table} (e.g. "cdc.{schema}.{table}").
  std::string topic;
  codec::WireFormat format = codec::WireFormat::kArrow;
  /// Kafka compression.type: "none", "gzip", "snappy", "lz4" or "zstd".
  std::string compression = "none";
  KafkaAcks acks = KafkaAcks::kAll;
  KafkaMessageMode message_mode = KafkaMessageMode::kBatch;
  /// Non-empty: a transactional producer, one Kafka transaction per batch, each also holding a
  /// progress record (the last change it wrote) so that a restarted worker skips what an earlier
  /// run already committed: exactly-once for read_committed consumers.
  std::string transactional_id;
  /// The compacted topic of the progress records, keyed by transactional_id. Empty: the default,
  /// KafkaProgressTopic() = "ductstream.progress.<transactional_id>".
  std::string progress_topic;
  /// Idempotent producer (needs acks=all; turned off for the other acks settings).
  bool idempotence = true;
  /// The largest message the producer sends (librdkafka message.max.bytes). A larger message is
  /// an error: it is never dropped.
  int64_t max_message_bytes = 1000000;
  /// How long librdkafka keeps trying to deliver one message before reporting it failed
  /// (message.timeout.ms); the destination then produces it again after a backoff.
  absl::Duration delivery_timeout = absl::Seconds(30);
  absl::Duration retry_backoff = absl::Milliseconds(500);
  absl::Duration retry_backoff_max = absl::Seconds(10);
  /// Zero: retry until the broker takes the batch (the checkpoint does not move meanwhile).
  /// Otherwise Write fails with Unavailable once a batch has been retried this long.
  absl::Duration retry_timeout = absl::ZeroDuration();
  absl::Duration linger = absl::Milliseconds(5);
  std::string client_id = "ductstream";
  /// `librdkafka.<property>` options, passed to librdkafka as they are (TLS, SASL, ...).
  std::map<std::string, std::string> librdkafka;
};

/// The documented options, in the order of the reference.
std::span<const flow::OptionDoc> KafkaOptionDocs();

/// Parses and checks a kafka/bufstream destination's options. `field` names the endpoint in
/// errors ("destinations[0]"); every problem is reported at once, as InvalidArgument.
absl::StatusOr<KafkaOptions> ParseKafkaOptions(const flow::Endpoint& dest, absl::string_view field);

/// The topic for one relation: the template with {schema} and {table} replaced.
std::string KafkaTopicFor(absl::string_view topic_template, absl::string_view schema,
                          absl::string_view table);

absl::string_view KafkaAcksValue(KafkaAcks acks);  // "0", "1", "all"

/// The progress topic of a transactional destination: `progress_topic`, or by default
/// "ductstream.progress.<transactional_id>" (a topic per transactional id: see
/// kafka_destination.h for why it must not be shared by several producers).
std::string KafkaProgressTopic(const KafkaOptions& options);

/// "" when `topic` is a legal Kafka topic name ([a-zA-Z0-9._-], 1 to 249 characters), else why
/// it is not.
std::string KafkaTopicNameProblem(absl::string_view topic);

}  // namespace ductstream::destination
