// Unit tests of the s3 destination without a server: option parsing, object keys, and the
// retriable/fatal split of S3 errors. Uploads are tested against a real S3-compatible server in
// tests/e2e/s3_destination_test.cc.

#include "ductstream/destination/s3_destination.h"

#include <gtest/gtest.h>

#include <arrow/api.h>

#include <string>

#include "absl/strings/match.h"
#include "ductstream/destination/file_destination.h"
#include "ductstream/destination/s3_options.h"

namespace ductstream::destination {
namespace {

flow::Endpoint S3(std::map<std::string, std::string> options) {
  return flow::Endpoint{"lake", "s3", std::move(options)};
}

// The tests' environment: none of the machine's AWS variables leak in.
S3EnvLookup Env(std::map<std::string, std::string> vars = {}) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(S3OptionsTest, DefaultsAndSpecExample) {
  auto o = ParseS3DestinationOptions(S3({{"bucket", "b"},
                                         {"prefix", "cdc/"},
                                         {"region", "us-east-1"},
                                         {"format", "parquet"},
                                         {"compression", "gzip"}}),
                                     "destinations[0]", Env());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->bucket, "b");
  EXPECT_EQ(o->prefix, "cdc/");
  EXPECT_EQ(o->region, "us-east-1");
  EXPECT_EQ(o->endpoint, "");
  EXPECT_FALSE(o->path_style);
  EXPECT_EQ(o->format, codec::WireFormat::kParquet);
  EXPECT_EQ(o->compression, "gzip");
  EXPECT_EQ(o->retry_timeout, absl::Minutes(5));

  auto bare = ParseS3DestinationOptions(S3({{"bucket", "b"}}), "d", Env());
  ASSERT_TRUE(bare.ok()) << bare.status();
  EXPECT_EQ(bare->format, codec::WireFormat::kParquet);
  EXPECT_EQ(bare->prefix, "");
}

TEST(S3OptionsTest, PrefixIsNormalised) {
  for (const auto& [in, want] : std::vector<std::pair<std::string, std::string>>{
           {"cdc", "cdc/"}, {"/cdc/", "cdc/"}, {"//a/b", "a/b/"}, {"/", ""}, {"", ""}}) {
    auto o = ParseS3DestinationOptions(S3({{"bucket", "b"}, {"prefix", in}}), "d", Env());
    ASSERT_TRUE(o.ok()) << o.status();
    EXPECT_EQ(o->prefix, want) << in;
  }
}

TEST(S3OptionsTest, EndpointSchemeAndPathStyle) {
  auto o = ParseS3DestinationOptions(S3({{"bucket", "b"}, {"endpoint", "http://127.0.0.1:9000/"}}),
                                     "d", Env());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->endpoint, "127.0.0.1:9000");
  EXPECT_EQ(o->scheme, "http");
  EXPECT_TRUE(o->path_style) << "an endpoint defaults to path-style";

  o = ParseS3DestinationOptions(
      S3({{"bucket", "b"}, {"endpoint", "minio.local:9000"}, {"force_path_style", "false"}}), "d",
      Env());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->scheme, "https");
  EXPECT_FALSE(o->path_style);

  o = ParseS3DestinationOptions(
      S3({{"bucket", "b"}, {"endpoint", "https://h:1"}, {"path_style", "yes"}}), "d", Env());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->path_style);
}

TEST(S3OptionsTest, EndpointAndRegionFromTheAwsVariables) {
  auto o = ParseS3DestinationOptions(S3({{"bucket", "b"}}), "d",
                                     Env({{"AWS_ENDPOINT_URL", "http://other:1"},
                                          {"AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000"},
                                          {"AWS_DEFAULT_REGION", "eu-west-1"}}));
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->endpoint, "127.0.0.1:9000");
  EXPECT_EQ(o->scheme, "http");
  EXPECT_TRUE(o->path_style);
  EXPECT_EQ(o->region, "eu-west-1");

  // The options win over the environment.
  o = ParseS3DestinationOptions(
      S3({{"bucket", "b"}, {"endpoint", "https://s3.example:443"}, {"region", "us-east-1"}}), "d",
      Env({{"AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000"}, {"AWS_REGION", "eu-west-1"}}));
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->endpoint, "s3.example:443");
  EXPECT_EQ(o->region, "us-east-1");

  o = ParseS3DestinationOptions(S3({{"bucket", "b"}}), "d",
                                Env({{"AWS_ENDPOINT_URL", "http://127.0.0.1:9000"},
                                     {"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"}}));
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->endpoint, "");
  EXPECT_FALSE(o->path_style);
}

TEST(S3OptionsTest, ProblemsAreReportedTogetherWithTheirPaths) {
  auto o = ParseS3DestinationOptions(S3({{"bucket", ""},
                                         {"endpoint", "ftp://x"},
                                         {"path_style", "maybe"},
                                         {"retry_timeout", "soon"},
                                         {"buckt", "typo"}}),
                                     "destinations[2]", Env());
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string m(o.status().message());
  EXPECT_TRUE(absl::StrContains(m, "destinations[2].options.bucket: required")) << m;
  EXPECT_TRUE(absl::StrContains(m, "destinations[2].options.endpoint: ")) << m;
  EXPECT_TRUE(absl::StrContains(m, "destinations[2].options.path_style: \"maybe\"")) << m;
  EXPECT_TRUE(absl::StrContains(m, "destinations[2].options.retry_timeout: ")) << m;
  EXPECT_TRUE(absl::StrContains(m, "destinations[2].options.buckt: unknown option")) << m;
}

TEST(S3OptionsTest, RejectsWhatCannotWork) {
  auto check = [](std::map<std::string, std::string> options, absl::string_view want) {
    auto o = ParseS3DestinationOptions(S3(std::move(options)), "d", Env());
    ASSERT_FALSE(o.ok());
    EXPECT_TRUE(absl::StrContains(o.status().message(), want)) << o.status();
  };
  check({{"bucket", "b/c"}}, "cannot contain '/'");
  check({{"bucket", "b"}, {"path_style", "true"}}, "needs an endpoint");
  check({{"bucket", "b"}, {"compression", "brotli9"}}, "d.options.compression");
  check({{"bucket", "b"}, {"format", "json"}, {"compression", "gzip"}},
        "does not apply to format json");
  check({{"bucket", "b"}, {"format", "xml"}}, "d.options.format");
  check({{"bucket", "b"}, {"path_style", "true"}, {"force_path_style", "true"}, {"endpoint", "h"}},
        "not both");
}

TEST(S3OptionsTest, AvroCompressionAndNoneForOtherFormats) {
  auto o = ParseS3DestinationOptions(
      S3({{"bucket", "b"}, {"format", "avro"}, {"compression", "deflate"}}), "d", Env());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->compression, "deflate");
  o = ParseS3DestinationOptions(S3({{"bucket", "b"}, {"format", "arrow"}, {"compression", "none"}}),
                                "d", Env());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->compression, "");
}

TEST(S3OptionsTest, EveryOptionIsDocumented) {
  std::vector<std::string> names;
  for (const flow::OptionDoc& d : S3OptionDocs()) {
    names.emplace_back(d.name);
    EXPECT_FALSE(d.description.empty()) << d.name;
  }
  for (const char* want : {"bucket", "prefix", "region", "endpoint", "path_style", "format",
                           "compression", "retry_timeout", "retry_backoff_max"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  }
}

// A relation's changes whose records hold only the commit timestamps (all CommitDate reads).
cdc::RelationChanges Changes(std::string schema, std::string table, Lsn lsn, int64_t seq,
                             std::vector<std::optional<int64_t>> commit_ts_micros) {
  arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                             arrow::default_memory_pool());
  for (const auto& v : commit_ts_micros) {
    EXPECT_TRUE((v.has_value() ? ts.Append(*v) : ts.AppendNull()).ok());
  }
  std::shared_ptr<arrow::Array> array;
  EXPECT_TRUE(ts.Finish(&array).ok());
  cdc::RelationChanges c;
  c.schema = std::move(schema);
  c.table = std::move(table);
  c.records = arrow::RecordBatch::Make(
      arrow::schema({arrow::field(cdc::kCommitTsColumn, array->type())}), array->length(), {array});
  c.first_commit_lsn = lsn;
  c.first_seq = seq;
  return c;
}

// 2024-02-29T23:59:59.999999Z and one microsecond later.
constexpr int64_t kLeapDayEnd = 1709251199999999;

TEST(S3ObjectKeyTest, LayoutIsPrefixRelationDateAndTheFileDestinationsName) {
  const auto c = Changes("public", "orders", Lsn(0x16B3748), 7, {kLeapDayEnd, kLeapDayEnd + 1});
  EXPECT_EQ(S3ObjectKey("cdc/", c, codec::WireFormat::kParquet),
            "cdc/public.orders/date=2024-02-29/00000000016B3748-0000000007.parquet");
  EXPECT_EQ(S3ObjectKey("", c, codec::WireFormat::kJson),
            "public.orders/date=2024-02-29/00000000016B3748-0000000007.jsonl");
  // The file destination and the s3 destination name a batch alike (one replay rule for both).
  const std::string file = FileDestinationPath(c, codec::WireFormat::kAvro);
  std::string key = S3ObjectKey("", c, codec::WireFormat::kAvro);
  key.erase(key.find("date=2024-02-29/"), std::string("date=2024-02-29/").size());
  EXPECT_EQ(key, file);
}

TEST(S3ObjectKeyTest, DateIsTheFirstChangesUtcCommitDate) {
  EXPECT_EQ(CommitDate(Changes("s", "t", Lsn(1), 0, {kLeapDayEnd + 1, kLeapDayEnd})), "2024-03-01");
  EXPECT_EQ(CommitDate(Changes("s", "t", Lsn(1), 0, {std::nullopt, kLeapDayEnd})), "2024-02-29");
  EXPECT_EQ(CommitDate(Changes("s", "t", Lsn(1), 0, {std::nullopt})), "unknown");
  EXPECT_EQ(CommitDate(cdc::RelationChanges{}), "unknown");
}

TEST(S3ObjectKeyTest, NamesCannotEscapeTheirFolder) {
  const auto c = Changes("we/ird", "a%b/c", Lsn(0xA), 1, {0});
  EXPECT_EQ(S3ObjectKey("p/", c, codec::WireFormat::kArrow),
            "p/we%2Fird.a%25b%2Fc/date=1970-01-01/000000000000000A-0000000001.arrows");
}

TEST(S3ErrorsTest, RetriableAndFatal) {
  EXPECT_TRUE(IsRetriableS3Error(
      "IOError: When uploading part for key 'k' in bucket 'b': AWS Error NETWORK_CONNECTION "
      "during UploadPart operation: curlCode: 7, Couldn't connect to server"));
  EXPECT_TRUE(IsRetriableS3Error("AWS Error SLOW_DOWN during PutObject operation: Reduce rate"));
  EXPECT_TRUE(IsRetriableS3Error("AWS Error UNKNOWN (HTTP status 503) during PutObject"));
  EXPECT_FALSE(IsRetriableS3Error("AWS Error NO_SUCH_BUCKET during PutObject operation: nope"));
  EXPECT_FALSE(IsRetriableS3Error("AWS Error ACCESS_DENIED during PutObject operation: denied"));
  EXPECT_FALSE(IsRetriableS3Error("AWS Error INVALID_ACCESS_KEY_ID during PutObject"));
  EXPECT_FALSE(IsRetriableS3Error("encoding public.t: unsupported type"));
}

TEST(S3DestinationTest, FactoryValidatesWithoutIo) {
  S3DestinationConfig config;
  config.name = "lake";
  auto d = MakeS3Destination(config);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);

  // An endpoint nobody listens on: building the client sends nothing, so this succeeds.
  config.options.bucket = "b";
  config.options.region = "us-east-1";
  config.options.endpoint = "127.0.0.1:1";
  config.options.scheme = "http";
  config.options.path_style = true;
  d = MakeS3Destination(config);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ((*d)->name(), "lake");
}

}  // namespace
}  // namespace ductstream::destination
