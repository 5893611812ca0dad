#include "ductstream/destination/kafka_destination.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ductstream/base/logging.h"
#include "ductstream/base/lsn.h"
#include "ductstream/base/status.h"
#include "ductstream/codec/codec.h"
#include "ductstream/codec/row_json.h"

namespace ductstream::destination {
namespace {

spdlog::logger& Log() {
  static const auto logger = base::GetLogger("kafka");
  return *logger;
}

int64_t Millis(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

// The delivery state of one message of a batch (the opaque of its produce call), written by the
// delivery report callback. The message's key and value stay in the KafkaBatchMessages until
// every report has arrived: librdkafka reads the value in place (no copy).
struct Delivery {
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  bool delivered = false;
};

// Errors that producing again cannot fix: they fail the flow with their reason. Everything else
// (broker down, leader elections, timeouts, throttling) is retried.
bool IsPermanent(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
      return true;
    default:
      return false;
  }
}

// Message sets of batches prepared ahead (Destination::Prepare), kept for the next batches so
// that their buffers, grown to a batch's size once, are reused rather than allocated and
// page-faulted in again for every batch. Thread-safe; shared with the prepared batches, which may
// outlive the destination.
class MessageSetPool {
 public:
  explicit MessageSetPool(KafkaOptions options) : options_(std::move(options)) {}

  absl::StatusOr<std::unique_ptr<KafkaBatchMessages>> Get() {
    {
      absl::MutexLock lock(&mu_);
      if (!free_.empty()) {
        std::unique_ptr<KafkaBatchMessages> out = std::move(free_.back());
        free_.pop_back();
        return out;
      }
    }
    return KafkaBatchMessages::Create(options_);
  }

  void Put(std::unique_ptr<KafkaBatchMessages> messages) {
    messages->Clear();
    absl::MutexLock lock(&mu_);
    if (free_.size() < kKeep) free_.push_back(std::move(messages));
  }

 private:
  // Sets come back as fast as the next batches take them (the pipeline prepares prepare_ahead
  // batches ahead of the one being produced): a couple is enough.
  static constexpr size_t kKeep = 2;

  const KafkaOptions options_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<KafkaBatchMessages>> free_ ABSL_GUARDED_BY(mu_);
};

// The messages of one batch, rendered by Prepare on the data path's threads.
struct PreparedMessages final : runner::Prepared {
  std::shared_ptr<MessageSetPool> pool;
  std::unique_ptr<KafkaBatchMessages> messages;

  ~PreparedMessages() override {
    if (messages != nullptr) pool->Put(std::move(messages));
  }
};

bool IsSizeError(rd_kafka_resp_err_t err) {
  return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
         err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE ||
         err == RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE;
}

class KafkaDestination final : public runner::Destination {
 public:
  explicit KafkaDestination(KafkaDestinationConfig config) : config_(std::move(config)) {}
  ~KafkaDestination() override { DestroyProducer(/*flush=*/false); }

  absl::Status Init() {
    pool_ = std::make_shared<MessageSetPool>(config_.options);
    DS_ASSIGN_OR_RETURN(own_, KafkaBatchMessages::Create(config_.options));
    return CreateProducer();
  }

  const std::string& name() const override { return config_.name; }

  absl::Status Write(const cdc::ChangeBatch& batch) override {
    // Written to again after Close (e.g. once an initial snapshot is done): a new producer.
    if (rk_ == nullptr) DS_RETURN_IF_ERROR(CreateProducer());
    messages_ = own_.get();
    if (!opts().transactional_id.empty()) return WriteInTransaction(batch);
    DS_RETURN_IF_ERROR_CTX(messages_->Build(batch), Name());
    if (messages_->empty()) return absl::OkStatus();
    return Deliver();
  }

  // Rendering the messages (the JSON of every change in record mode, the encoding in batch mode)
  // is most of a write's CPU: it runs on the data path's threads, ahead of the ordered produce.
  // A transactional write's messages depend on what the progress topic says is committed, which
  // only the writer knows: it renders in Write.
  bool prepares() const override { return opts().transactional_id.empty(); }

  absl::StatusOr<std::unique_ptr<runner::Prepared>> Prepare(
      const cdc::ChangeBatch& batch) override {
    auto prepared = std::make_unique<PreparedMessages>();
    prepared->pool = pool_;
    DS_ASSIGN_OR_RETURN(prepared->messages, pool_->Get());
    DS_RETURN_IF_ERROR_CTX(prepared->messages->Build(batch), Name());
    return prepared;
  }

  absl::Status WritePrepared(const cdc::ChangeBatch& batch,
                             std::unique_ptr<runner::Prepared> prepared) override {
    auto* messages = dynamic_cast<PreparedMessages*>(prepared.get());
    if (messages == nullptr || !opts().transactional_id.empty()) return Write(batch);
    if (rk_ == nullptr) DS_RETURN_IF_ERROR(CreateProducer());
    if (messages->messages->empty()) return absl::OkStatus();
    messages_ = messages->messages.get();
    absl::Status s = Deliver();
    messages_ = own_.get();  // every report is in: librdkafka holds no pointer into the set
    return s;
  }

  absl::Status Close() override {
    DestroyProducer(/*flush=*/true);
    return absl::OkStatus();
  }

 private:
  const KafkaOptions& opts() const { return config_.options; }

  std::string Name() const { return absl::StrCat(config_.type, " destination ", config_.name); }
  std::string Prefix() const { return absl::StrCat(Name(), ": "); }

  int TransactionTimeoutMs() const {
    return static_cast<int>(std::max<int64_t>(60000, Millis(opts().delivery_timeout) + 10000));
  }

  // Sets a librdkafka property, naming it in the error.
  absl::Status SetProperty(rd_kafka_conf_t* conf, const std::string& key,
                           const std::string& value) const {
    char errstr[512];
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError(
          absl::StrCat(Prefix(), "librdkafka property ", key, "=", value, ": ", errstr));
    }
    return absl::OkStatus();
  }

  // --- producer ------------------------------------------------------------------------------

  absl::Status CreateProducer() {
    char errstr[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    auto set = [&](const std::string& key, const std::string& value) {
      return SetProperty(conf, key, value);
    };
    absl::Status s = [&]() -> absl::Status {
      DS_RETURN_IF_ERROR(set("bootstrap.servers", opts().brokers));
      DS_RETURN_IF_ERROR(set("client.id", opts().client_id));
      DS_RETURN_IF_ERROR(set("acks", std::string(KafkaAcksValue(opts().acks))));
      DS_RETURN_IF_ERROR(set("enable.idempotence", opts().idempotence ? "true" : "false"));
      DS_RETURN_IF_ERROR(set("compression.type", opts().compression));
      DS_RETURN_IF_ERROR(set("message.max.bytes", absl::StrCat(opts().max_message_bytes)));
      DS_RETURN_IF_ERROR(set("message.timeout.ms", absl::StrCat(Millis(opts().delivery_timeout))));
      DS_RETURN_IF_ERROR(set("linger.ms", absl::StrCat(Millis(opts().linger))));
      // The Java client's partitioner, so that keys land where Java producers put them.
      DS_RETURN_IF_ERROR(set("partitioner", "murmur2_random"));
      DS_RETURN_IF_ERROR(set("reconnect.backoff.max.ms", "2000"));
      if (!opts().transactional_id.empty()) {
        DS_RETURN_IF_ERROR(set("transactional.id", opts().transactional_id));
        DS_RETURN_IF_ERROR(set("transaction.timeout.ms", absl::StrCat(TransactionTimeoutMs())));
      }
      for (const auto& [key, value] : opts().librdkafka) DS_RETURN_IF_ERROR(set(key, value));
      return absl::OkStatus();
    }();
    if (!s.ok()) {
      rd_kafka_conf_destroy(conf);
      return s;
    }
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_dr_msg_cb(conf, &KafkaDestination::OnDelivery);
    rd_kafka_conf_set_log_cb(conf, &KafkaDestination::OnLog);
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk_ == nullptr) {
      rd_kafka_conf_destroy(conf);  // not taken over on failure
      return absl::InvalidArgumentError(absl::StrCat(Prefix(), "cannot create producer: ", errstr));
    }
    transactions_ready_ = false;
    // A new producer reads the progress topic again: a commit that reported an error may have
    // succeeded all the same.
    progress_loaded_ = false;
    return absl::OkStatus();
  }

  void DestroyProducer(bool flush) {
    if (rk_ == nullptr) return;
    if (flush) (void)rd_kafka_flush(rk_, 10000);
    // Anything still queued belongs to a batch that was not acknowledged: drop it here, the
    // checkpoint makes the next run produce it again.
    rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    (void)rd_kafka_flush(rk_, 1000);
    for (auto& [topic, handle] : topic_handles_) rd_kafka_topic_destroy(handle);
    topic_handles_.clear();
    rd_kafka_destroy(rk_);
    rk_ = nullptr;
    outstanding_ = 0;
  }

  // The producer's handle of `topic`, made once per producer: producing by topic name would look
  // the name up (under a lock) and take and drop a reference for every message.
  rd_kafka_topic_t* TopicHandle(const std::string& topic) {
    auto it = topic_handles_.find(topic);
    if (it != topic_handles_.end()) return it->second;
    rd_kafka_topic_t* handle = rd_kafka_topic_new(rk_, topic.c_str(), nullptr);
    if (handle != nullptr) topic_handles_.emplace(topic, handle);
    return handle;
  }

  static void OnDelivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<KafkaDestination*>(opaque);
    auto* delivery = static_cast<Delivery*>(m->_private);
    if (delivery != nullptr) {
      delivery->err = m->err;
      delivery->delivered = m->err == RD_KAFKA_RESP_ERR_NO_ERROR;
    }
    --self->outstanding_;
  }

  static void OnLog(const rd_kafka_t* /*rk*/, int level, const char* facility, const char* buf) {
    // syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug.
    if (level <= 3) {
      Log().error("librdkafka {}: {}", facility, buf);
    } else if (level == 4) {
      Log().warn("librdkafka {}: {}", facility, buf);
    } else if (level <= 6) {
      Log().info("librdkafka {}: {}", facility, buf);
    } else {
      Log().debug("librdkafka {}: {}", facility, buf);
    }
  }

  // --- producing ---------------------------------------------------------------------------

  // Not retriable (FailedPrecondition): the same batch would be too large again.
  absl::Status SizeError(size_t i, bool from_broker) const {
    const std::string limit =
        from_broker ? "the broker rejected it as too large (the topic's max.message.bytes)"
                    : absl::StrCat("over max_message_bytes=", opts().max_message_bytes);
    return absl::FailedPreconditionError(absl::StrCat(
        Prefix(), "message of ", messages_->value(i).size() + messages_->key(i).size(),
        " bytes for topic ", messages_->topic(i), ", ", messages_->Describe(i),
        ", is over the size limit: ", limit,
        ". Lower the source's batch_size or max_batch_bytes, use message_mode=record, or raise "
        "max_message_bytes and the topic's max.message.bytes. Nothing was acknowledged."));
  }

  // `from_broker`: the error came in a delivery report rather than from the local produce call.
  absl::Status PermanentError(size_t i, rd_kafka_resp_err_t err, bool from_broker) const {
    if (IsSizeError(err)) return SizeError(i, from_broker);
    return absl::FailedPreconditionError(
        absl::StrCat(Prefix(), "cannot produce to topic ", messages_->topic(i), " (",
                     messages_->Describe(i), "): ", rd_kafka_err2str(err)));
  }

  // Resets the delivery state for a new set of messages and resolves their topics' handles.
  void PrepareToProduce() {
    deliveries_.assign(messages_->size(), Delivery{});
    handles_.clear();
    for (const std::string& topic : messages_->topics()) handles_.push_back(TopicHandle(topic));
  }

  // Enqueues message i in librdkafka. A permanent error is returned; a full local queue is waited
  // out.
  rd_kafka_resp_err_t Produce(size_t i) {
    Delivery& d = deliveries_[i];
    d.err = RD_KAFKA_RESP_ERR_NO_ERROR;
    d.delivered = false;
    rd_kafka_topic_t* topic = handles_[messages_->topic_index(i)];
    if (topic == nullptr) return rd_kafka_last_error();  // rd_kafka_topic_new refused the name
    const absl::string_view key = messages_->key(i);
    const absl::string_view value = messages_->value(i);
    const bool has_key = messages_->has_key(i);
    for (;;) {
      rd_kafka_headers_t* headers = rd_kafka_headers_new(10);
      messages_->ForEachHeader(i, [headers](absl::string_view name, absl::string_view text) {
        rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), text.data(),
                            static_cast<ssize_t>(text.size()));
      });
      ++outstanding_;
      const rd_kafka_resp_err_t err = rd_kafka_producev(
          rk_, RD_KAFKA_V_RKT(topic),
          RD_KAFKA_V_KEY(has_key ? key.data() : nullptr, has_key ? key.size() : 0),
          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
          RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(&d), RD_KAFKA_V_MSGFLAGS(0),
          RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return err;
      --outstanding_;
      rd_kafka_headers_destroy(headers);  // not taken over on failure
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) return err;
      rd_kafka_poll(rk_, 100);  // serves delivery reports, which frees queue space
    }
  }

  // Serves delivery reports until every produced message has one. rd_kafka_flush rather than
  // rd_kafka_poll: while it runs, librdkafka sends at once what it would hold back for linger.ms
  // (nothing more is coming: Write waits for this batch before taking the next).
  void AwaitDeliveries() {
    while (outstanding_ > 0) (void)rd_kafka_flush(rk_, 100);
  }

  // Drops whatever is still queued (their reports arrive with a purge error), then waits for
  // every report so that no callback can touch deliveries_ (nor librdkafka the message buffers)
  // after Write returns.
  void Abandon() {
    if (outstanding_ > 0) rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE);
    AwaitDeliveries();
  }

  absl::Status FatalProducerError() {
    char errstr[512];
    const rd_kafka_resp_err_t err = rd_kafka_fatal_error(rk_, errstr, sizeof(errstr));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
    return absl::UnavailableError(
        absl::StrCat(Prefix(), "producer failed: ", rd_kafka_err2name(err), ": ", errstr));
  }

  // The wait before attempt `attempt` (1-based) of a batch, and whether retry_timeout allows it.
  absl::Status Backoff(int attempt, absl::Time started, absl::string_view reason) {
    absl::Duration wait = opts().retry_backoff;
    for (int i = 1; i < attempt && wait < opts().retry_backoff_max; ++i) wait *= 2;
    wait = std::min(wait, opts().retry_backoff_max);
    if (opts().retry_timeout > absl::ZeroDuration() &&
        absl::Now() + wait - started > opts().retry_timeout) {
      return absl::UnavailableError(absl::StrCat(Prefix(), "batch not delivered after ",
                                                 absl::FormatDuration(absl::Now() - started),
                                                 " (retry_timeout): ", reason));
    }
    Log().warn("{}{}; producing again in {} (attempt {}), nothing is acknowledged meanwhile",
               Prefix(), std::string(reason), absl::FormatDuration(wait), attempt + 1);
    absl::SleepFor(wait);
    return absl::OkStatus();
  }

  // Non-transactional delivery: produce everything, wait for the reports, produce the failed
  // messages again until all are delivered.
  absl::Status Deliver() {
    PrepareToProduce();
    std::vector<size_t> todo(messages_->size());
    for (size_t i = 0; i < todo.size(); ++i) todo[i] = i;
    const absl::Time started = absl::Now();
    for (int attempt = 1;; ++attempt) {
      for (size_t i : todo) {
        const rd_kafka_resp_err_t err = Produce(i);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          Abandon();
          if (IsPermanent(err)) return PermanentError(i, err, /*from_broker=*/false);
          return absl::UnavailableError(absl::StrCat(
              Prefix(), "cannot produce to ", messages_->topic(i), ": ", rd_kafka_err2str(err)));
        }
      }
      AwaitDeliveries();
      std::vector<size_t> failed;
      for (size_t i : todo) {
        if (deliveries_[i].delivered) continue;
        if (IsPermanent(deliveries_[i].err)) {
          return PermanentError(i, deliveries_[i].err, /*from_broker=*/true);
        }
        failed.push_back(i);
      }
      if (failed.empty()) return absl::OkStatus();
      const std::string reason =
          absl::StrCat(failed.size(), " of ", messages_->size(), " messages not delivered (",
                       rd_kafka_err2str(deliveries_[failed.front()].err), ")");
      if (absl::Status fatal = FatalProducerError(); !fatal.ok()) {
        // An idempotent producer that lost its sequence state cannot go on: start a new one.
        Log().warn("{}; creating a new producer", std::string(fatal.message()));
        DestroyProducer(/*flush=*/false);
        DS_RETURN_IF_ERROR(CreateProducer());
        PrepareToProduce();  // the new producer's topic handles
      }
      DS_RETURN_IF_ERROR(Backoff(attempt, started, reason));
      todo = std::move(failed);
    }
  }

  // --- transactions ------------------------------------------------------------------------

  // The messages of one transactional Write (in messages_): the batch less what the progress
  // topic says is committed already, plus the progress record. Rebuilt when that position changes
  // (a new producer read the topic again).
  struct TxnBatch {
    bool built = false;
    std::optional<ChangePosition> built_for;  // committed_ when messages_ was built
    std::optional<ChangePosition> last;       // the last change in messages_
  };

  // The outcome of one attempt at a transaction.
  struct TxnAttempt {
    bool done = false;
    absl::Status fatal;  // not worth retrying: Write fails with it
    std::string reason;  // why the attempt failed (retried after a backoff)
    bool recreate = false;
  };

  // One Kafka transaction per batch. A failed attempt is aborted (read_committed consumers never
  // see its messages) and the batch produced again.
  absl::Status WriteInTransaction(const cdc::ChangeBatch& batch) {
    const absl::Time started = absl::Now();
    TxnBatch txn;
    for (int attempt = 1;; ++attempt) {
      TxnAttempt a = TryTransaction(batch, txn);
      if (a.done) return absl::OkStatus();
      AwaitDeliveries();
      if (!a.fatal.ok()) return a.fatal;
      if (a.recreate) {
        DestroyProducer(/*flush=*/false);
        DS_RETURN_IF_ERROR(CreateProducer());
      }
      DS_RETURN_IF_ERROR(Backoff(attempt, started, a.reason));
    }
  }

  // Fills `a` from a failed transactional call (and takes `error`): abort what needs aborting,
  // and start over with a new producer (which fences this one) when that is the only way out.
  void TxnFailed(rd_kafka_error_t* error, TxnAttempt& a) {
    a.reason = absl::StrCat("transaction failed: ", rd_kafka_error_string(error));
    if (rd_kafka_error_is_fatal(error)) {
      a.recreate = true;
    } else if (rd_kafka_error_txn_requires_abort(error)) {
      if (rd_kafka_error_t* e = rd_kafka_abort_transaction(rk_, TransactionTimeoutMs())) {
        a.recreate = true;  // cannot abort: start over with a new producer
        rd_kafka_error_destroy(e);
      }
    } else if (!rd_kafka_error_is_retriable(error)) {
      // e.g. init_transactions or begin_transaction in a state that a new producer clears.
      a.recreate = true;
    }
    rd_kafka_error_destroy(error);
  }

  void AbortQuietly() {
    if (rd_kafka_error_t* e = rd_kafka_abort_transaction(rk_, TransactionTimeoutMs())) {
      rd_kafka_error_destroy(e);
    }
  }

  TxnAttempt TryTransaction(const cdc::ChangeBatch& batch, TxnBatch& txn) {
    const int timeout_ms = TransactionTimeoutMs();
    TxnAttempt a;
    if (!transactions_ready_) {
      // Fences any earlier producer with our transactional.id, and completes or aborts the
      // transaction it left open: after this the progress topic holds its last word.
      if (rd_kafka_error_t* error = rd_kafka_init_transactions(rk_, timeout_ms)) {
        TxnFailed(error, a);
        return a;
      }
      transactions_ready_ = true;
    }
    if (!progress_loaded_) {
      absl::Status s = LoadProgress(timeout_ms);
      if (!s.ok()) {
        if (s.code() == absl::StatusCode::kFailedPrecondition) {
          a.fatal = s;
        } else {
          a.reason = std::string(s.message());
        }
        return a;
      }
      progress_loaded_ = true;
    }
    if (!txn.built || txn.built_for != committed_) {
      messages_->Clear();
      int64_t dropped = 0;
      const cdc::ChangeBatch rest =
          committed_.has_value() ? DropChangesThrough(batch, *committed_, &dropped) : batch;
      if (dropped > 0) {
        Log().info(
            "{}skipped {} of the batch's {} changes, up to {}, that an earlier run already "
            "committed in Kafka (progress topic {}, transactional_id {})",
            Prefix(), dropped, batch.num_rows(), committed_->ToString(), KafkaProgressTopic(opts()),
            opts().transactional_id);
      }
      txn.last = LastChangePosition(rest);
      if (absl::Status s = messages_->Build(rest); !s.ok()) {
        a.fatal = base::Annotate(s, Name());
        return a;
      }
      if (!messages_->empty() && txn.last.has_value()) {
        messages_->Add(KafkaProgressTopic(opts()), opts().transactional_id,
                       EncodeKafkaProgress(*txn.last, batch.checkpoint),
                       absl::StrCat("progress record through ", txn.last->ToString()));
      }
      txn.built = true;
      txn.built_for = committed_;
    }
    if (messages_->empty()) {
      a.done = true;  // nothing (left) to write
      return a;
    }
    if (rd_kafka_error_t* error = rd_kafka_begin_transaction(rk_)) {
      TxnFailed(error, a);
      return a;
    }
    PrepareToProduce();
    for (size_t i = 0; i < messages_->size(); ++i) {
      const rd_kafka_resp_err_t err = Produce(i);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
      Abandon();
      AbortQuietly();
      if (IsPermanent(err)) {
        a.fatal = PermanentError(i, err, /*from_broker=*/false);
      } else {
        a.reason =
            absl::StrCat("cannot produce to ", messages_->topic(i), ": ", rd_kafka_err2str(err));
      }
      return a;
    }
    // Commit flushes: it returns once every message is delivered and the transaction committed,
    // or with the reason it could not be.
    rd_kafka_error_t* error = nullptr;
    for (;;) {
      error = rd_kafka_commit_transaction(rk_, timeout_ms);
      if (error == nullptr || !rd_kafka_error_is_retriable(error)) break;
      Log().warn("{}committing the transaction: {}; retrying", Prefix(),
                 rd_kafka_error_string(error));
      rd_kafka_error_destroy(error);
    }
    AwaitDeliveries();
    if (error == nullptr) {
      // Durable: the data and the progress record are committed together.
      if (txn.last.has_value()) committed_ = txn.last;
      a.done = true;
      return a;
    }
    for (size_t i = 0; i < messages_->size(); ++i) {
      if (!deliveries_[i].delivered && IsPermanent(deliveries_[i].err)) {
        rd_kafka_error_destroy(error);
        AbortQuietly();
        a.fatal = PermanentError(i, deliveries_[i].err, /*from_broker=*/true);
        return a;
      }
    }
    TxnFailed(error, a);
    return a;
  }

  // --- the progress topic --------------------------------------------------------------------

  // Reads what an earlier producer with our transactional.id committed (init_transactions has
  // run, so nothing of ours is still open) into committed_.
  absl::Status LoadProgress(int timeout_ms) {
    const std::string topic = KafkaProgressTopic(opts());
    DS_ASSIGN_OR_RETURN(std::optional<ChangePosition> found, ReadProgress(topic, timeout_ms));
    if (found.has_value() && (!committed_.has_value() || *found > *committed_)) committed_ = found;
    if (committed_.has_value()) {
      Log().info(
          "{}transactional_id {} has committed every change through {} (progress topic {}): "
          "replayed changes up to there are skipped",
          Prefix(), opts().transactional_id, committed_->ToString(), topic);
    } else {
      Log().info("{}transactional_id {} has committed nothing yet (progress topic {})", Prefix(),
                 opts().transactional_id, topic);
    }
    return absl::OkStatus();
  }

  // Creates the progress topic (one partition, compacted: it keeps each transactional id's
  // latest record) with the admin API of `rk`. Not fatal: without the right to create topics,
  // the broker's auto-creation or an operator may make it, and producing to it says if not.
  void CreateProgressTopic(rd_kafka_t* rk, const std::string& topic, int timeout_ms) {
    char errstr[512];
    rd_kafka_NewTopic_t* new_topic =
        rd_kafka_NewTopic_new(topic.c_str(), 1, -1, errstr, sizeof(errstr));
    if (new_topic == nullptr) {
      Log().warn("{}progress topic {}: {}", Prefix(), topic, errstr);
      return;
    }
    (void)rd_kafka_NewTopic_set_config(new_topic, "cleanup.policy", "compact");
    rd_kafka_AdminOptions_t* options =
        rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    (void)rd_kafka_AdminOptions_set_request_timeout(options, timeout_ms, errstr, sizeof(errstr));
    // The broker answers once the topic exists (so that the read below finds it).
    (void)rd_kafka_AdminOptions_set_operation_timeout(options, timeout_ms, errstr, sizeof(errstr));
    rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &new_topic, 1, options, queue);
    rd_kafka_event_t* event = rd_kafka_queue_poll(queue, timeout_ms + 5000);
    std::string problem;
    if (event == nullptr) {
      problem = "no answer to CreateTopics";
    } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      problem = rd_kafka_event_error_string(event);
    } else if (const rd_kafka_CreateTopics_result_t* result =
                   rd_kafka_event_CreateTopics_result(event)) {
      size_t count = 0;
      const rd_kafka_topic_result_t** topics = rd_kafka_CreateTopics_result_topics(result, &count);
      for (size_t i = 0; i < count; ++i) {
        const rd_kafka_resp_err_t err = rd_kafka_topic_result_error(topics[i]);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
          Log().info("{}created the progress topic {} (cleanup.policy=compact)", Prefix(), topic);
        } else if (err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
          const char* text = rd_kafka_topic_result_error_string(topics[i]);
          problem = text != nullptr ? text : rd_kafka_err2str(err);
        }
      }
    }
    if (!problem.empty()) {
      Log().warn(
          "{}cannot create the progress topic {} ({}); relying on the broker's topic "
          "auto-creation (create it with cleanup.policy=compact to keep it small)",
          Prefix(), topic, problem);
    }
    if (event != nullptr) rd_kafka_event_destroy(event);
    rd_kafka_queue_destroy(queue);
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_NewTopic_destroy(new_topic);
  }

  // The last position recorded under our key in `topic`, read with read_committed from the
  // first offset of every partition to its end; none when there is no record (or no topic).
  absl::StatusOr<std::optional<ChangePosition>> ReadProgress(const std::string& topic,
                                                             int timeout_ms) {
    char errstr[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    absl::Status s = [&]() -> absl::Status {
      DS_RETURN_IF_ERROR(SetProperty(conf, "bootstrap.servers", opts().brokers));
      DS_RETURN_IF_ERROR(SetProperty(conf, "client.id", opts().client_id));
      // Needed by the consumer API; partitions are assigned, never subscribed, and no offset is
      // ever committed.
      DS_RETURN_IF_ERROR(SetProperty(conf, "group.id", "ductstream-progress-reader"));
      DS_RETURN_IF_ERROR(SetProperty(conf, "enable.auto.commit", "false"));
      DS_RETURN_IF_ERROR(SetProperty(conf, "enable.partition.eof", "true"));
      DS_RETURN_IF_ERROR(SetProperty(conf, "isolation.level", "read_committed"));
      DS_RETURN_IF_ERROR(SetProperty(conf, "reconnect.backoff.max.ms", "2000"));
      for (const auto& [key, value] : opts().librdkafka) {
        DS_RETURN_IF_ERROR(SetProperty(conf, key, value));
      }
      return absl::OkStatus();
    }();
    if (!s.ok()) {
      rd_kafka_conf_destroy(conf);
      return s;
    }
    rd_kafka_conf_set_log_cb(conf, &KafkaDestination::OnLog);
    rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (consumer == nullptr) {
      rd_kafka_conf_destroy(conf);
      return absl::InvalidArgumentError(
          absl::StrCat(Prefix(), "cannot create the progress topic reader: ", errstr));
    }
    absl::StatusOr<std::optional<ChangePosition>> out =
        ReadProgressWith(consumer, topic, timeout_ms);
    (void)rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    return out;
  }

  absl::StatusOr<std::optional<ChangePosition>> ReadProgressWith(rd_kafka_t* consumer,
                                                                 const std::string& topic,
                                                                 int timeout_ms) {
    const std::string what = absl::StrCat(Prefix(), "reading the progress topic ", topic, ": ");
    rd_kafka_topic_t* handle = rd_kafka_topic_new(consumer, topic.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(consumer, 0, handle, &md, timeout_ms);
    rd_kafka_topic_destroy(handle);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat(what, rd_kafka_err2str(err)));
    }
    std::vector<int32_t> partitions;
    err = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      for (int i = 0; i < md->topics[0].partition_cnt; ++i) {
        partitions.push_back(md->topics[0].partitions[i].id);
      }
    }
    rd_kafka_metadata_destroy(md);
    if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
      // Never written to. (A consumer's metadata request does not auto-create topics; a
      // producer's would, with the broker's defaults rather than compaction.)
      CreateProgressTopic(consumer, topic, timeout_ms);
      return std::nullopt;
    }
    if (err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
      return absl::FailedPreconditionError(absl::StrCat(what, rd_kafka_err2str(err)));
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat(what, rd_kafka_err2str(err)));
    }

    rd_kafka_topic_partition_list_t* assignment =
        rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size()));
    std::map<int32_t, int64_t> ends;  // partition → offset past its last message
    for (int32_t p : partitions) {
      int64_t low = 0;
      int64_t high = 0;
      err = rd_kafka_query_watermark_offsets(consumer, topic.c_str(), p, &low, &high, timeout_ms);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_topic_partition_list_destroy(assignment);
        return absl::UnavailableError(
            absl::StrCat(what, "offsets of partition ", p, ": ", rd_kafka_err2str(err)));
      }
      if (high <= low) continue;  // empty
      ends[p] = high;
      rd_kafka_topic_partition_list_add(assignment, topic.c_str(), p)->offset = low;
    }
    std::map<int32_t, ChangePosition> latest;  // partition → its last record of ours
    absl::Status status;
    if (!ends.empty()) {
      err = rd_kafka_assign(consumer, assignment);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        status = absl::UnavailableError(absl::StrCat(what, "assign: ", rd_kafka_err2str(err)));
      }
      const absl::Time deadline = absl::Now() + absl::Milliseconds(timeout_ms);
      while (status.ok() && !ends.empty()) {
        if (absl::Now() > deadline) {
          status = absl::UnavailableError(
              absl::StrCat(what, "timed out before the end of ", ends.size(), " partition(s)"));
          break;
        }
        rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 200);
        if (m == nullptr) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
          // With read_committed the end is the last stable offset: the last offsets may be
          // transaction markers, which are never delivered.
          ends.erase(m->partition);
        } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          const std::string text = absl::StrCat(what, rd_kafka_message_errstr(m));
          status = IsPermanent(m->err) ? absl::FailedPreconditionError(text)
                                       : absl::UnavailableError(text);
        } else {
          if (m->key != nullptr && absl::string_view(static_cast<const char*>(m->key),
                                                     m->key_len) == opts().transactional_id) {
            auto position =
                ParseKafkaProgress(absl::string_view(static_cast<const char*>(m->payload), m->len));
            if (!position.ok()) {
              // Not ours to guess: replaying from an older position would duplicate changes.
              status = absl::FailedPreconditionError(
                  absl::StrCat(what, "record at partition ", m->partition, " offset ", m->offset,
                               ": ", position.status().message()));
            } else {
              latest[m->partition] = *position;
            }
          }
          auto end = ends.find(m->partition);
          if (end != ends.end() && m->offset + 1 >= end->second) ends.erase(end);
        }
        rd_kafka_message_destroy(m);
      }
    }
    rd_kafka_topic_partition_list_destroy(assignment);
    DS_RETURN_IF_ERROR(status);
    std::optional<ChangePosition> out;
    for (const auto& [p, position] : latest) {
      if (!out.has_value() || position > *out) out = position;
    }
    return out;
  }

  KafkaDestinationConfig config_;
  std::shared_ptr<MessageSetPool> pool_;     // message sets of prepared batches
  std::unique_ptr<KafkaBatchMessages> own_;  // Write's (and the transactions') message set
  KafkaBatchMessages* messages_ = nullptr;   // the set being produced: own_ or a prepared one
  std::vector<Delivery> deliveries_;         // of messages_, by index
  std::vector<rd_kafka_topic_t*> handles_;   // of messages_->topics(), by index
  absl::flat_hash_map<std::string, rd_kafka_topic_t*> topic_handles_;  // of rk_
  rd_kafka_t* rk_ = nullptr;
  int64_t outstanding_ = 0;  // produced messages without a delivery report yet
  bool transactions_ready_ = false;
  bool progress_loaded_ = false;  // read by the current producer, after init_transactions
  /// Every change up to here is committed in Kafka (by this run or an earlier one).
  std::optional<ChangePosition> committed_;
};

}  // namespace

// Snapshot and backfill rows ("load") are not in stream order: a chunk copied again after a
// crash, or a backfill, may sit below the recorded position although no run delivered it. They
// are never skipped and never move the position (a resumed snapshot is at-least-once; see
// docs/connectors.md, "Snapshots").
namespace {

// The identity columns of one relation's change records.
struct IdentityColumns {
  explicit IdentityColumns(const arrow::RecordBatch& records)
      : commit(static_cast<const arrow::UInt64Array*>(
            records.GetColumnByName(cdc::kCommitLsnColumn).get())),
        seq(static_cast<const arrow::Int64Array*>(records.GetColumnByName(cdc::kSeqColumn).get())),
        op(static_cast<const arrow::StringArray*>(records.GetColumnByName(cdc::kOpColumn).get())) {}

  /// Rows without a stream position: truncates (commit 0/0) and snapshot rows.
  bool Unordered(int64_t r) const { return commit->Value(r) == 0 || op->GetView(r) == "load"; }
  ChangePosition At(int64_t r) const { return {Lsn(commit->Value(r)), seq->Value(r)}; }

  const arrow::UInt64Array* commit;
  const arrow::Int64Array* seq;
  const arrow::StringArray* op;
};

}  // namespace

// --- KafkaBatchMessages -----------------------------------------------------------------------

// What the messages of one relation share.
struct KafkaBatchMessages::Relation {
  std::string schema;
  std::string table;
  std::string qualified;  // "schema.table"
  // Record mode: the change's metadata for the headers (and the key and JSON value); it keeps
  // the relation's records alive.
  std::unique_ptr<codec::RowJsonRenderer> renderer;
  // Batch mode: the header values of the one message.
  std::string ops;  // distinct operations, in order of appearance: "insert,update"
  std::string first_commit_lsn;
  std::string first_seq;
  std::string last_commit_lsn;
  std::string rows;
};

namespace {

// A buffer that held a large batch is given back rather than kept for the next one (the record
// messages of a batch of 10 000 rows of a dozen columns take a few MB).
constexpr size_t kKeepBufferBytes = 8 << 20;

}  // namespace

KafkaBatchMessages::KafkaBatchMessages(const KafkaOptions& options) : options_(options) {}
KafkaBatchMessages::~KafkaBatchMessages() = default;

absl::StatusOr<std::unique_ptr<KafkaBatchMessages>> KafkaBatchMessages::Create(
    const KafkaOptions& options) {
  std::unique_ptr<KafkaBatchMessages> out(new KafkaBatchMessages(options));
  DS_ASSIGN_OR_RETURN(out->encoder_, codec::MakeEncoder(options.format));
  return out;
}

void KafkaBatchMessages::Clear() {
  if (data_.capacity() > kKeepBufferBytes) {
    std::string().swap(data_);
  } else {
    data_.clear();
  }
  topics_.clear();
  relations_.clear();
  messages_.clear();
  added_what_.clear();
}

absl::Status KafkaBatchMessages::Build(const cdc::ChangeBatch& batch) {
  Clear();
  for (const cdc::RelationChanges& changes : batch.relations) {
    if (changes.num_rows() == 0) continue;
    DS_RETURN_IF_ERROR(BuildRelation(changes));
  }
  return absl::OkStatus();
}

uint32_t KafkaBatchMessages::TopicIndex(const std::string& topic) {
  for (size_t i = 0; i < topics_.size(); ++i) {
    if (topics_[i] == topic) return static_cast<uint32_t>(i);
  }
  topics_.push_back(topic);
  return static_cast<uint32_t>(topics_.size() - 1);
}

absl::Status KafkaBatchMessages::BuildRelation(const cdc::RelationChanges& changes) {
  Relation rel;
  rel.schema = changes.schema;
  rel.table = changes.table;
  rel.qualified = changes.QualifiedName();
  const std::string context = absl::StrCat("encoding ", rel.qualified);
  Message m;
  m.relation = static_cast<uint32_t>(relations_.size());
  m.topic = TopicIndex(KafkaTopicFor(options_.topic, changes.schema, changes.table));
  const int64_t n = changes.num_rows();

  if (options_.message_mode == KafkaMessageMode::kBatch) {
    m.value_offset = data_.size();
    DS_RETURN_IF_ERROR_CTX(encoder_->Encode(changes, &data_), context);
    m.value_size = data_.size() - m.value_offset;
    if (m.value_size == 0) return absl::OkStatus();  // SPEC §7.1: empty payloads are skipped
    m.key_offset = data_.size();
    data_.append(rel.qualified);
    m.key_size = rel.qualified.size();
    m.has_key = true;
    const auto* ops = static_cast<const arrow::StringArray*>(
        changes.records->GetColumnByName(cdc::kOpColumn).get());
    const auto* commit = static_cast<const arrow::UInt64Array*>(
        changes.records->GetColumnByName(cdc::kCommitLsnColumn).get());
    std::vector<absl::string_view> op_names;
    for (int64_t r = 0; r < n; ++r) {
      const auto op = ops->GetView(r);
      const absl::string_view name(op.data(), op.size());
      if (std::find(op_names.begin(), op_names.end(), name) == op_names.end()) {
        op_names.push_back(name);
      }
    }
    rel.ops = absl::StrJoin(op_names, ",");
    rel.first_commit_lsn = changes.first_commit_lsn.ToString();
    rel.first_seq = absl::StrCat(changes.first_seq);
    rel.last_commit_lsn = Lsn(commit->Value(n - 1)).ToString();
    rel.rows = absl::StrCat(n);
    relations_.push_back(std::move(rel));
    messages_.push_back(m);
    return absl::OkStatus();
  }

  // Record mode.
  DS_ASSIGN_OR_RETURN(rel.renderer, codec::RowJsonRenderer::Create(changes));
  const codec::RowJsonRenderer& renderer = *rel.renderer;
  const bool json = options_.format == codec::WireFormat::kJson;
  messages_.reserve(messages_.size() + static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) {
    m.row = r;
    m.key_offset = data_.size();
    renderer.AppendKey(r, &data_);
    m.key_size = data_.size() - m.key_offset;
    m.has_key = absl::string_view(data_).substr(m.key_offset) != "null";
    if (!m.has_key) {
      data_.resize(m.key_offset);
      m.key_size = 0;
    }
    m.value_offset = data_.size();
    if (json) {
      renderer.AppendChange(r, &data_);
    } else {
      // The wire format's own encoding of this one change: a self-contained document.
      cdc::RelationChanges one = changes;
      one.records = changes.records->Slice(r, 1);
      one.first_commit_lsn = renderer.commit_lsn(r);
      one.first_seq = renderer.seq(r);
      DS_RETURN_IF_ERROR_CTX(encoder_->Encode(one, &data_), context);
      if (data_.size() == m.value_offset) {
        data_.resize(m.key_offset);
        continue;
      }
    }
    m.value_size = data_.size() - m.value_offset;
    messages_.push_back(m);
  }
  relations_.push_back(std::move(rel));
  return absl::OkStatus();
}

void KafkaBatchMessages::Add(const std::string& topic, absl::string_view key,
                             absl::string_view value, std::string what) {
  Message m;
  m.relation = kNoRelation;
  m.topic = TopicIndex(topic);
  m.row = static_cast<int64_t>(added_what_.size());
  m.key_offset = data_.size();
  data_.append(key.data(), key.size());
  m.key_size = key.size();
  m.has_key = true;
  m.value_offset = data_.size();
  data_.append(value.data(), value.size());
  m.value_size = value.size();
  added_what_.push_back(std::move(what));
  messages_.push_back(m);
}

void KafkaBatchMessages::ForEachHeader(
    size_t i, absl::FunctionRef<void(absl::string_view, absl::string_view)> f) const {
  const Message& m = messages_[i];
  if (m.relation == kNoRelation) return;
  const Relation& rel = relations_[m.relation];
  f("ductstream-format", codec::WireFormatName(options_.format));
  f("ductstream-content-type", codec::ContentType(options_.format));
  f("ductstream-namespace", rel.schema);
  f("ductstream-table", rel.table);
  f("ductstream-schema", rel.qualified);
  if (rel.renderer == nullptr) {  // batch mode
    f("ductstream-op", rel.ops);
    f("ductstream-commit-lsn", rel.first_commit_lsn);
    f("ductstream-seq", rel.first_seq);
    f("ductstream-last-commit-lsn", rel.last_commit_lsn);
    f("ductstream-rows", rel.rows);
    return;
  }
  const codec::RowJsonRenderer& renderer = *rel.renderer;
  f("ductstream-op", renderer.op(m.row));
  f("ductstream-lsn", codec::LsnText(renderer.lsn(m.row)).view());
  f("ductstream-commit-lsn", codec::LsnText(renderer.commit_lsn(m.row)).view());
  char seq[24];
  const auto [end, ec] = std::to_chars(seq, seq + sizeof(seq), renderer.seq(m.row));
  f("ductstream-seq", absl::string_view(seq, static_cast<size_t>(end - seq)));
}

std::string KafkaBatchMessages::Describe(size_t i) const {
  const Message& m = messages_[i];
  if (m.relation == kNoRelation) return added_what_[static_cast<size_t>(m.row)];
  const Relation& rel = relations_[m.relation];
  if (rel.renderer == nullptr) {
    return absl::StrCat(rel.qualified, " (", rel.rows, " changes from commit ",
                        rel.first_commit_lsn, ")");
  }
  return absl::StrCat(rel.qualified, " (", rel.renderer->op(m.row), " at ",
                      rel.renderer->lsn(m.row).ToString(), ", key ",
                      m.has_key ? key(i) : absl::string_view("none"), ")");
}

std::string ChangePosition::ToString() const {
  return absl::StrCat("commit ", commit_lsn.ToString(), " seq ", seq);
}

std::optional<ChangePosition> LastChangePosition(const cdc::ChangeBatch& batch) {
  std::optional<ChangePosition> out;
  for (const cdc::RelationChanges& changes : batch.relations) {
    if (changes.num_rows() == 0) continue;
    const IdentityColumns ids(*changes.records);
    for (int64_t r = 0; r < changes.num_rows(); ++r) {
      if (ids.Unordered(r)) continue;
      const ChangePosition p = ids.At(r);
      if (!out.has_value() || p > *out) out = p;
    }
  }
  return out;
}

cdc::ChangeBatch DropChangesThrough(const cdc::ChangeBatch& batch, const ChangePosition& through,
                                    int64_t* dropped) {
  *dropped = 0;
  cdc::ChangeBatch out;
  out.checkpoint = batch.checkpoint;
  out.bytes = batch.bytes;
  for (const cdc::RelationChanges& changes : batch.relations) {
    const int64_t n = changes.num_rows();
    if (n == 0) continue;
    const IdentityColumns ids(*changes.records);
    // Rows are in identity order, so the kept rows are one run at the end; any run is handled
    // all the same (each becomes a slice).
    int64_t run_start = -1;
    auto end_run = [&](int64_t end) {
      if (run_start < 0) return;
      if (run_start == 0 && end == n) {
        out.relations.push_back(changes);
      } else {
        cdc::RelationChanges part = changes;
        part.records = changes.records->Slice(run_start, end - run_start);
        part.first_commit_lsn = ids.At(run_start).commit_lsn;
        part.first_seq = ids.At(run_start).seq;
        out.relations.push_back(std::move(part));
      }
      run_start = -1;
    };
    for (int64_t r = 0; r < n; ++r) {
      const bool keep = ids.Unordered(r) || ids.At(r) > through;
      if (keep) {
        if (run_start < 0) run_start = r;
      } else {
        end_run(r);
        ++*dropped;
      }
    }
    end_run(n);
  }
  return out;
}

std::string EncodeKafkaProgress(const ChangePosition& last, Lsn checkpoint) {
  nlohmann::json j = {
      {"commit_lsn", last.commit_lsn.ToString()}, {"seq", last.seq}, {"checkpoint", nullptr}};
  if (checkpoint.valid()) j["checkpoint"] = checkpoint.ToString();
  return j.dump();
}

absl::StatusOr<ChangePosition> ParseKafkaProgress(absl::string_view value) {
  const nlohmann::json j = nlohmann::json::parse(value.begin(), value.end(), nullptr,
                                                 /*allow_exceptions=*/false);
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a progress record (", why,
                     "): ", value.substr(0, std::min<size_t>(200, value.size()))));
  };
  if (!j.is_object()) return bad("not a JSON object");
  auto lsn = j.find("commit_lsn");
  auto seq = j.find("seq");
  if (lsn == j.end() || !lsn->is_string()) return bad("no commit_lsn");
  if (seq == j.end() || !seq->is_number_integer()) return bad("no seq");
  auto parsed = Lsn::Parse(lsn->get<std::string>());
  if (!parsed.ok()) return bad(parsed.status().message());
  return ChangePosition{*parsed, seq->get<int64_t>()};
}

absl::StatusOr<std::unique_ptr<runner::Destination>> MakeKafkaDestination(
    KafkaDestinationConfig config) {
  auto dest = std::make_unique<KafkaDestination>(std::move(config));
  DS_RETURN_IF_ERROR(dest->Init());
  return dest;
}

}  // namespace ductstream::destination
