#include "ductstream/destination/http_options.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

#include "ductstream/base/status.h"
#include "ductstream/destination/option_table.h"

namespace ductstream::destination {
namespace {

// Parses one option's value into `out`; returns the problem, or "" when the value is good.
using HttpOption = ConnectorOption<HttpOptions>;

const std::vector<HttpOption>& OptionTable() {
  static const auto* table = new std::vector<HttpOption>{
      {{"url", "(required)", "http:// or https:// URL every request is sent to"},
       [](absl::string_view v, HttpOptions& o) -> std::string {
         const std::string url(absl::StripAsciiWhitespace(v));
         const std::string lower = absl::AsciiStrToLower(url);
         if (url.empty()) return "required";
         if (!absl::StartsWith(lower, "http://") && !absl::StartsWith(lower, "https://")) {
           return absl::StrCat("\"", url, "\" is not an http:// or https:// URL");
         }
         o.url = url;
         return "";
       }},
      {{"method", "POST", "HTTP method (upper-cased): POST, PUT or PATCH"},
       [](absl::string_view v, HttpOptions& o) -> std::string {
         const std::string m = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(v));
         if (m != "POST" && m != "PUT" && m != "PATCH") {
           return absl::StrCat("\"", v, "\" is not one of POST, PUT, PATCH");
         }
         o.method = m;
         return "";
       }},
      {{"format", "json",
        "wire format of the request bodies: json, arrow, parquet, avro, proto (the flow's "
        "wire_format fills it); Content-Type follows the format"},
       [](absl::string_view v, HttpOptions& o) -> std::string {
         auto f = flow::ParseFlowWireFormat(v);
         if (!f.ok()) return std::string(f.status().message());
         if (f->has_value()) o.format = **f;
         return "";
       }},
      {{"headers", "",
        "extra request headers, comma-separated Key:Value pairs, e.g. "
        "\"Authorization:Bearer token123,X-Team:data\""},
       [](absl::string_view v, HttpOptions& o) -> std::string {
         o.headers.clear();
         for (absl::string_view pair : absl::StrSplit(v, ',', absl::SkipWhitespace())) {
           const size_t colon = pair.find(':');
           const absl::string_view key = absl::StripAsciiWhitespace(
               colon == absl::string_view::npos ? pair : pair.substr(0, colon));
           if (colon == absl::string_view::npos || key.empty()) {
             return absl::StrCat("\"", absl::StripAsciiWhitespace(pair),
                                 "\" is not a Key:Value header");
           }
           for (char c : key) {
             if (absl::ascii_isspace(static_cast<unsigned char>(c)) || c == ':') {
               return absl::StrCat("\"", key, "\" is not a header name");
             }
           }
           o.headers.emplace_back(std::string(key),
                                  std::string(absl::StripAsciiWhitespace(pair.substr(colon + 1))));
         }
         return "";
       }},
      {{"timeout", "10s", "per request: connecting, sending and receiving the answer"},
       [](absl::string_view v, HttpOptions& o) -> std::string {
         return ParsePushDuration(v, o.timeout);
       }},
      {{"max_retries", "3",
        "retries of one request after a 5xx, 408, 429, timeout or connection error "
        "(attempts = max_retries + 1); then the flow fails without acknowledging the batch"},
       [](absl::string_view v, HttpOptions& o) -> std::string {
         return ParsePushRetries(v, o.retry.max_retries);
       }},
      {{"backoff_base", "200ms", "wait after the first failed attempt"},
       [](absl::string_view v, HttpOptions& o) -> std::string {
         return ParsePushDuration(v, o.retry.backoff_base);
       }},
      {{"backoff_max", "5s", "the longest wait between attempts"},
       [](absl::string_view v, HttpOptions& o) -> std::string {
         return ParsePushDuration(v, o.retry.backoff_max);
       }},
      {{"backoff_factor", "2",
        "the wait grows by this factor per attempt: min(base·factor^(k-1), max), times a "
        "random jitter in [0.5, 1.5)"},
       [](absl::string_view v, HttpOptions& o) -> std::string {
         return ParsePushFactor(v, o.retry.backoff_factor);
       }},
      {{"idempotency_header", "Idempotency-Key",
        "header carrying the change identity: \"<commit LSN>:<seq>\" per record, "
        "\"<first>..<last>\" per batch; a receiver drops a key it has already stored"},
       [](absl::string_view v, HttpOptions& o) -> std::string {
         const std::string h(absl::StripAsciiWhitespace(v));
         if (h.empty() || absl::StrContains(h, ":") || absl::StrContains(h, " ")) {
           return absl::StrCat("\"", v, "\" is not a header name");
         }
         o.idempotency_header = h;
         return "";
       }},
      {{"payload_mode", "record",
        "record: one request per change (body = the change's JSON object for json, else a "
        "one-row document in the format); batch: one request per table per batch (the "
        "table's changes as one document: JSON Lines for json)"},
       [](absl::string_view v, HttpOptions& o) -> std::string {
         const std::string m = absl::AsciiStrToLower(absl::StripAsciiWhitespace(v));
         if (m == "record") {
           o.payload_mode = HttpPayloadMode::kRecord;
         } else if (m == "batch") {
           o.payload_mode = HttpPayloadMode::kBatch;
         } else {
           return absl::StrCat("\"", v, "\" is not one of record, batch");
         }
         return "";
       }},
  };
  return *table;
}

}  // namespace

absl::Duration PushBackoff(const PushRetryOptions& retry, int attempt) {
  double wait = absl::ToDoubleSeconds(retry.backoff_base);
  const double max = absl::ToDoubleSeconds(retry.backoff_max);
  for (int i = 1; i < attempt && wait < max; ++i) wait *= retry.backoff_factor;
  return absl::Seconds(std::min(wait, max));
}

absl::Duration PushBackoffWithJitter(const PushRetryOptions& retry, int attempt, double jitter) {
  return PushBackoff(retry, attempt) * (0.5 + std::clamp(jitter, 0.0, 1.0));
}

std::string ParsePushDuration(absl::string_view value, absl::Duration& out) {
  auto d = flow::ParseDurationOption(value);
  if (!d.has_value() || *d <= absl::ZeroDuration()) {
    return absl::StrCat("\"", value, "\" is not a positive duration (e.g. 200ms, 10s, 1m)");
  }
  out = *d;
  return "";
}

std::string ParsePushRetries(absl::string_view value, int& out) {
  int n = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(value), &n) || n < 0 || n > 1000) {
    return absl::StrCat("\"", value, "\" is not a number of retries between 0 and 1000");
  }
  out = n;
  return "";
}

std::string ParsePushFactor(absl::string_view value, double& out) {
  double f = 0;
  if (!absl::SimpleAtod(absl::StripAsciiWhitespace(value), &f) || !std::isfinite(f) || f < 1.0 ||
      f > 100.0) {
    return absl::StrCat("\"", value, "\" is not a factor between 1 and 100");
  }
  out = f;
  return "";
}

std::span<const flow::OptionDoc> HttpOptionDocs() {
  static const auto* docs = new std::vector<flow::OptionDoc>(OptionDocsOf(OptionTable()));
  return *docs;
}

absl::StatusOr<HttpOptions> ParseHttpOptions(const flow::Endpoint& dest, absl::string_view field) {
  HttpOptions out;
  OptionProblems problems(field);
  auto problem = [&](absl::string_view key, absl::string_view text) { problems.Add(key, text); };
  ApplyOptions(dest, OptionTable(), out, problems);
  if (dest.options.find("url") == dest.options.end()) problem("url", "required");
  if (out.retry.backoff_max < out.retry.backoff_base) {
    problem("backoff_max", "must be at least backoff_base");
  }
  DS_RETURN_IF_ERROR(problems.ToStatus());
  return out;
}

}  // namespace ductstream::destination
