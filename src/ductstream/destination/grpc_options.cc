#include "ductstream/destination/grpc_options.h"

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

#include "ductstream/base/status.h"
#include "ductstream/destination/option_table.h"

namespace ductstream::destination {
namespace {

using GrpcOption = ConnectorOption<GrpcOptions>;

const std::vector<GrpcOption>& OptionTable() {
  static const auto* table = new std::vector<GrpcOption>{
      {{"target", "(required)",
        "the receiver's address: host:port, or a gRPC target URI (dns:///host:443)"},
       [](absl::string_view v, GrpcOptions& o) -> std::string {
         o.target = std::string(absl::StripAsciiWhitespace(v));
         if (o.target.empty()) return "required (host:port)";
         return "";
       }},
      {{"tls", "false", "TLS to the receiver (system roots unless ca_file is set)"},
       [](absl::string_view v, GrpcOptions& o) -> std::string {
         auto b = flow::ParseBoolOption(v);
         if (!b.has_value()) return absl::StrCat("\"", v, "\" is not a boolean");
         o.tls = *b;
         return "";
       }},
      {{"ca_file", "", "PEM file of the root certificates that sign the receiver's (needs tls)"},
       [](absl::string_view v, GrpcOptions& o) -> std::string {
         o.ca_file = std::string(absl::StripAsciiWhitespace(v));
         return "";
       }},
      {{"token", "", "bearer token, sent as \"authorization: Bearer <token>\" call metadata"},
       [](absl::string_view v, GrpcOptions& o) -> std::string {
         o.token = std::string(absl::StripAsciiWhitespace(v));
         return "";
       }},
      {{"format", "proto",
        "wire format of the changes: proto (the typed Batch of data.proto), or arrow, parquet, "
        "avro, json as an opaque payload (the flow's wire_format fills it)"},
       [](absl::string_view v, GrpcOptions& o) -> std::string {
         auto f = flow::ParseFlowWireFormat(v);
         if (!f.ok()) return std::string(f.status().message());
         if (f->has_value()) o.format = **f;
         return "";
       }},
      {{"timeout", "10s", "deadline of one IngestBatch call"},
       [](absl::string_view v, GrpcOptions& o) -> std::string {
         return ParsePushDuration(v, o.timeout);
       }},
      {{"max_retries", "3",
        "retries of one call answered UNAVAILABLE, DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED "
        "(attempts = max_retries + 1); any other status fails the flow at once"},
       [](absl::string_view v, GrpcOptions& o) -> std::string {
         return ParsePushRetries(v, o.retry.max_retries);
       }},
      {{"backoff_base", "200ms", "wait after the first failed attempt"},
       [](absl::string_view v, GrpcOptions& o) -> std::string {
         return ParsePushDuration(v, o.retry.backoff_base);
       }},
      {{"backoff_max", "5s", "the longest wait between attempts"},
       [](absl::string_view v, GrpcOptions& o) -> std::string {
         return ParsePushDuration(v, o.retry.backoff_max);
       }},
      {{"backoff_factor", "2",
        "the wait grows by this factor per attempt, times a random jitter in [0.5, 1.5)"},
       [](absl::string_view v, GrpcOptions& o) -> std::string {
         return ParsePushFactor(v, o.retry.backoff_factor);
       }},
  };
  return *table;
}

}  // namespace

std::span<const flow::OptionDoc> GrpcOptionDocs() {
  static const auto* docs = new std::vector<flow::OptionDoc>(OptionDocsOf(OptionTable()));
  return *docs;
}

absl::StatusOr<GrpcOptions> ParseGrpcOptions(const flow::Endpoint& dest, absl::string_view field) {
  GrpcOptions out;
  OptionProblems problems(field);
  auto problem = [&](absl::string_view key, absl::string_view text) { problems.Add(key, text); };
  ApplyOptions(dest, OptionTable(), out, problems);
  if (dest.options.find("target") == dest.options.end()) problem("target", "required");
  if (!out.ca_file.empty() && !out.tls) problem("ca_file", "needs tls=true");
  if (out.retry.backoff_max < out.retry.backoff_base) {
    problem("backoff_max", "must be at least backoff_base");
  }
  DS_RETURN_IF_ERROR(problems.ToStatus());
  return out;
}

}  // namespace ductstream::destination
