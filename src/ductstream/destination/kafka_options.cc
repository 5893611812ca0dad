#include "ductstream/destination/kafka_options.h"

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

#include "ductstream/base/status.h"
#include "ductstream/destination/option_table.h"

namespace ductstream::destination {
namespace {

constexpr absl::string_view kPassthroughPrefix = "librdkafka.";

// Parses one option's value into `out`; returns the problem, or "" when the value is good.
using KafkaOption = ConnectorOption<KafkaOptions>;

std::string ParseDuration(absl::string_view value, absl::Duration& out, bool allow_zero) {
  auto d = flow::ParseDurationOption(value);
  if (!d.has_value() || (!allow_zero && *d == absl::ZeroDuration())) {
    return absl::StrCat("\"", value, "\" is not a ", allow_zero ? "" : "positive ",
                        "duration (e.g. 500ms, 30s, 1m)");
  }
  out = *d;
  return "";
}

const std::vector<KafkaOption>& OptionTable() {
  static const auto* table = new std::vector<KafkaOption>{
      {{"brokers", "(required)",
        "comma-separated bootstrap brokers, host:port (librdkafka bootstrap.servers)"},
       [](absl::string_view v, KafkaOptions& o) -> std::string {
         std::vector<std::string> hosts;
         for (absl::string_view h : absl::StrSplit(v, ',')) {
           h = absl::StripAsciiWhitespace(h);
           if (!h.empty()) hosts.emplace_back(h);
         }
         if (hosts.empty()) return "required (host:port[,host:port...])";
         o.brokers = absl::StrJoin(hosts, ",");
         return "";
       }},
      {{"topic", "(required)",
        "topic name, or a template with {schema} and {table}, e.g. cdc.{schema}.{table} "
        "(one topic per table)"},
       [](absl::string_view v, KafkaOptions& o) -> std::string {
         const std::string topic(absl::StripAsciiWhitespace(v));
         if (topic.empty()) return "required";
         // Only the two placeholders exist: anything else in braces is a typo.
         const std::string rest = absl::StrReplaceAll(topic, {{"{schema}", ""}, {"{table}", ""}});
         if (absl::StrContains(rest, "{") || absl::StrContains(rest, "}")) {
           return absl::StrCat("\"", topic,
                               "\": unknown placeholder (the template knows {schema} and {table})");
         }
         o.topic = topic;
         return "";
       }},
      {{"format", "arrow",
        "wire format of the message values: arrow, parquet, avro, proto, json (the flow's "
        "wire_format fills it)"},
       [](absl::string_view v, KafkaOptions& o) -> std::string {
         auto f = flow::ParseFlowWireFormat(v);
         if (!f.ok()) return std::string(f.status().message());
         if (f->has_value()) o.format = **f;
         return "";
       }},
      {{"compression", "none",
        "Kafka compression of message batches: none, gzip, snappy, lz4, zstd"},
       [](absl::string_view v, KafkaOptions& o) -> std::string {
         const std::string c = absl::AsciiStrToLower(absl::StripAsciiWhitespace(v));
         if (c.empty() || c == "none") {
           o.compression = "none";
         } else if (c == "gzip" || c == "snappy" || c == "lz4" || c == "zstd") {
           o.compression = c;
         } else {
           return absl::StrCat("\"", v, "\" is not one of none, gzip, snappy, lz4, zstd");
         }
         return "";
       }},
      {{"acks", "all",
        "all (-1): every in-sync replica has the message; leader (1): the leader has it; "
        "none (0): no acknowledgement (no delivery guarantee)"},
       [](absl::string_view v, KafkaOptions& o) -> std::string {
         const std::string a = absl::AsciiStrToLower(absl::StripAsciiWhitespace(v));
         if (a == "all" || a == "-1") {
           o.acks = KafkaAcks::kAll;
         } else if (a == "leader" || a == "1") {
           o.acks = KafkaAcks::kLeader;
         } else if (a == "none" || a == "0") {
           o.acks = KafkaAcks::kNone;
         } else {
           return absl::StrCat("\"", v, "\" is not one of all (-1), leader (1), none (0)");
         }
         return "";
       }},
      {{"message_mode", "batch",
        "batch: one message per table per batch, keyed by schema.table so that a table's "
        "messages stay in order; record: one message per change, keyed by the row's primary "
        "key (a JSON object) so that log compaction keeps every row's latest change"},
       [](absl::string_view v, KafkaOptions& o) -> std::string {
         const std::string m = absl::AsciiStrToLower(absl::StripAsciiWhitespace(v));
         if (m == "batch") {
           o.message_mode = KafkaMessageMode::kBatch;
         } else if (m == "record") {
           o.message_mode = KafkaMessageMode::kRecord;
         } else {
           return absl::StrCat("\"", v, "\" is not one of batch, record");
         }
         return "";
       }},
      {{"transactional_id", "",
        "set: a transactional producer with this transactional.id; each batch is one Kafka "
        "transaction that also records the last change written in progress_topic, and a "
        "restarted worker skips the changes an earlier run committed, so read_committed "
        "consumers see every change exactly once, even after a crash. One id per flow "
        "destination"},
       [](absl::string_view v, KafkaOptions& o) -> std::string {
         o.transactional_id = std::string(absl::StripAsciiWhitespace(v));
         return "";
       }},
      {{"progress_topic", "ductstream.progress.<transactional_id>",
        "with transactional_id: the compacted topic (created if missing) holding the progress "
        "records, keyed by transactional_id. Give every transactional_id its own topic"},
       [](absl::string_view v, KafkaOptions& o) -> std::string {
         const std::string topic(absl::StripAsciiWhitespace(v));
         if (std::string problem = KafkaTopicNameProblem(topic); !problem.empty()) return problem;
         o.progress_topic = topic;
         return "";
       }},
      {{"idempotence", "true",
        "idempotent producer: broker-side retries never duplicate or reorder messages (needs "
        "acks=all; off for the other acks settings)"},
       [](absl::string_view v, KafkaOptions& o) -> std::string {
         auto b = flow::ParseBoolOption(v);
         if (!b.has_value()) return absl::StrCat("\"", v, "\" is not a boolean");
         o.idempotence = *b;
         return "";
       }},
      {{"max_message_bytes", "1000000",
        "largest message produced (librdkafka message.max.bytes); a larger one fails the flow "
        "with an error naming its size, never dropped. The topic's max.message.bytes must "
        "allow it too"},
       [](absl::string_view v, KafkaOptions& o) -> std::string {
         auto n = flow::ParseByteSizeOption(v);
         // librdkafka's bounds for message.max.bytes.
         if (!n.has_value() || *n < 1000 || *n > 1000000000) {
           return absl::StrCat("\"", v, "\" is not a size between 1000 and 1000000000 bytes");
         }
         o.max_message_bytes = *n;
         return "";
       }},
      {{"delivery_timeout", "30s",
        "how long librdkafka retries one message before reporting it undelivered "
        "(message.timeout.ms); the destination then produces it again"},
       [](absl::string_view v, KafkaOptions& o) -> std::string {
         return ParseDuration(v, o.delivery_timeout, /*allow_zero=*/false);
       }},
      {{"retry_backoff", "500ms", "first wait before producing undelivered messages again"},
       [](absl::string_view v, KafkaOptions& o) -> std::string {
         return ParseDuration(v, o.retry_backoff, /*allow_zero=*/false);
       }},
      {{"retry_backoff_max", "10s", "the wait doubles up to this"},
       [](absl::string_view v, KafkaOptions& o) -> std::string {
         return ParseDuration(v, o.retry_backoff_max, /*allow_zero=*/false);
       }},
      {{"retry_timeout", "0",
        "0: retry a batch until the broker takes it (the checkpoint waits); otherwise fail "
        "the flow once one batch has been retried this long"},
       [](absl::string_view v, KafkaOptions& o) -> std::string {
         return ParseDuration(v, o.retry_timeout, /*allow_zero=*/true);
       }},
      {{"linger", "5ms", "how long the producer waits to fill a request (linger.ms)"},
       [](absl::string_view v, KafkaOptions& o) -> std::string {
         return ParseDuration(v, o.linger, /*allow_zero=*/true);
       }},
      {{"client_id", "ductstream", "the producer's client.id, shown in broker logs and metrics"},
       [](absl::string_view v, KafkaOptions& o) -> std::string {
         o.client_id = std::string(absl::StripAsciiWhitespace(v));
         if (o.client_id.empty()) return "must not be empty";
         return "";
       }},
  };
  return *table;
}

}  // namespace

std::span<const flow::OptionDoc> KafkaOptionDocs() {
  static const auto* docs = [] {
    auto* out = new std::vector<flow::OptionDoc>(OptionDocsOf(OptionTable()));
    out->push_back({"librdkafka.<property>", "",
                    "passed to librdkafka as <property> (e.g. librdkafka.security.protocol, "
                    "librdkafka.sasl.username); overrides what the options above set"});
    return out;
  }();
  return *docs;
}

absl::StatusOr<KafkaOptions> ParseKafkaOptions(const flow::Endpoint& dest,
                                               absl::string_view field) {
  KafkaOptions out;
  OptionProblems problems(field);
  auto problem = [&](absl::string_view key, absl::string_view text) { problems.Add(key, text); };
  ApplyOptions(
      dest, OptionTable(), out, problems,
      [&](const std::string& key, const std::string& value) {
        if (!absl::StartsWith(key, kPassthroughPrefix)) return false;
        const std::string property(absl::StripPrefix(key, kPassthroughPrefix));
        if (property.empty()) {
          problem(key, "names no librdkafka property");
        } else {
          out.librdkafka[property] = value;
        }
        return true;
      },
      "librdkafka.<property>");
  for (absl::string_view required : {"brokers", "topic"}) {
    auto it = dest.options.find(std::string(required));
    if (it == dest.options.end()) problem(required, "required");
  }
  if (!out.transactional_id.empty() && out.acks != KafkaAcks::kAll) {
    problem("transactional_id", "a transactional producer needs acks=all");
  }
  if (!out.transactional_id.empty() && !out.idempotence) {
    problem("transactional_id", "a transactional producer needs idempotence=true");
  }
  if (out.transactional_id.empty() && !out.progress_topic.empty()) {
    problem("progress_topic", "is only used with transactional_id");
  }
  if (!out.transactional_id.empty() && out.progress_topic.empty()) {
    if (std::string p = KafkaTopicNameProblem(KafkaProgressTopic(out)); !p.empty()) {
      problem("transactional_id",
              absl::StrCat("cannot name the default progress topic (", p, "): set progress_topic"));
    }
  }
  if (out.retry_backoff_max < out.retry_backoff) {
    problem("retry_backoff_max", "must be at least retry_backoff");
  }
  DS_RETURN_IF_ERROR(problems.ToStatus());
  if (out.acks != KafkaAcks::kAll) out.idempotence = false;  // librdkafka requires acks=all
  return out;
}

std::string KafkaTopicFor(absl::string_view topic_template, absl::string_view schema,
                          absl::string_view table) {
  return absl::StrReplaceAll(topic_template, {{"{schema}", schema}, {"{table}", table}});
}

std::string KafkaProgressTopic(const KafkaOptions& options) {
  if (!options.progress_topic.empty()) return options.progress_topic;
  return absl::StrCat("ductstream.progress.", options.transactional_id);
}

std::string KafkaTopicNameProblem(absl::string_view topic) {
  if (topic.empty()) return "must not be empty";
  if (topic.size() > 249) return absl::StrCat("\"", topic, "\" is longer than 249 characters");
  if (topic == "." || topic == "..") return absl::StrCat("\"", topic, "\" is not a topic name");
  for (char c : topic) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return absl::StrCat("\"", topic,
                          "\" is not a Kafka topic name (letters, digits, '.', '_' and '-')");
    }
  }
  return "";
}

absl::string_view KafkaAcksValue(KafkaAcks acks) {
  switch (acks) {
    case KafkaAcks::kNone:
      return "0";
    case KafkaAcks::kLeader:
      return "1";
    case KafkaAcks::kAll:
      return "all";
  }
  return "all";
}

}  // namespace ductstream::destination
