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
// a failed attempt is aborted and the whole batch produced again. Exactly-once across crashes:
// every transaction also produces a progress record to a compacted topic (progress_topic,
// key = transactional_id) holding the identity (commit LSN, seq) of the last change it wrote, so
// the record is committed if and only if the data is. A worker killed after Kafka committed a
// batch but before its checkpoint was persisted replays that batch from the older checkpoint;
// the new producer first calls init_transactions (which fences the old producer and completes
// or aborts its open transaction), then reads the progress topic with read_committed to its end
// and drops every replayed change at or before the recorded identity (changes arrive in
// (commit LSN, seq) order). read_committed consumers thus see every change exactly once. The
// progress topic must be written by this transactional_id only: another producer's open
// transaction on the same partition would hold back the last stable offset and hide our latest
// record from the read (the default topic is one per transactional_id).
//
// Rendering: the messages of a batch (keys, values, headers: KafkaBatchMessages) are rendered by
// Prepare on the data path's threads, a few batches ahead, and produced in order by the writer
// thread; a transactional producer renders in Write (what is left to write depends on the
// progress topic). Librdkafka is asked to flush while Write waits for the delivery reports, so
// the end of a batch does not wait out linger.
//
// Thread-compatible: owned by the flow's writer thread (librdkafka keeps its own threads);
// Prepare is thread-safe.

#include <compare>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ductstream/base/lsn.h"
#include "ductstream/cdc/change_batch.h"
#include "ductstream/codec/codec.h"
#include "ductstream/destination/kafka_options.h"
#include "ductstream/runner/destination.h"

namespace ductstream::destination {

struct KafkaDestinationConfig {
  std::string name;
  /// "kafka" or "bufstream" (used in log and error messages only).
  std::string type = "kafka";
  KafkaOptions options;
};

/// The messages that the destination produces for one batch, in produce order (topic, key,
/// value, headers), built without a producer: the destination builds its messages with it, and
/// bench/encode_bench.cc measures what record mode costs per change without a broker.
/// Keys and values of all messages are rendered back to back into one buffer that is kept from
/// batch to batch, and header values are formatted when asked for, so a change costs no heap
/// allocation of its own (record mode sends ~10 000 messages per batch).
/// Lifecycle: Create, then Build per batch (replacing the previous batch's messages); accessors
/// for i in [0, size()), valid until the next Build/Clear (the messages keep what they need of
/// the batch alive). Thread-compatible.
class KafkaBatchMessages {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaBatchMessages>> Create(const KafkaOptions& options);
  ~KafkaBatchMessages();
  KafkaBatchMessages(const KafkaBatchMessages&) = delete;
  KafkaBatchMessages& operator=(const KafkaBatchMessages&) = delete;

  /// Replaces the messages with those of `batch`. Errors name the relation (encoding failures,
  /// a column without a JSON rendering).
  absl::Status Build(const cdc::ChangeBatch& batch);
  /// Appends a message without headers (the transactional progress record); `what` names it in
  /// error messages.
  void Add(const std::string& topic, absl::string_view key, absl::string_view value,
           std::string what);
  void Clear();

  size_t size() const { return messages_.size(); }
  bool empty() const { return messages_.empty(); }
  /// The distinct topics of the messages; message i goes to topics()[topic_index(i)].
  const std::vector<std::string>& topics() const { return topics_; }
  size_t topic_index(size_t i) const { return messages_[i].topic; }
  const std::string& topic(size_t i) const { return topics_[messages_[i].topic]; }
  /// False for a truncate in record mode (no row to key).
  bool has_key(size_t i) const { return messages_[i].has_key; }
  absl::string_view key(size_t i) const {
    return absl::string_view(data_.data() + messages_[i].key_offset, messages_[i].key_size);
  }
  absl::string_view value(size_t i) const {
    return absl::string_view(data_.data() + messages_[i].value_offset, messages_[i].value_size);
  }
  /// Calls `f(name, value)` for each header of message i, in order (kafka_destination.h's top
  /// comment lists them). The views are valid during the call only.
  void ForEachHeader(size_t i,
                     absl::FunctionRef<void(absl::string_view, absl::string_view)> f) const;
  /// Names message i in error messages: "public.t (update at 0/16B3748, key {"id":1})".
  std::string Describe(size_t i) const;

 private:
  struct Relation;
  struct Message {
    uint32_t relation = 0;  // index into relations_, or kNoRelation (Add)
    uint32_t topic = 0;     // index into topics_
    int64_t row = -1;       // record mode: the change's row; Add: index into added_what_
    size_t key_offset = 0;  // into data_
    size_t key_size = 0;
    size_t value_offset = 0;
    size_t value_size = 0;
    bool has_key = false;
  };
  static constexpr uint32_t kNoRelation = ~uint32_t{0};

  explicit KafkaBatchMessages(const KafkaOptions& options);
  absl::Status BuildRelation(const cdc::RelationChanges& changes);
  uint32_t TopicIndex(const std::string& topic);

  const KafkaOptions options_;
  std::unique_ptr<codec::Encoder> encoder_;
  std::string data_;  // every message's key and value, back to back
  std::vector<std::string> topics_;
  std::vector<Relation> relations_;
  std::vector<Message> messages_;
  std::vector<std::string> added_what_;  // Describe() of the Add()ed messages, in order
};

/// Validates the configuration and creates the producer (librdkafka connects in the background;
/// an unreachable broker is not an error until a batch cannot be delivered).
absl::StatusOr<std::unique_ptr<runner::Destination>> MakeKafkaDestination(
    KafkaDestinationConfig config);

// --- exactly-once bookkeeping of the transactional mode (separate for unit tests) -------------

/// A change's identity (change_batch.h): (__commit_lsn, __seq). A flow's changes arrive in
/// increasing order of it, and a replay from a checkpoint rebuilds the same identities.
struct ChangePosition {
  Lsn commit_lsn;
  int64_t seq = 0;

  friend auto operator<=>(const ChangePosition&, const ChangePosition&) = default;
  /// "0/16B3748:3"
  std::string ToString() const;
};

/// The highest identity in `batch`, or none when no change has one (commit LSN 0/0).
std::optional<ChangePosition> LastChangePosition(const cdc::ChangeBatch& batch);

/// `batch` without its changes at or before `through`: what is left to write once a progress
/// record says that everything up to `through` is committed. A relation wholly at or before it is
/// left out, a relation partly so is sliced (no copy; its first_commit_lsn/first_seq become those
/// of its first remaining change). Changes without an identity (commit LSN 0/0) are kept.
/// `*dropped` is set to the number of changes left out. The checkpoint is kept.
cdc::ChangeBatch DropChangesThrough(const cdc::ChangeBatch& batch, const ChangePosition& through,
                                    int64_t* dropped);

/// The value of a progress record, JSON:
/// {"commit_lsn":"0/16B3748","seq":3,"checkpoint":"0/16B3790"} (checkpoint: the batch's, or
/// null when the batch ends inside a transaction).
std::string EncodeKafkaProgress(const ChangePosition& last, Lsn checkpoint);
/// The last change's identity from a progress record's value.
absl::StatusOr<ChangePosition> ParseKafkaProgress(absl::string_view value);

}  // namespace ductstream::destination
