#pragma once

// The `kafka` destination, also registered as `bufstream`: change batches produced to a
// Kafka-API broker (Apache Kafka, Bufstream, Redpanda) with librdkafka.
//
// Messages (options in kafka_options.h):
//   message_mode=batch   one message per relation of each batch: the relation's change records
//                        encoded as one document in the wire format; key "schema.table", so a
//                        table's messages keep their order on a multi-partition topic.
//   message_mode=record  one message per change; key = the row's identity columns as a JSON
//                        object with sorted keys ({"id":42}), none for truncate. The value is
//                        the change's JSON line (json), or the wire format's encoding of a
//                        one-row slice of the batch (arrow, parquet, avro, proto): each message
//                        is then a self-contained document with its own schema.
// Topic: the `topic` option with {schema} and {table} replaced. Headers (UTF-8 text):
//   ductstream-format, ductstream-content-type, ductstream-namespace (PostgreSQL schema),
//   ductstream-table, ductstream-schema ("schema.table"), ductstream-op, ductstream-commit-lsn
//   and ductstream-seq (the first change's identity in batch mode), ductstream-lsn (record
//   mode), ductstream-last-commit-lsn and ductstream-rows (batch mode).
//
// Durability: Write returns once every message of the batch has a successful delivery report
// (acks=all by default, idempotent producer). Messages that fail with a retriable error (broker
// down, leader moving, timeouts) are produced again with exponential backoff until they are
// delivered (or retry_timeout passes): the checkpoint does not move meanwhile. Permanent errors
// (message over the size limit, authorization, invalid topic) fail the batch with a message
// that names the topic, the relation and the size; nothing is dropped.
// With transactional_id, each batch is one Kafka transaction, committed before Write returns;
// a failed attempt is aborted and the whole batch produced again, so read_committed consumers
// never see a change twice.
//
// Thread-compatible: owned by the flow's writer thread (librdkafka keeps its own threads).

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "ductstream/destination/kafka_options.h"
#include "ductstream/runner/destination.h"

namespace ductstream::destination {

struct KafkaDestinationConfig {
  std::string name;
  /// "kafka" or "bufstream" (used in log and error messages only).
  std::string type = "kafka";
  KafkaOptions options;
};

/// Validates the configuration and creates the producer (librdkafka connects in the background;
/// an unreachable broker is not an error until a batch cannot be delivered).
absl::StatusOr<std::unique_ptr<runner::Destination>> MakeKafkaDestination(
    KafkaDestinationConfig config);

}  // namespace ductstream::destination
