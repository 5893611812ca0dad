#include "ductstream/destination/s3_options.h"

#include <array>
#include <cstdlib>
#include <functional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace ductstream::destination {
namespace {

using Setter =
    std::function<std::optional<std::string>(absl::string_view value, S3DestinationOptions& out)>;

struct S3Option {
  flow::OptionDoc doc;
  Setter set;  // nullopt on success, else the problem
};

std::optional<std::string> SetDuration(absl::string_view v, absl::Duration& out) {
  auto d = flow::ParseDurationOption(v);
  if (!d.has_value()) {
    return absl::StrCat("\"", v, "\" is not a duration (Go syntax: 500ms, 30s, 5m)");
  }
  out = *d;
  return std::nullopt;
}

std::optional<std::string> SetEndpoint(absl::string_view v, S3DestinationOptions& o) {
  const std::string lower = absl::AsciiStrToLower(v);
  if (absl::StartsWith(lower, "http://")) {
    o.scheme = "http";
    v.remove_prefix(7);
  } else if (absl::StartsWith(lower, "https://")) {
    o.scheme = "https";
    v.remove_prefix(8);
  } else if (absl::StrContains(v, "://")) {
    return absl::StrCat("\"", v, "\": the scheme must be http or https");
  }
  absl::ConsumeSuffix(&v, "/");
  if (v.empty() || absl::StrContains(v, '/')) {
    return absl::StrCat("\"", v, "\" is not host[:port] (a path is not allowed)");
  }
  o.endpoint = std::string(v);
  return std::nullopt;
}

const std::vector<S3Option>& Table() {
  static const auto* table = new std::vector<S3Option>{
      {{"bucket", "required", "bucket name"},
       [](absl::string_view v, S3DestinationOptions& o) -> std::optional<std::string> {
         if (absl::StrContains(v, '/')) return "a bucket name cannot contain '/' (use prefix)";
         o.bucket = std::string(v);
         return std::nullopt;
       }},
      {{"prefix", "", "key prefix; a leading `/` is dropped and a trailing `/` added"},
       [](absl::string_view v, S3DestinationOptions& o) -> std::optional<std::string> {
         while (absl::ConsumePrefix(&v, "/")) {
         }
         o.prefix = v.empty() || absl::EndsWith(v, "/") ? std::string(v) : absl::StrCat(v, "/");
         return std::nullopt;
       }},
      {{"region", "`AWS_REGION`, else `AWS_DEFAULT_REGION`, else the profile's, else `us-east-1`",
        "AWS region"},
       [](absl::string_view v, S3DestinationOptions& o) -> std::optional<std::string> {
         o.region = std::string(v);
         return std::nullopt;
       }},
      {{"endpoint", "`AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`, else AWS",
        "S3-compatible endpoint: `http://host:port`, `https://host:port` or `host:port` "
        "(https)"},
       [](absl::string_view v, S3DestinationOptions& o) { return SetEndpoint(v, o); }},

      {{"path_style", "`true` with `endpoint`, else `false`",
        "path-style addressing (`host/bucket/key`) instead of virtual-hosted "
        "(`bucket.host/key`); alias `force_path_style`"},
       nullptr},  // parsed after the endpoint is known
      {{"format", "the flow's, else `parquet`",
        "`parquet` (`.parquet`), `arrow` (`.arrows`, IPC stream), `avro` (`.avro`), `json` "
        "(`.jsonl`), `proto` (`.pb`)"},
       [](absl::string_view v, S3DestinationOptions& o) -> std::optional<std::string> {
         auto f = flow::ParseFlowWireFormat(v);
         if (!f.ok()) return std::string(f.status().message());
         if (f->has_value()) o.format = **f;
         return std::nullopt;
       }},
      {{"compression", "parquet `snappy`, avro `null`",
        "parquet: `snappy`, `zstd`, `gzip`, `lz4`, `none`; avro: `null`, `deflate`, `snappy`; "
        "not accepted for the other formats"},
       [](absl::string_view v, S3DestinationOptions& o) -> std::optional<std::string> {
         o.compression = std::string(v);
         return std::nullopt;
       }},
      {{"retry_timeout", "`5m`",
        "how long one object upload is retried on network errors, 5xx and throttling before "
        "the flow stops (nothing is acknowledged meanwhile); `0` retries forever"},
       [](absl::string_view v, S3DestinationOptions& o) {
         return SetDuration(v, o.retry_timeout);
       }},
      {{"retry_backoff_max", "`30s`",
        "cap of the exponential backoff between upload attempts (starting at 200ms)"},
       [](absl::string_view v, S3DestinationOptions& o) {
         return SetDuration(v, o.retry_backoff_max);
       }},
  };
  return *table;
}

}  // namespace

S3EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

std::span<const flow::OptionDoc> S3OptionDocs() {
  static const auto* docs = [] {
    auto* d = new std::vector<flow::OptionDoc>;
    for (const S3Option& o : Table()) d->push_back(o.doc);
    return d;
  }();
  return *docs;
}

absl::StatusOr<S3DestinationOptions> ParseS3DestinationOptions(const flow::Endpoint& dest,
                                                               absl::string_view field,
                                                               const S3EnvLookup& env) {
  S3DestinationOptions out;
  std::vector<std::string> problems;
  auto problem = [&](absl::string_view key, absl::string_view text) {
    problems.push_back(absl::StrCat(field, ".options.", key, ": ", text));
  };
  std::optional<std::string> path_style;  // value, and the key it came under
  std::string path_style_key;
  for (const auto& [key, raw] : dest.options) {
    const absl::string_view value = absl::StripAsciiWhitespace(raw);
    if (key == "path_style" || key == "force_path_style") {
      if (path_style.has_value()) {
        problem(key, "give path_style or force_path_style, not both");
        continue;
      }
      path_style = std::string(value);
      path_style_key = key;
      continue;
    }
    const S3Option* option = nullptr;
    for (const S3Option& o : Table()) {
      if (o.doc.name == key) option = &o;
    }
    if (option == nullptr) {
      std::vector<absl::string_view> names;
      for (const S3Option& o : Table()) names.push_back(o.doc.name);
      problem(key, absl::StrCat("unknown option (expected ", absl::StrJoin(names, ", "), ")"));
      continue;
    }
    if (value.empty()) continue;  // an empty string means "the default"
    if (auto p = option->set(value, out); p.has_value()) problem(key, *p);
  }
  auto bucket = dest.options.find("bucket");
  if (bucket == dest.options.end() || absl::StripAsciiWhitespace(bucket->second).empty()) {
    problem("bucket", "required");
  }

  auto env_value = [&](const char* name) {
    std::optional<std::string> v = env(name);
    return v.has_value() ? std::string(absl::StripAsciiWhitespace(*v)) : std::string();
  };
  if (out.endpoint.empty() &&
      flow::ParseBoolOption(env_value("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) != true) {
    for (const char* name : {"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"}) {
      const std::string v = env_value(name);
      if (v.empty()) continue;
      if (auto p = SetEndpoint(v, out); p.has_value()) {
        problems.push_back(absl::StrCat("environment variable ", name, ": ", *p));
      }
      break;
    }
  }
  for (const char* name : {"AWS_REGION", "AWS_DEFAULT_REGION"}) {
    if (out.region.empty()) out.region = env_value(name);
  }
  out.path_style = !out.endpoint.empty();
  if (path_style.has_value() && !path_style->empty()) {
    std::optional<bool> b = flow::ParseBoolOption(*path_style);
    if (!b.has_value()) {
      problem(path_style_key, absl::StrCat("\"", *path_style, "\" is not a boolean"));
    } else if (*b && out.endpoint.empty()) {
      problem(path_style_key,
              "path-style addressing needs an endpoint (set endpoint, e.g. "
              "https://s3.us-east-1.amazonaws.com)");
    } else {
      out.path_style = *b;
    }
  }

  if (!out.compression.empty()) {
    const bool takes_compression =
        out.format == codec::WireFormat::kParquet || out.format == codec::WireFormat::kAvro;
    const std::string lower = absl::AsciiStrToLower(out.compression);
    if (!takes_compression && lower != "none") {
      problem("compression", absl::StrCat("\"", out.compression, "\" does not apply to format ",
                                          codec::WireFormatName(out.format),
                                          " (compression is for parquet and avro objects)"));
    } else if (takes_compression) {
      // The encoder factory is pure validation: an unknown codec fails here, not at the first
      // batch.
      codec::EncoderOptions encoder;
      encoder.compression = out.compression;
      auto made = codec::MakeEncoder(out.format, encoder);
      if (!made.ok()) problem("compression", made.status().message());
    } else {
      out.compression.clear();
    }
  }
  if (!problems.empty()) return absl::InvalidArgumentError(absl::StrJoin(problems, "; "));
  return out;
}

}  // namespace ductstream::destination
