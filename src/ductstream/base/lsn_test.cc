#include "ductstream/base/lsn.h"

#include <gtest/gtest.h>

#include <sstream>

namespace ductstream {
namespace {

TEST(LsnTest, ParsesPostgresForm) {
  auto lsn = Lsn::Parse("16/B374D848");
  ASSERT_TRUE(lsn.ok()) << lsn.status();
  EXPECT_EQ(lsn->value(), (uint64_t{0x16} << 32) | 0xB374D848);
}

TEST(LsnTest, ParsesLowerCaseAndZeroPadded) {
  EXPECT_EQ(Lsn::Parse("0/16b3748")->value(), 0x16B3748u);
  EXPECT_EQ(Lsn::Parse("0/016B3748")->value(), 0x16B3748u);  // PostgreSQL 18 pads the low half
  EXPECT_EQ(Lsn::Parse("FFFFFFFF/FFFFFFFF")->value(), ~uint64_t{0});
}

TEST(LsnTest, PrintsLikePgLsn) {
  EXPECT_EQ(Lsn((uint64_t{0x16} << 32) | 0xB374D848).ToString(), "16/B374D848");
  EXPECT_EQ(Lsn().ToString(), "0/0");
  EXPECT_EQ(Lsn(0x100000000).ToString(), "1/0");
  std::ostringstream os;
  os << Lsn(0xAB);
  EXPECT_EQ(os.str(), "0/AB");
}

TEST(LsnTest, RoundTrips) {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{0xFFFFFFFF}, uint64_t{0x100000000},
                     uint64_t{0x123456789ABCDEF0}, ~uint64_t{0}}) {
    EXPECT_EQ(Lsn::Parse(Lsn(v).ToString())->value(), v);
  }
}

TEST(LsnTest, RejectsMalformed) {
  for (const char* bad : {"", "/", "0/", "/0", "16", "16B374D848", "0/0/0", "g/0", "0/x", " 0/1",
                          "0/1 ", "-1/0", "+1/0", "0x1/0", "123456789/0", "0/123456789"}) {
    auto lsn = Lsn::Parse(bad);
    EXPECT_FALSE(lsn.ok()) << "accepted '" << bad << "'";
    if (!lsn.ok()) {
      EXPECT_EQ(lsn.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_NE(lsn.status().message().find("invalid LSN"), absl::string_view::npos);
    }
  }
}

TEST(LsnTest, OrdersByPosition) {
  // Ordering is numeric on the 64-bit value, not textual ("10/0" > "9/0" > "0/FFFFFFFF").
  const Lsn a = *Lsn::Parse("0/FFFFFFFF");
  const Lsn b = *Lsn::Parse("9/0");
  const Lsn c = *Lsn::Parse("10/0");
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_GT(c, a);
  EXPECT_EQ(b, *Lsn::Parse("9/00000000"));
  EXPECT_FALSE(Lsn::Invalid().valid());
  EXPECT_TRUE(a.valid());
}

}  // namespace
}  // namespace ductstream
