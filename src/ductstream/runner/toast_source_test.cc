#include "ductstream/runner/toast_source.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace ductstream::runner {
namespace {

// One Arrow value, as the value codec would have built it, rendered as a key parameter.
template <typename Builder, typename T>
std::optional<std::string> Render(std::shared_ptr<arrow::DataType> type, T value) {
  Builder builder(type, arrow::default_memory_pool());
  EXPECT_TRUE(builder.Append(value).ok());
  std::shared_ptr<arrow::Array> array;
  EXPECT_TRUE(builder.Finish(&array).ok());
  return KeyText(*array, 0);
}

TEST(KeyTextTest, RendersPostgresTextInput) {
  EXPECT_EQ(Render<arrow::Int32Builder>(arrow::int32(), -42), "-42");
  EXPECT_EQ(Render<arrow::Int64Builder>(arrow::int64(), int64_t{1} << 40), "1099511627776");
  EXPECT_EQ(Render<arrow::BooleanBuilder>(arrow::boolean(), true), "true");
  EXPECT_EQ(Render<arrow::StringBuilder>(arrow::utf8(), "ü 'q'"), "ü 'q'");
  EXPECT_EQ(Render<arrow::BinaryBuilder>(arrow::binary(), std::string("\x00\xff\x10", 3)),
            "\\x00ff10");
  EXPECT_EQ(Render<arrow::BinaryBuilder>(arrow::binary(), std::string()), "\\x");
  EXPECT_EQ(Render<arrow::DoubleBuilder>(arrow::float64(), 0.1), "0.1");
  EXPECT_EQ(Render<arrow::DoubleBuilder>(arrow::float64(), std::nan("")), "NaN");
  EXPECT_EQ(Render<arrow::DoubleBuilder>(arrow::float64(), -HUGE_VAL), "-Infinity");
  EXPECT_EQ(Render<arrow::FloatBuilder>(arrow::float32(), 1.5f), "1.5");
  EXPECT_EQ(Render<arrow::Decimal128Builder>(arrow::decimal128(10, 2), arrow::Decimal128(-1)),
            "-0.01");
  // Dates and timestamps: Unix-epoch values, ±infinity as the raw extremes.
  EXPECT_EQ(Render<arrow::Date32Builder>(arrow::date32(), 20513), "2026-03-01");
  EXPECT_EQ(Render<arrow::Date32Builder>(arrow::date32(), std::numeric_limits<int32_t>::max()),
            "infinity");
  EXPECT_EQ(Render<arrow::Date32Builder>(arrow::date32(), -735965), "0047-12-31 BC");
  EXPECT_EQ(Render<arrow::TimestampBuilder>(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                                            int64_t{1772368496789012}),
            "2026-03-01 12:34:56.789012+00");
  EXPECT_EQ(Render<arrow::TimestampBuilder>(arrow::timestamp(arrow::TimeUnit::MICRO),
                                            std::numeric_limits<int64_t>::min()),
            "-infinity");
  EXPECT_EQ(
      Render<arrow::Time64Builder>(arrow::time64(arrow::TimeUnit::MICRO), int64_t{86399999999}),
      "23:59:59.999999");
}

TEST(KeyTextTest, NullAndUnsupportedTypesHaveNoText) {
  arrow::Int32Builder nulls;
  ASSERT_TRUE(nulls.AppendNull().ok());
  std::shared_ptr<arrow::Array> array;
  ASSERT_TRUE(nulls.Finish(&array).ok());
  EXPECT_EQ(KeyText(*array, 0), std::nullopt);
  arrow::ListBuilder lists(arrow::default_memory_pool(), std::make_shared<arrow::Int32Builder>());
  ASSERT_TRUE(lists.Append().ok());
  ASSERT_TRUE(static_cast<arrow::Int32Builder*>(lists.value_builder())->Append(1).ok());
  std::shared_ptr<arrow::Array> list;
  ASSERT_TRUE(lists.Finish(&list).ok());
  EXPECT_EQ(KeyText(*list, 0), std::nullopt);
}

}  // namespace
}  // namespace ductstream::runner
