#include "ductstream/destination/kafka_destination.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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

// One message of a batch. Owned by Write until its delivery report arrived: librdkafka reads the
// key and value buffers in place (no copy).
struct Message {
  std::string topic;
  std::string key;
  bool has_key = false;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string what;  // "public.t (batch of 500 changes)": for error messages
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
    DS_ASSIGN_OR_RETURN(encoder_, codec::MakeEncoder(config_.options.format));
    return CreateProducer();
  }

  const std::string& name() const override { return config_.name; }

  absl::Status Write(const cdc::ChangeBatch& batch) override {
    std::vector<Message> messages;
    DS_RETURN_IF_ERROR(BuildMessages(batch, messages));
    if (messages.empty()) return absl::OkStatus();
    return config_.options.transactional_id.empty() ? Deliver(messages)
                                                    : DeliverInTransaction(messages);
  }

  absl::Status Close() override {
    DestroyProducer(/*flush=*/true);
    return absl::OkStatus();
  }

 private:
  const KafkaOptions& opts() const { return config_.options; }

  std::string Prefix() const {
    return absl::StrCat(config_.type, " destination ", config_.name, ": ");
  }

  // --- producer ------------------------------------------------------------------------------

  absl::Status CreateProducer() {
    char errstr[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    auto set = [&](const std::string& key, const std::string& value) -> absl::Status {
      if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof(errstr)) !=
          RD_KAFKA_CONF_OK) {
        return absl::InvalidArgumentError(
            absl::StrCat(Prefix(), "librdkafka property ", key, "=", value, ": ", errstr));
      }
      return absl::OkStatus();
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
        DS_RETURN_IF_ERROR(
            set("transaction.timeout.ms",
                absl::StrCat(std::max<int64_t>(60000, Millis(opts().delivery_timeout) + 10000))));
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
    return absl::OkStatus();
  }

  void DestroyProducer(bool flush) {
    if (rk_ == nullptr) return;
    if (flush) (void)rd_kafka_flush(rk_, 10000);
    // Anything still queued belongs to a batch that was not acknowledged: drop it here, the
    // checkpoint makes the next run produce it again.
    rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    (void)rd_kafka_flush(rk_, 1000);
    rd_kafka_destroy(rk_);
    rk_ = nullptr;
    outstanding_ = 0;
  }

  static void OnDelivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<KafkaDestination*>(opaque);
    auto* message = static_cast<Message*>(m->_private);
    if (message != nullptr) {
      message->err = m->err;
      message->delivered = m->err == RD_KAFKA_RESP_ERR_NO_ERROR;
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

  // --- messages ------------------------------------------------------------------------------

  absl::Status BuildMessages(const cdc::ChangeBatch& batch, std::vector<Message>& out) {
    const std::string format(codec::WireFormatName(opts().format));
    const std::string content_type(codec::ContentType(opts().format));
    for (const cdc::RelationChanges& changes : batch.relations) {
      if (changes.num_rows() == 0) continue;
      const std::string topic = KafkaTopicFor(opts().topic, changes.schema, changes.table);
      const std::string qualified = changes.QualifiedName();
      auto common = [&](Message& m) {
        m.topic = topic;
        m.headers = {{"ductstream-format", format},
                     {"ductstream-content-type", content_type},
                     {"ductstream-namespace", changes.schema},
                     {"ductstream-table", changes.table},
                     {"ductstream-schema", qualified}};
      };
      if (opts().message_mode == KafkaMessageMode::kBatch) {
        Message m;
        common(m);
        DS_RETURN_IF_ERROR_CTX(encoder_->Encode(changes, &m.value),
                               absl::StrCat(Prefix(), "encoding ", qualified));
        if (m.value.empty()) continue;  // nothing to say (SPEC §7.1: empty payloads are skipped)
        m.key = qualified;
        m.has_key = true;
        const auto* ops = static_cast<const arrow::StringArray*>(
            changes.records->GetColumnByName(cdc::kOpColumn).get());
        const auto* commit = static_cast<const arrow::UInt64Array*>(
            changes.records->GetColumnByName(cdc::kCommitLsnColumn).get());
        std::vector<std::string> op_names;
        for (int64_t r = 0; r < changes.num_rows(); ++r) {
          std::string op(ops->GetView(r));
          if (std::find(op_names.begin(), op_names.end(), op) == op_names.end()) {
            op_names.push_back(std::move(op));
          }
        }
        m.headers.emplace_back("ductstream-op", absl::StrJoin(op_names, ","));
        m.headers.emplace_back("ductstream-commit-lsn", changes.first_commit_lsn.ToString());
        m.headers.emplace_back("ductstream-seq", absl::StrCat(changes.first_seq));
        m.headers.emplace_back("ductstream-last-commit-lsn",
                               Lsn(commit->Value(changes.num_rows() - 1)).ToString());
        m.headers.emplace_back("ductstream-rows", absl::StrCat(changes.num_rows()));
        m.what = absl::StrCat(qualified, " (", changes.num_rows(), " changes from commit ",
                              changes.first_commit_lsn.ToString(), ")");
        out.push_back(std::move(m));
        continue;
      }
      // Record mode.
      DS_ASSIGN_OR_RETURN(auto renderer, codec::RowJsonRenderer::Create(changes));
      for (int64_t r = 0; r < changes.num_rows(); ++r) {
        Message m;
        common(m);
        renderer->AppendKey(r, &m.key);
        m.has_key = m.key != "null";
        if (!m.has_key) m.key.clear();
        if (opts().format == codec::WireFormat::kJson) {
          renderer->AppendChange(r, &m.value);
        } else {
          // The wire format's own encoding of this one change: a self-contained document.
          cdc::RelationChanges one = changes;
          one.records = changes.records->Slice(r, 1);
          one.first_commit_lsn = renderer->commit_lsn(r);
          one.first_seq = renderer->seq(r);
          DS_RETURN_IF_ERROR_CTX(encoder_->Encode(one, &m.value),
                                 absl::StrCat(Prefix(), "encoding ", qualified));
          if (m.value.empty()) continue;
        }
        m.headers.emplace_back("ductstream-op", std::string(renderer->op(r)));
        m.headers.emplace_back("ductstream-lsn", renderer->lsn(r).ToString());
        m.headers.emplace_back("ductstream-commit-lsn", renderer->commit_lsn(r).ToString());
        m.headers.emplace_back("ductstream-seq", absl::StrCat(renderer->seq(r)));
        m.what = absl::StrCat(qualified, " (", renderer->op(r), " at ", renderer->lsn(r).ToString(),
                              ", key ", m.has_key ? m.key : "none", ")");
        out.push_back(std::move(m));
      }
    }
    return absl::OkStatus();
  }

  // Not retriable (FailedPrecondition): the same batch would be too large again.
  absl::Status SizeError(const Message& m, bool from_broker) const {
    const std::string limit =
        from_broker ? "the broker rejected it as too large (the topic's max.message.bytes)"
                    : absl::StrCat("over max_message_bytes=", opts().max_message_bytes);
    return absl::FailedPreconditionError(absl::StrCat(
        Prefix(), "message of ", m.value.size() + m.key.size(), " bytes for topic ", m.topic, ", ",
        m.what, ", is over the size limit: ", limit,
        ". Lower the source's batch_size or max_batch_bytes, use message_mode=record, or raise "
        "max_message_bytes and the topic's max.message.bytes. Nothing was acknowledged."));
  }

  // `from_broker`: the error came in a delivery report rather than from the local produce call.
  absl::Status PermanentError(const Message& m, rd_kafka_resp_err_t err, bool from_broker) const {
    if (IsSizeError(err)) return SizeError(m, from_broker);
    return absl::FailedPreconditionError(absl::StrCat(Prefix(), "cannot produce to topic ", m.topic,
                                                      " (", m.what, "): ", rd_kafka_err2str(err)));
  }

  // Enqueues `m` in librdkafka. A permanent error is returned; a full local queue is waited out.
  rd_kafka_resp_err_t Produce(Message& m) {
    m.err = RD_KAFKA_RESP_ERR_NO_ERROR;
    m.delivered = false;
    for (;;) {
      rd_kafka_headers_t* headers = rd_kafka_headers_new(m.headers.size());
      for (const auto& [k, v] : m.headers) {
        rd_kafka_header_add(headers, k.data(), static_cast<ssize_t>(k.size()), v.data(),
                            static_cast<ssize_t>(v.size()));
      }
      ++outstanding_;
      const rd_kafka_resp_err_t err = rd_kafka_producev(
          rk_, RD_KAFKA_V_TOPIC(m.topic.c_str()),
          RD_KAFKA_V_KEY(m.has_key ? m.key.data() : nullptr, m.has_key ? m.key.size() : 0),
          RD_KAFKA_V_VALUE(m.value.data(), m.value.size()), RD_KAFKA_V_HEADERS(headers),
          RD_KAFKA_V_OPAQUE(&m), RD_KAFKA_V_MSGFLAGS(0), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return err;
      --outstanding_;
      rd_kafka_headers_destroy(headers);  // not taken over on failure
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) return err;
      rd_kafka_poll(rk_, 100);  // serves delivery reports, which frees queue space
    }
  }

  // Serves delivery reports until every produced message has one.
  void AwaitDeliveries() {
    while (outstanding_ > 0) rd_kafka_poll(rk_, 100);
  }

  // Drops whatever is still queued (their reports arrive with a purge error), then waits for
  // every report so that no callback can touch `messages` after Write returns.
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
  absl::Status Deliver(std::vector<Message>& messages) {
    std::vector<Message*> todo;
    todo.reserve(messages.size());
    for (Message& m : messages) todo.push_back(&m);
    const absl::Time started = absl::Now();
    for (int attempt = 1;; ++attempt) {
      for (Message* m : todo) {
        const rd_kafka_resp_err_t err = Produce(*m);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          Abandon();
          if (IsPermanent(err)) return PermanentError(*m, err, /*from_broker=*/false);
          return absl::UnavailableError(
              absl::StrCat(Prefix(), "cannot produce to ", m->topic, ": ", rd_kafka_err2str(err)));
        }
      }
      AwaitDeliveries();
      std::vector<Message*> failed;
      for (Message* m : todo) {
        if (m->delivered) continue;
        if (IsPermanent(m->err)) return PermanentError(*m, m->err, /*from_broker=*/true);
        failed.push_back(m);
      }
      if (failed.empty()) return absl::OkStatus();
      const std::string reason =
          absl::StrCat(failed.size(), " of ", messages.size(), " messages not delivered (",
                       rd_kafka_err2str(failed.front()->err), ")");
      if (absl::Status fatal = FatalProducerError(); !fatal.ok()) {
        // An idempotent producer that lost its sequence state cannot go on: start a new one.
        Log().warn("{}; creating a new producer", std::string(fatal.message()));
        DestroyProducer(/*flush=*/false);
        DS_RETURN_IF_ERROR(CreateProducer());
      }
      DS_RETURN_IF_ERROR(Backoff(attempt, started, reason));
      todo = std::move(failed);
    }
  }

  // One Kafka transaction per batch. A failed attempt is aborted (read_committed consumers never
  // see its messages) and the whole batch produced again.
  absl::Status DeliverInTransaction(std::vector<Message>& messages) {
    const absl::Time started = absl::Now();
    const int timeout_ms =
        static_cast<int>(std::max<int64_t>(60000, Millis(opts().delivery_timeout) + 10000));
    for (int attempt = 1;; ++attempt) {
      std::string reason;
      bool recreate = false;
      rd_kafka_error_t* error = nullptr;
      if (!transactions_ready_) {
        error = rd_kafka_init_transactions(rk_, timeout_ms);
        if (error == nullptr) transactions_ready_ = true;
      }
      if (error == nullptr) error = rd_kafka_begin_transaction(rk_);
      if (error == nullptr) {
        for (Message& m : messages) {
          const rd_kafka_resp_err_t err = Produce(m);
          if (err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
          Abandon();
          if (rd_kafka_error_t* e = rd_kafka_abort_transaction(rk_, timeout_ms)) {
            rd_kafka_error_destroy(e);
          }
          if (IsPermanent(err)) return PermanentError(m, err, /*from_broker=*/false);
          reason = absl::StrCat("cannot produce to ", m.topic, ": ", rd_kafka_err2str(err));
          break;
        }
        if (reason.empty()) {
          // Commit flushes: it returns once every message is delivered and the transaction
          // committed, or with the reason it could not be.
          for (;;) {
            error = rd_kafka_commit_transaction(rk_, timeout_ms);
            if (error == nullptr || !rd_kafka_error_is_retriable(error)) break;
            Log().warn("{}committing the transaction: {}; retrying", Prefix(),
                       rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
            error = nullptr;
          }
          AwaitDeliveries();
          if (error == nullptr) return absl::OkStatus();
          for (Message& m : messages) {
            if (!m.delivered && IsPermanent(m.err)) {
              rd_kafka_error_destroy(error);
              if (rd_kafka_error_t* e = rd_kafka_abort_transaction(rk_, timeout_ms)) {
                rd_kafka_error_destroy(e);
              }
              return PermanentError(m, m.err, /*from_broker=*/true);
            }
          }
        }
      }
      if (error != nullptr) {
        reason = absl::StrCat("transaction failed: ", rd_kafka_error_string(error));
        if (rd_kafka_error_is_fatal(error)) {
          recreate = true;
        } else if (rd_kafka_error_txn_requires_abort(error)) {
          rd_kafka_error_t* e = rd_kafka_abort_transaction(rk_, timeout_ms);
          if (e != nullptr) {
            recreate = true;  // cannot abort: start over with a new producer (fences the old)
            rd_kafka_error_destroy(e);
          }
        } else if (!rd_kafka_error_is_retriable(error)) {
          // e.g. init_transactions or begin_transaction in a state that a new producer clears.
          recreate = true;
        }
        rd_kafka_error_destroy(error);
      }
      AwaitDeliveries();
      if (recreate) {
        DestroyProducer(/*flush=*/false);
        DS_RETURN_IF_ERROR(CreateProducer());
      }
      DS_RETURN_IF_ERROR(Backoff(attempt, started, reason));
    }
  }

  KafkaDestinationConfig config_;
  std::unique_ptr<codec::Encoder> encoder_;
  rd_kafka_t* rk_ = nullptr;
  int64_t outstanding_ = 0;  // produced messages without a delivery report yet
  bool transactions_ready_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<runner::Destination>> MakeKafkaDestination(
    KafkaDestinationConfig config) {
  auto dest = std::make_unique<KafkaDestination>(std::move(config));
  DS_RETURN_IF_ERROR(dest->Init());
  return dest;
}

}  // namespace ductstream::destination
