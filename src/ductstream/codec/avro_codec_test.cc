#include <gtest/gtest.h>

#include "ductstream/codec/codec.h"

namespace ductstream::codec {
namespace {

TEST(AvroPlaceholderTest, ParsesNames) {
  EXPECT_EQ(*ParseWireFormat("Parquet"), WireFormat::kParquet);
  EXPECT_FALSE(ParseWireFormat("csv").ok());
}

}  // namespace
}  // namespace ductstream::codec
