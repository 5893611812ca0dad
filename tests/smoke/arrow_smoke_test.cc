// Arrow C++ (from the pyarrow wheel) builds a record batch of several types and writes Parquet and
// Arrow IPC files; pyarrow, a reader we did not write, reads them back with identical values.
#include <arrow/api.h>
#include <arrow/io/file.h>
#include <arrow/ipc/writer.h>
#include <arrow/util/decimal.h>
#include <gtest/gtest.h>
#include <parquet/arrow/writer.h>

#include <unistd.h>
#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "ductstream/testing/pg_sandbox.h"
#include "ductstream/testing/subprocess.h"

namespace ductstream {
namespace {

using nlohmann::json;

// The source data, in plain C++ so the expectation does not go through Arrow at all.
const std::vector<std::optional<int64_t>> kIds = {1, -2, std::numeric_limits<int64_t>::max(),
                                                  std::nullopt};
const std::vector<std::optional<double>> kPrices = {1.5, std::nan(""), -INFINITY, std::nullopt};
const std::vector<std::optional<std::string>> kNames = {"alpha", "", "ünïcødé ✓", std::nullopt};
const std::vector<std::optional<bool>> kFlags = {true, false, std::nullopt, true};
const std::vector<std::optional<int64_t>> kTimestamps = {0, 1700000000123456, -1, std::nullopt};
const std::vector<std::optional<std::string>> kAmounts = {"12345678901234.5678", "-0.0001",
                                                          "0.0000", std::nullopt};
const std::vector<std::optional<std::vector<int32_t>>> kTags = {
    std::vector<int32_t>{1, 2}, std::vector<int32_t>{}, std::nullopt, std::vector<int32_t>{-7}};
const std::vector<std::optional<std::string>> kBlobs = {std::string("\x00\xff\x10", 3), "",
                                                        std::nullopt, "ab"};
const std::vector<std::optional<int32_t>> kDays = {0, 19000, -1, std::nullopt};

template <typename Builder, typename T>
std::shared_ptr<arrow::Array> Build(Builder&& builder,
                                    const std::vector<std::optional<T>>& values) {
  for (const auto& v : values) {
    if (v) {
      EXPECT_TRUE(builder.Append(*v).ok());
    } else {
      EXPECT_TRUE(builder.AppendNull().ok());
    }
  }
  return builder.Finish().ValueOrDie();
}

std::shared_ptr<arrow::RecordBatch> MakeBatch() {
  auto decimal_type = arrow::decimal128(20, 4);
  arrow::Decimal128Builder amounts(decimal_type);
  for (const auto& a : kAmounts) {
    if (a) {
      EXPECT_TRUE(amounts.Append(arrow::Decimal128::FromString(*a).ValueOrDie()).ok());
    } else {
      EXPECT_TRUE(amounts.AppendNull().ok());
    }
  }
  auto list_builder = std::make_shared<arrow::ListBuilder>(arrow::default_memory_pool(),
                                                           std::make_shared<arrow::Int32Builder>());
  auto* ints = static_cast<arrow::Int32Builder*>(list_builder->value_builder());
  for (const auto& tags : kTags) {
    if (!tags) {
      EXPECT_TRUE(list_builder->AppendNull().ok());
      continue;
    }
    EXPECT_TRUE(list_builder->Append().ok());
    for (int32_t t : *tags) EXPECT_TRUE(ints->Append(t).ok());
  }
  auto ts_type = arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
  auto schema = arrow::schema({
      arrow::field("id", arrow::int64()),
      arrow::field("price", arrow::float64()),
      arrow::field("name", arrow::utf8()),
      arrow::field("flag", arrow::boolean()),
      arrow::field("ts", ts_type),
      arrow::field("amount", decimal_type),
      arrow::field("tags", arrow::list(arrow::int32())),
      arrow::field("blob", arrow::binary()),
      arrow::field("day", arrow::date32()),
  });
  return arrow::RecordBatch::Make(
      schema, static_cast<int64_t>(kIds.size()),
      {Build(arrow::Int64Builder(), kIds), Build(arrow::DoubleBuilder(), kPrices),
       Build(arrow::StringBuilder(), kNames), Build(arrow::BooleanBuilder(), kFlags),
       Build(arrow::TimestampBuilder(ts_type, arrow::default_memory_pool()), kTimestamps),
       amounts.Finish().ValueOrDie(), list_builder->Finish().ValueOrDie(),
       Build(arrow::BinaryBuilder(), kBlobs), Build(arrow::Date32Builder(), kDays)});
}

template <typename T, typename F>
json Expected(const std::vector<std::optional<T>>& values, F convert) {
  json out = json::array();
  for (const auto& v : values) out.push_back(v ? convert(*v) : json());
  return out;
}

std::string PyFloatRepr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  // Python's repr is the shortest round-trip form; our test values are exact in a few digits.
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (s.back() == '.') s += '0';
  return s;
}

std::string Hex(const std::string& bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

void ExpectReadBackIdentical(const std::string& path, const std::string& format) {
  auto out = testing::RunCommandOk(
      {testing::PythonBin(), testing::SourceDir() + "/tests/smoke/read_arrow.py", path, format});
  ASSERT_TRUE(out.ok()) << out.status();
  json got = json::parse(*out);
  EXPECT_EQ(got["num_rows"], 4);
  EXPECT_EQ(got["types"]["id"], "int64");
  EXPECT_EQ(got["types"]["price"], "double");
  EXPECT_EQ(got["types"]["name"], "string");
  EXPECT_EQ(got["types"]["flag"], "bool");
  EXPECT_EQ(got["types"]["ts"], "timestamp[us, tz=UTC]");
  EXPECT_EQ(got["types"]["amount"], "decimal128(20, 4)");
  EXPECT_EQ(got["types"]["tags"], "list<int32>");
  EXPECT_EQ(got["types"]["blob"], "binary");
  EXPECT_EQ(got["types"]["day"], "date32[day]");
  const json& c = got["columns"];
  EXPECT_EQ(c["id"], Expected(kIds, [](int64_t v) { return json(v); }));
  EXPECT_EQ(c["price"], Expected(kPrices, [](double v) { return json(PyFloatRepr(v)); }));
  EXPECT_EQ(c["name"], Expected(kNames, [](const std::string& v) { return json(v); }));
  EXPECT_EQ(c["flag"], Expected(kFlags, [](bool v) { return json(v); }));
  EXPECT_EQ(c["ts"], Expected(kTimestamps, [](int64_t v) { return json(v); }));
  EXPECT_EQ(c["amount"], Expected(kAmounts, [](const std::string& v) { return json(v); }));
  EXPECT_EQ(c["tags"], Expected(kTags, [](const std::vector<int32_t>& v) { return json(v); }));
  EXPECT_EQ(c["blob"], Expected(kBlobs, [](const std::string& v) { return json(Hex(v)); }));
  EXPECT_EQ(c["day"], Expected(kDays, [](int32_t v) { return json(v); }));
}

class ArrowSmokeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("ds-arrow-smoke-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(ArrowSmokeTest, ParquetReadBackByPyarrow) {
  auto batch = MakeBatch();
  ASSERT_TRUE(batch->ValidateFull().ok());
  auto table = arrow::Table::FromRecordBatches({batch}).ValueOrDie();
  const std::string path = (dir_ / "smoke.parquet").string();
  auto sink = arrow::io::FileOutputStream::Open(path).ValueOrDie();
  auto props =
      parquet::WriterProperties::Builder().compression(arrow::Compression::SNAPPY)->build();
  auto arrow_props = parquet::ArrowWriterProperties::Builder().store_schema()->build();
  ASSERT_TRUE(parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), sink, 1024, props,
                                         arrow_props)
                  .ok());
  ASSERT_TRUE(sink->Close().ok());
  ExpectReadBackIdentical(path, "parquet");
}

TEST_F(ArrowSmokeTest, IpcFileReadBackByPyarrow) {
  auto batch = MakeBatch();
  const std::string path = (dir_ / "smoke.arrow").string();
  auto sink = arrow::io::FileOutputStream::Open(path).ValueOrDie();
  auto writer = arrow::ipc::MakeFileWriter(sink, batch->schema()).ValueOrDie();
  ASSERT_TRUE(writer->WriteRecordBatch(*batch).ok());
  ASSERT_TRUE(writer->Close().ok());
  ASSERT_TRUE(sink->Close().ok());
  ExpectReadBackIdentical(path, "ipc");
}

}  // namespace
}  // namespace ductstream
