#include "ductstream/destination/http_options.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"
#include "ductstream/destination/grpc_options.h"
#include "ductstream/destination/http_destination.h"

namespace ductstream::destination {
namespace {

flow::Endpoint Dest(std::map<std::string, std::string> options, const std::string& type = "http") {
  flow::Endpoint e;
  e.name = "out";
  e.type = type;
  e.options = std::move(options);
  return e;
}

TEST(HttpOptionsTest, DefaultsFollowTheSpec) {
  auto o = ParseHttpOptions(Dest({{"url", "http://127.0.0.1:8080/hook"}}), "destinations[0]");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->url, "http://127.0.0.1:8080/hook");
  EXPECT_EQ(o->method, "POST");
  EXPECT_EQ(o->format, codec::WireFormat::kJson);
  EXPECT_EQ(o->timeout, absl::Seconds(10));
  EXPECT_EQ(o->retry.max_retries, 3);
  EXPECT_EQ(o->retry.backoff_base, absl::Milliseconds(200));
  EXPECT_EQ(o->retry.backoff_max, absl::Seconds(5));
  EXPECT_DOUBLE_EQ(o->retry.backoff_factor, 2.0);
  EXPECT_EQ(o->idempotency_header, "Idempotency-Key");
  EXPECT_EQ(o->payload_mode, HttpPayloadMode::kRecord);
  EXPECT_TRUE(o->headers.empty());
}

TEST(HttpOptionsTest, ParsesTheExampleFlowOptions) {
  auto o = ParseHttpOptions(Dest({{"url", "https://example.com/ingest"},
                                  {"method", "put"},
                                  {"format", "arrow"},
                                  {"headers", "Authorization:Bearer token123, X-Team : data"},
                                  {"max_retries", "5"},
                                  {"backoff_base", "100ms"},
                                  {"backoff_max", "2s"},
                                  {"backoff_factor", "3"},
                                  {"timeout", "1s"},
                                  {"payload_mode", "BATCH"},
                                  {"idempotency_header", "X-Key"},
                                  {"flow_id", "f1"}}),
                            "destinations[0]");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->method, "PUT");
  EXPECT_EQ(o->format, codec::WireFormat::kArrow);
  ASSERT_EQ(o->headers.size(), 2u);
  EXPECT_EQ(o->headers[0].first, "Authorization");
  EXPECT_EQ(o->headers[0].second, "Bearer token123");
  EXPECT_EQ(o->headers[1].first, "X-Team");
  EXPECT_EQ(o->headers[1].second, "data");
  EXPECT_EQ(o->retry.max_retries, 5);
  EXPECT_EQ(o->retry.backoff_base, absl::Milliseconds(100));
  EXPECT_EQ(o->retry.backoff_max, absl::Seconds(2));
  EXPECT_DOUBLE_EQ(o->retry.backoff_factor, 3.0);
  EXPECT_EQ(o->timeout, absl::Seconds(1));
  EXPECT_EQ(o->payload_mode, HttpPayloadMode::kBatch);
  EXPECT_EQ(o->idempotency_header, "X-Key");
}

TEST(HttpOptionsTest, ReportsEveryProblemWithItsPath) {
  auto o = ParseHttpOptions(Dest({{"method", "DELETE"},
                                  {"timeout", "soon"},
                                  {"max_retries", "-1"},
                                  {"backoff_factor", "0.5"},
                                  {"headers", "NoColon"},
                                  {"payload_mode", "stream"},
                                  {"urll", "http://x"}}),
                            "destinations[2]");
  ASSERT_FALSE(o.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(o.status()));
  const std::string m(o.status().message());
  for (const char* want :
       {"destinations[2].options.url: required", "destinations[2].options.method: \"DELETE\"",
        "destinations[2].options.timeout: \"soon\"", "destinations[2].options.max_retries",
        "destinations[2].options.backoff_factor", "destinations[2].options.headers: \"NoColon\"",
        "destinations[2].options.payload_mode", "destinations[2].options.urll: unknown option"}) {
    EXPECT_TRUE(absl::StrContains(m, want)) << want << " not in: " << m;
  }
}

TEST(HttpOptionsTest, RejectsNonHttpUrlsAndInvertedBackoff) {
  auto o = ParseHttpOptions(
      Dest({{"url", "ftp://x"}, {"backoff_base", "10s"}, {"backoff_max", "1s"}}), "d");
  ASSERT_FALSE(o.ok());
  EXPECT_TRUE(absl::StrContains(o.status().message(), "not an http:// or https:// URL"));
  EXPECT_TRUE(absl::StrContains(o.status().message(), "must be at least backoff_base"));
}

TEST(HttpOptionsTest, EveryOptionIsDocumented) {
  std::vector<std::string> names;
  for (const flow::OptionDoc& d : HttpOptionDocs()) {
    names.emplace_back(d.name);
    EXPECT_FALSE(d.description.empty()) << d.name;
  }
  for (const char* want :
       {"url", "method", "format", "headers", "timeout", "max_retries", "backoff_base",
        "backoff_max", "backoff_factor", "idempotency_header", "payload_mode"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  }
}

TEST(PushBackoffTest, GrowsByTheFactorUpToTheMaximumWithJitter) {
  PushRetryOptions r;  // 200ms, 5s, 2
  EXPECT_EQ(PushBackoff(r, 1), absl::Milliseconds(200));
  EXPECT_EQ(PushBackoff(r, 2), absl::Milliseconds(400));
  EXPECT_EQ(PushBackoff(r, 3), absl::Milliseconds(800));
  EXPECT_EQ(PushBackoff(r, 6), absl::Seconds(5));
  EXPECT_EQ(PushBackoff(r, 60), absl::Seconds(5));
  EXPECT_EQ(PushBackoffWithJitter(r, 1, 0.0), absl::Milliseconds(100));
  EXPECT_EQ(PushBackoffWithJitter(r, 1, 0.5), absl::Milliseconds(200));
  EXPECT_LT(PushBackoffWithJitter(r, 1, 0.999), absl::Milliseconds(300));
}

TEST(HttpStatusTest, RetriesOnlyTransientAnswers) {
  for (long s : {408L, 429L, 500L, 502L, 503L, 504L}) EXPECT_TRUE(IsRetriableHttpStatus(s)) << s;
  for (long s : {400L, 401L, 403L, 404L, 409L, 413L, 422L}) {
    EXPECT_FALSE(IsRetriableHttpStatus(s)) << s;
  }
}

TEST(GrpcOptionsTest, DefaultsAndAllOptions) {
  auto d = ParseGrpcOptions(Dest({{"target", "127.0.0.1:9000"}}, "grpc"), "destinations[0]");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->target, "127.0.0.1:9000");
  EXPECT_FALSE(d->tls);
  EXPECT_EQ(d->format, codec::WireFormat::kProto);
  EXPECT_EQ(d->timeout, absl::Seconds(10));
  EXPECT_EQ(d->retry.max_retries, 3);

  auto o = ParseGrpcOptions(Dest({{"target", "ingest.example.com:443"},
                                  {"tls", "true"},
                                  {"ca_file", "/etc/ca.pem"},
                                  {"token", "s3cret"},
                                  {"format", "arrow"},
                                  {"timeout", "3s"},
                                  {"max_retries", "7"},
                                  {"backoff_base", "50ms"},
                                  {"backoff_max", "1s"},
                                  {"backoff_factor", "1.5"}},
                                 "grpc"),
                            "destinations[0]");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->tls);
  EXPECT_EQ(o->ca_file, "/etc/ca.pem");
  EXPECT_EQ(o->token, "s3cret");
  EXPECT_EQ(o->format, codec::WireFormat::kArrow);
  EXPECT_EQ(o->timeout, absl::Seconds(3));
  EXPECT_EQ(o->retry.max_retries, 7);
  EXPECT_EQ(o->retry.backoff_base, absl::Milliseconds(50));
  EXPECT_DOUBLE_EQ(o->retry.backoff_factor, 1.5);
}

TEST(GrpcOptionsTest, ReportsProblems) {
  auto o = ParseGrpcOptions(
      Dest({{"tls", "maybe"}, {"ca_file", "/x.pem"}, {"endpoint", "x:1"}}, "grpc"), "d[1]");
  ASSERT_FALSE(o.ok());
  const std::string m(o.status().message());
  for (const char* want :
       {"d[1].options.target: required", "d[1].options.tls: \"maybe\"",
        "d[1].options.ca_file: needs tls=true", "d[1].options.endpoint: unknown option"}) {
    EXPECT_TRUE(absl::StrContains(m, want)) << want << " not in: " << m;
  }
}

}  // namespace
}  // namespace ductstream::destination
