#include "ductstream/postgres/type_codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace ductstream::postgres {
namespace {

// Hand-built binary values ------------------------------------------------------------------

template <typename T>
std::string BE(T v) {
  std::string out(sizeof(T), '\0');
  auto u = static_cast<std::make_unsigned_t<T>>(v);
  for (size_t i = 0; i < sizeof(T); ++i) {
    out[sizeof(T) - 1 - i] = static_cast<char>(u & 0xff);
    u = static_cast<std::make_unsigned_t<T>>(u >> 8);
  }
  return out;
}
std::string I16(int16_t v) { return BE(v); }
std::string I32(int32_t v) { return BE(v); }
std::string I64(int64_t v) { return BE(v); }
std::string F64(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof(d));
  return BE(bits);
}
std::string F32(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(f));
  return BE(bits);
}
std::string Bytes(std::initializer_list<int> bytes) {
  std::string out;
  for (int b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

// numeric_send: ndigits, weight, sign, dscale, base-10000 digits.
std::string Numeric(int16_t weight, uint16_t sign, uint16_t dscale, std::vector<int16_t> digits) {
  std::string out = I16(static_cast<int16_t>(digits.size())) + I16(weight) + BE(sign) + BE(dscale);
  for (int16_t d : digits) out += I16(d);
  return out;
}

// array_send for a one-dimensional array; nullopt elements are NULL.
std::string Array1(uint32_t elem_oid, const std::vector<std::optional<std::string>>& elems,
                   int32_t lower_bound = 1) {
  bool has_null = false;
  for (const auto& e : elems) has_null |= !e.has_value();
  std::string out = I32(1) + I32(has_null ? 1 : 0) + BE(elem_oid) +
                    I32(static_cast<int32_t>(elems.size())) + I32(lower_bound);
  for (const auto& e : elems) {
    if (!e) {
      out += I32(-1);
    } else {
      out += I32(static_cast<int32_t>(e->size())) + *e;
    }
  }
  return out;
}

std::string Range(uint8_t flags, std::optional<std::string> lower,
                  std::optional<std::string> upper) {
  std::string out(1, static_cast<char>(flags));
  if (lower) out += I32(static_cast<int32_t>(lower->size())) + *lower;
  if (upper) out += I32(static_cast<int32_t>(upper->size())) + *upper;
  return out;
}

int32_t NumericTypmod(int p, int s) { return ((p << 16) | s) + 4; }

std::unique_ptr<ColumnDecoder> Make(uint32_t oid, int32_t typmod = -1,
                                    const TypeLookup& lookup = nullptr) {
  auto d = MakeColumnDecoder(Oid(oid), typmod, lookup);
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? std::move(*d) : nullptr;
}

std::shared_ptr<arrow::Array> FinishOk(ColumnDecoder& d) {
  auto a = d.Finish();
  EXPECT_TRUE(a.ok()) << a.status();
  if (!a.ok()) return nullptr;
  EXPECT_TRUE((*a)->ValidateFull().ok());
  return *a;
}

std::string Text(uint32_t oid, absl::string_view bytes, const TypeLookup& lookup = nullptr) {
  auto t = BinaryToText(Oid(oid), bytes, lookup);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : "<error>";
}

// Decodes each binary value and the matching text value with two decoders and checks that
// the arrays are equal; returns the binary one.
std::shared_ptr<arrow::Array> DecodeBoth(uint32_t oid, int32_t typmod,
                                         const std::vector<std::optional<std::string>>& binary,
                                         const std::vector<std::optional<std::string>>& text,
                                         const TypeLookup& lookup = nullptr) {
  auto b = Make(oid, typmod, lookup);
  auto t = Make(oid, typmod, lookup);
  for (const auto& v : binary) {
    EXPECT_TRUE((v ? b->AppendBinary(*v) : b->AppendNull()).ok());
  }
  for (const auto& v : text) {
    auto st = v ? t->AppendText(*v) : t->AppendNull();
    EXPECT_TRUE(st.ok()) << st;
  }
  EXPECT_EQ(b->unrepresentable(), t->unrepresentable());
  auto ba = FinishOk(*b);
  auto ta = FinishOk(*t);
  EXPECT_TRUE(ba->Equals(*ta)) << ba->ToString() << "\nvs\n" << ta->ToString();
  return ba;
}

// Types -----------------------------------------------------------------------------------

TEST(TypeCodecTest, MapsBuiltinTypes) {
  struct Case {
    uint32_t oid;
    int32_t typmod;
    std::shared_ptr<arrow::DataType> type;
  };
  std::vector<Case> cases = {
      {16, -1, arrow::boolean()},
      {21, -1, arrow::int16()},
      {23, -1, arrow::int32()},
      {20, -1, arrow::int64()},
      {26, -1, arrow::uint32()},
      {700, -1, arrow::float32()},
      {701, -1, arrow::float64()},
      {1700, NumericTypmod(10, 2), arrow::decimal128(10, 2)},
      {1700, NumericTypmod(38, 0), arrow::decimal128(38, 0)},
      {1700, NumericTypmod(39, 2), arrow::utf8()},
      {1700, -1, arrow::utf8()},
      {790, -1, arrow::decimal128(19, 2)},
      {25, -1, arrow::utf8()},
      {1043, 9, arrow::utf8()},
      {17, -1, arrow::binary()},
      {2950, -1, arrow::utf8()},
      {1082, -1, arrow::date32()},
      {1083, -1, arrow::time64(arrow::TimeUnit::MICRO)},
      {1266, -1, arrow::utf8()},
      {1114, -1, arrow::timestamp(arrow::TimeUnit::MICRO)},
      {1184, -1, arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")},
      {1186, -1, arrow::month_day_nano_interval()},
      {869, -1, arrow::utf8()},
      {3904, -1, arrow::utf8()},
      {1007, -1, arrow::list(arrow::int32())},
      {1231, NumericTypmod(5, 1), arrow::list(arrow::decimal128(5, 1))},
  };
  for (const Case& c : cases) {
    auto d = Make(c.oid, c.typmod);
    ASSERT_NE(d, nullptr);
    EXPECT_TRUE(d->type()->Equals(*c.type)) << c.oid << ": " << d->type()->ToString();
  }
}

TEST(TypeCodecTest, UnknownOidWithoutLookupIsNotFound) {
  auto d = MakeColumnDecoder(Oid(99999), -1, nullptr);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(d.status().message().find("99999"), absl::string_view::npos);
}

TEST(TypeCodecTest, ScalarsBinaryAndTextAgree) {
  auto a = DecodeBoth(16, -1, {Bytes({1}), Bytes({0}), std::nullopt}, {"t", "f", std::nullopt});
  auto bools = std::static_pointer_cast<arrow::BooleanArray>(a);
  EXPECT_TRUE(bools->Value(0));
  EXPECT_FALSE(bools->Value(1));
  EXPECT_TRUE(bools->IsNull(2));

  a = DecodeBoth(21, -1, {I16(-32768), I16(32767)}, {"-32768", "32767"});
  EXPECT_EQ(std::static_pointer_cast<arrow::Int16Array>(a)->Value(0), -32768);
  a = DecodeBoth(20, -1, {I64(std::numeric_limits<int64_t>::min())}, {"-9223372036854775808"});
  EXPECT_EQ(std::static_pointer_cast<arrow::Int64Array>(a)->Value(0),
            std::numeric_limits<int64_t>::min());
  a = DecodeBoth(26, -1, {BE(uint32_t{4294967295u})}, {"4294967295"});
  EXPECT_EQ(std::static_pointer_cast<arrow::UInt32Array>(a)->Value(0), 4294967295u);

  a = DecodeBoth(701, -1,
                 {F64(0.1), F64(std::numeric_limits<double>::infinity()),
                  F64(-std::numeric_limits<double>::infinity()), F64(-0.0)},
                 {"0.1", "Infinity", "-Infinity", "-0"});
  auto doubles = std::static_pointer_cast<arrow::DoubleArray>(a);
  EXPECT_EQ(doubles->Value(0), 0.1);
  EXPECT_EQ(doubles->Value(2), -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::signbit(doubles->Value(3)));
  // NaN is kept (Equals treats NaN != NaN, so check it alone).
  auto d = Make(701);
  ASSERT_TRUE(d->AppendBinary(F64(std::nan(""))).ok());
  ASSERT_TRUE(d->AppendText("NaN").ok());
  auto nan = std::static_pointer_cast<arrow::DoubleArray>(FinishOk(*d));
  EXPECT_TRUE(std::isnan(nan->Value(0)));
  EXPECT_TRUE(std::isnan(nan->Value(1)));
  EXPECT_EQ(nan->null_count(), 0);
}

TEST(TypeCodecTest, FloatTextMatchesPostgres) {
  EXPECT_EQ(Text(701, F64(0.1)), "0.1");
  EXPECT_EQ(Text(701, F64(100)), "100");
  EXPECT_EQ(Text(701, F64(1e100)), "1e+100");
  EXPECT_EQ(Text(701, F64(1.5e-5)), "1.5e-05");
  EXPECT_EQ(Text(701, F64(0.0001)), "0.0001");
  EXPECT_EQ(Text(701, F64(123456789012345678.0)), "1.2345678901234568e+17");
  EXPECT_EQ(Text(701, F64(123456789012345.0)), "123456789012345");
  EXPECT_EQ(Text(701, F64(-0.0)), "-0");
  EXPECT_EQ(Text(701, F64(std::nan(""))), "NaN");
  EXPECT_EQ(Text(700, F32(1e6f)), "1e+06");
  EXPECT_EQ(Text(700, F32(123456.f)), "123456");
  EXPECT_EQ(Text(700, F32(1.1f)), "1.1");
}

// numeric ---------------------------------------------------------------------------------

TEST(TypeCodecTest, NumericTextRendering) {
  EXPECT_EQ(Text(1700, Numeric(0, 0, 4, {12, 3400})), "12.3400");
  EXPECT_EQ(Text(1700, Numeric(0, 0x4000, 2, {12, 3400})), "-12.34");
  EXPECT_EQ(Text(1700, Numeric(-1, 0, 4, {1})), "0.0001");
  EXPECT_EQ(Text(1700, Numeric(-3, 0, 10, {100})), "0.0000000001");
  EXPECT_EQ(Text(1700, Numeric(2, 0, 0, {1, 2345, 6789})), "123456789");
  EXPECT_EQ(Text(1700, Numeric(2, 0, 0, {1})), "100000000");
  EXPECT_EQ(Text(1700, Numeric(0, 0, 0, {})), "0");
  EXPECT_EQ(Text(1700, Numeric(0, 0, 3, {})), "0.000");
  EXPECT_EQ(Text(1700, Numeric(0, 0xC000, 0, {})), "NaN");
  EXPECT_EQ(Text(1700, Numeric(0, 0xD000, 0, {})), "Infinity");
  EXPECT_EQ(Text(1700, Numeric(0, 0xF000, 0, {})), "-Infinity");
}

TEST(TypeCodecTest, UnconstrainedNumericIsExactText) {
  auto a =
      DecodeBoth(1700, -1, {Numeric(0, 0, 4, {12, 3400}), Numeric(0, 0xC000, 0, {}), std::nullopt},
                 {"12.3400", "NaN", std::nullopt});
  auto s = std::static_pointer_cast<arrow::StringArray>(a);
  EXPECT_EQ(s->GetString(0), "12.3400");
  EXPECT_EQ(s->GetString(1), "NaN");
  EXPECT_TRUE(s->IsNull(2));
}

TEST(TypeCodecTest, DecimalColumnKeepsScaleAndSign) {
  auto a = DecodeBoth(1700, NumericTypmod(10, 2),
                      {Numeric(0, 0x4000, 2, {12, 3400}), Numeric(1, 0, 2, {1, 5}),
                       Numeric(0, 0, 2, {}), Numeric(-1, 0, 2, {500})},
                      {"-12.34", "10005.00", "0.00", "0.05"});
  auto dec = std::static_pointer_cast<arrow::Decimal128Array>(a);
  EXPECT_EQ(dec->FormatValue(0), "-12.34");
  EXPECT_EQ(dec->FormatValue(1), "10005.00");
  EXPECT_EQ(dec->FormatValue(2), "0.00");
  EXPECT_EQ(dec->FormatValue(3), "0.05");
}

TEST(TypeCodecTest, DecimalColumnWide) {
  // 38 digits: 12345678901234567890123456.789012345678 in numeric(38,12).
  auto a = DecodeBoth(
      1700, NumericTypmod(38, 12),
      {Numeric(6, 0x4000, 12, {12, 3456, 7890, 1234, 5678, 9012, 3456, 7890, 1234, 5678})},
      {"-12345678901234567890123456.789012345678"});
  EXPECT_EQ(std::static_pointer_cast<arrow::Decimal128Array>(a)->FormatValue(0),
            "-12345678901234567890123456.789012345678");
}

TEST(TypeCodecTest, DecimalColumnNaNGoesToUnrepresentable) {
  auto d = Make(1700, NumericTypmod(10, 2));
  ASSERT_TRUE(d->AppendBinary(Numeric(0, 0, 2, {1})).ok());
  ASSERT_TRUE(d->AppendBinary(Numeric(0, 0xC000, 0, {})).ok());
  ASSERT_TRUE(d->AppendText("Infinity").ok());
  ASSERT_TRUE(d->AppendNull().ok());
  std::vector<UnrepresentableValue> expected = {{1, "NaN"}, {2, "Infinity"}};
  EXPECT_EQ(d->unrepresentable(), expected);
  auto a = FinishOk(*d);
  EXPECT_EQ(a->null_count(), 3);
  EXPECT_TRUE(a->IsValid(0));
  EXPECT_TRUE(d->unrepresentable().empty());  // Finish starts a new batch
  EXPECT_EQ(d->length(), 0);
  ASSERT_TRUE(d->AppendBinary(Numeric(0, 0xF000, 0, {})).ok());
  expected = {{0, "-Infinity"}};
  EXPECT_EQ(d->unrepresentable(), expected);
}

TEST(TypeCodecTest, DecimalColumnRejectsValuesOutsideTypmod) {
  // Values a numeric(5,2) column cannot hold (as from a mismatched typmod) are never wrapped or
  // rounded: they go to the unrepresentable list with their exact text.
  auto d = Make(1700, NumericTypmod(5, 2));
  ASSERT_TRUE(d->AppendBinary(Numeric(1, 0, 2, {12, 3456, 7800})).ok());  // 123456.78
  ASSERT_TRUE(d->AppendBinary(Numeric(0, 0, 3, {1, 2340})).ok());         // 1.234
  ASSERT_TRUE(d->AppendBinary(
                   Numeric(9, 0, 0, {9999, 9999, 9999, 9999, 9999, 9999, 9999, 9999, 9999, 9999}))
                  .ok());
  ASSERT_TRUE(d->AppendBinary(Numeric(0, 0, 3, {1, 2300})).ok());  // 1.230 fits as 1.23
  ASSERT_TRUE(d->AppendText("123456.78").ok());
  ASSERT_TRUE(d->AppendText("1.234").ok());
  ASSERT_TRUE(d->AppendText("1.230").ok());
  std::vector<UnrepresentableValue> expected = {{0, "123456.78"},
                                                {1, "1.234"},
                                                {2, "9999999999999999999999999999999999999999"},
                                                {4, "123456.78"},
                                                {5, "1.234"}};
  EXPECT_EQ(d->unrepresentable(), expected);
  auto a = std::static_pointer_cast<arrow::Decimal128Array>(FinishOk(*d));
  EXPECT_EQ(a->FormatValue(3), "1.23");
  EXPECT_EQ(a->FormatValue(6), "1.23");
  EXPECT_EQ(a->null_count(), 5);
}

TEST(TypeCodecTest, MoneyAsDecimal) {
  auto a = DecodeBoth(790, -1, {I64(123456), I64(-100), I64(0)}, {"$1,234.56", "-$1.00", "$0.00"});
  auto dec = std::static_pointer_cast<arrow::Decimal128Array>(a);
  EXPECT_EQ(dec->FormatValue(0), "1234.56");
  EXPECT_EQ(dec->FormatValue(1), "-1.00");
  EXPECT_EQ(Text(790, I64(-123456789)), "-$1,234,567.89");
  EXPECT_EQ(Make(790)->AppendText("$1,234,567,890,123,456,789,012.00").code(),
            absl::StatusCode::kInvalidArgument);
}

// Temporal --------------------------------------------------------------------------------

constexpr int64_t kUs2000 = 946684800000000;  // 2000-01-01 in Unix microseconds

TEST(TypeCodecTest, TimestampsShiftEpochAndKeepInfinity) {
  const int64_t max = std::numeric_limits<int64_t>::max();
  const int64_t min = std::numeric_limits<int64_t>::min();
  // 2020-01-01 00:00:00.123 = 631152000.123 s after 2000-01-01.
  auto a = DecodeBoth(
      1114, -1, {I64(631152000123000), I64(max), I64(min), I64(-1)},
      {"2020-01-01 00:00:00.123", "infinity", "-infinity", "1999-12-31 23:59:59.999999"});
  auto ts = std::static_pointer_cast<arrow::TimestampArray>(a);
  EXPECT_EQ(ts->Value(0), 1577836800123000);
  EXPECT_EQ(ts->Value(1), max);
  EXPECT_EQ(ts->Value(2), min);
  EXPECT_EQ(ts->Value(3), kUs2000 - 1);

  a = DecodeBoth(1184, -1, {I64(0), I64(-63082281600000000)},
                 {"2000-01-01 05:30:00+05:30", "0001-01-01 00:00:00+00"});
  ts = std::static_pointer_cast<arrow::TimestampArray>(a);
  EXPECT_EQ(ts->Value(0), kUs2000);
  EXPECT_EQ(Text(1184, I64(0)), "2000-01-01 00:00:00+00");
  EXPECT_EQ(Text(1114, I64(max)), "infinity");
  EXPECT_EQ(Text(1114, I64(-63082281600000000 - 86400000000)), "0001-12-31 00:00:00 BC");
  EXPECT_EQ(Text(1114, I64(-1)), "1999-12-31 23:59:59.999999");
}

TEST(TypeCodecTest, TimestampNearUpperLimitIsUnrepresentable) {
  // 294276-12-31 23:59:59.999999, PostgreSQL's last timestamp, overflows after the shift.
  const int64_t last = 9223371331199999999;
  auto d = Make(1114);
  ASSERT_TRUE(d->AppendBinary(I64(last)).ok());
  ASSERT_EQ(d->unrepresentable().size(), 1u);
  EXPECT_EQ(d->unrepresentable()[0].text, "294276-12-31 23:59:59.999999");
  auto t = Make(1114);
  ASSERT_TRUE(t->AppendText("294276-12-31 23:59:59.999999").ok());
  EXPECT_EQ(d->unrepresentable(), t->unrepresentable());
}

TEST(TypeCodecTest, DatesShiftEpochAndKeepInfinity) {
  const int32_t max = std::numeric_limits<int32_t>::max();
  const int32_t min = std::numeric_limits<int32_t>::min();
  auto a = DecodeBoth(1082, -1, {I32(0), I32(max), I32(min), I32(-730120)},
                      {"2000-01-01", "infinity", "-infinity", "0001-12-31 BC"});
  auto dates = std::static_pointer_cast<arrow::Date32Array>(a);
  EXPECT_EQ(dates->Value(0), 10957);
  EXPECT_EQ(dates->Value(1), max);
  EXPECT_EQ(dates->Value(2), min);
  EXPECT_EQ(Text(1082, I32(-730120)), "0001-12-31 BC");
}

TEST(TypeCodecTest, TimeAndTimetz) {
  auto a = DecodeBoth(1083, -1, {I64(45296789000), I64(86400000000)}, {"12:34:56.789", "24:00:00"});
  EXPECT_EQ(std::static_pointer_cast<arrow::Time64Array>(a)->Value(0), 45296789000);
  EXPECT_TRUE(a->IsNull(1));  // 24:00:00 is past Arrow's time64 range
  auto d = Make(1083);
  ASSERT_TRUE(d->AppendBinary(I64(86400000000)).ok());
  std::vector<UnrepresentableValue> expected = {{0, "24:00:00"}};
  EXPECT_EQ(d->unrepresentable(), expected);
  // timetz stores seconds west of UTC: +05:30 is -19800.
  EXPECT_EQ(Text(1266, I64(45296789000) + I32(-19800)), "12:34:56.789+05:30");
  EXPECT_EQ(Text(1266, I64(0) + I32(3600)), "00:00:00-01");
  EXPECT_EQ(Text(1266, I64(1) + I32(-(3600 * 5 + 30 * 60 + 15))), "00:00:00.000001+05:30:15");
}

TEST(TypeCodecTest, Interval) {
  const int64_t us = ((4 * 60 + 5) * 60 + 6) * 1000000LL + 789000;
  auto bin = I64(us) + I32(3) + I32(14);
  EXPECT_EQ(Text(1186, bin), "1 year 2 mons 3 days 04:05:06.789");
  EXPECT_EQ(Text(1186, I64(0) + I32(0) + I32(0)), "00:00:00");
  EXPECT_EQ(Text(1186, I64(-1000000) + I32(0) + I32(0)), "-00:00:01");
  EXPECT_EQ(Text(1186, I64(7200000000) + I32(-1) + I32(0)), "-1 days +02:00:00");
  EXPECT_EQ(Text(1186, I64(0) + I32(1) + I32(-13)), "-1 years -1 mons +1 day");
  auto a = DecodeBoth(
      1186, -1, {bin, I64(7200000000) + I32(-1) + I32(0), I64(0) + I32(1) + I32(-13)},
      {"1 year 2 mons 3 days 04:05:06.789", "-1 days +02:00:00", "-1 years -1 mons +1 day"});
  auto iv = std::static_pointer_cast<arrow::MonthDayNanoIntervalArray>(a)->Value(0);
  EXPECT_EQ(iv.months, 14);
  EXPECT_EQ(iv.days, 3);
  EXPECT_EQ(iv.nanoseconds, us * 1000);
}

TEST(TypeCodecTest, HugeIntervalIsUnrepresentable) {
  auto d = Make(1186);
  // 100000000 hours: microseconds fit int64, nanoseconds do not.
  ASSERT_TRUE(d->AppendBinary(I64(360000000000000000) + I32(0) + I32(0)).ok());
  ASSERT_EQ(d->unrepresentable().size(), 1u);
  EXPECT_EQ(d->unrepresentable()[0].text, "100000000:00:00");
}

// Network, uuid, bytea, misc --------------------------------------------------------------

std::string InetBin(int family, int bits, bool cidr, std::initializer_list<int> addr) {
  return Bytes({family, bits, cidr ? 1 : 0, static_cast<int>(addr.size())}) + Bytes(addr);
}

TEST(TypeCodecTest, InetAndCidr) {
  EXPECT_EQ(Text(869, InetBin(2, 24, false, {192, 168, 1, 5})), "192.168.1.5/24");
  EXPECT_EQ(Text(869, InetBin(2, 32, false, {10, 0, 0, 1})), "10.0.0.1");
  EXPECT_EQ(Text(650, InetBin(2, 8, true, {10, 0, 0, 0})), "10.0.0.0/8");
  EXPECT_EQ(Text(650, InetBin(2, 32, true, {10, 0, 0, 1})), "10.0.0.1/32");
  EXPECT_EQ(Text(869, InetBin(3, 128, false,
                              {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})),
            "2001:db8::1");
  EXPECT_EQ(Text(869, InetBin(3, 128, false, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})),
            "::1");
  EXPECT_EQ(
      Text(869, InetBin(3, 128, false, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4})),
      "::ffff:1.2.3.4");
  EXPECT_EQ(
      Text(650, InetBin(3, 32, true, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})),
      "2001:db8::/32");
  EXPECT_EQ(
      Text(869, InetBin(3, 64, false, {0x20, 0x01, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1})),
      "2001:0:1::1:0:1/64");
  auto d = Make(869);
  EXPECT_EQ(d->AppendBinary(Bytes({2, 32, 0, 3, 1, 2, 3})).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TypeCodecTest, MiscTextRenderings) {
  EXPECT_EQ(Text(2950, Bytes({0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b,
                              0xb9, 0xbd, 0x38, 0x0a, 0x11})),
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
  EXPECT_EQ(Text(829, Bytes({8, 0, 0x2b, 1, 2, 3})), "08:00:2b:01:02:03");
  EXPECT_EQ(Text(1560, I32(3) + Bytes({0xa0})), "101");
  EXPECT_EQ(Text(1562, I32(10) + Bytes({0xff, 0x40})), "1111111101");
  EXPECT_EQ(Text(3220, BE(uint64_t{0x16B374D848})), "16/B374D848");
  EXPECT_EQ(Text(600, F64(1.5) + F64(-2)), "(1.5,-2)");
  EXPECT_EQ(Text(603, F64(3) + F64(4) + F64(1) + F64(2)), "(3,4),(1,2)");
  EXPECT_EQ(Text(718, F64(0) + F64(0) + F64(2.5)), "<(0,0),2.5>");
  EXPECT_EQ(Text(602, Bytes({0}) + I32(2) + F64(0) + F64(0) + F64(1) + F64(1)), "[(0,0),(1,1)]");
  EXPECT_EQ(Text(3802, "\x01{\"a\": 1}"), "{\"a\": 1}");
  EXPECT_EQ(Text(18, "a"), "a");
  EXPECT_EQ(Text(18, "\xe9"), "\\351");
  EXPECT_EQ(Text(2970, I32(2) + I64(10) + I64(20) + I64(12) + I64(15)), "10:20:12,15");
  // 'a':1A 'it''s':2,3
  EXPECT_EQ(Text(3614, I32(2) + std::string("a\0", 2) + BE(uint16_t{1}) + BE(uint16_t{0xc001}) +
                           std::string("it's\0", 5) + BE(uint16_t{2}) + BE(uint16_t{2}) +
                           BE(uint16_t{3})),
            "'a':1A 'it''s':2,3");
}

TEST(TypeCodecTest, ByteaHexText) {
  auto a = DecodeBoth(17, -1, {Bytes({0, 1, 0xff}), std::string()}, {"\\x0001ff", "\\x"});
  auto bin = std::static_pointer_cast<arrow::BinaryArray>(a);
  EXPECT_EQ(bin->GetString(0), std::string("\0\1\xff", 3));
  EXPECT_EQ(bin->GetString(1), "");
  auto d = Make(17);
  EXPECT_FALSE(d->AppendText("\\x0").ok());
  // The legacy escape format (bytea_output = 'escape').
  ASSERT_TRUE(d->AppendText("a\\\\b\\001\\377").ok());
  auto escaped = std::static_pointer_cast<arrow::BinaryArray>(FinishOk(*d));
  EXPECT_EQ(escaped->GetString(0), std::string("a\\b\1\xff", 5));
}

TEST(TypeCodecTest, Tsquery) {
  // Stored order: operator, right operand, left operand.
  auto operand = [](absl::string_view text, int weight = 0, int prefix = 0) {
    return Bytes({1, weight, prefix}) + std::string(text) + std::string(1, '\0');
  };
  EXPECT_EQ(Text(3615, I32(3) + Bytes({2, 2}) + operand("rat") + operand("fat")), "'fat' & 'rat'");
  // !cat | (dog <-> bird): OR, right = PHRASE(dog, bird), left = NOT cat.
  EXPECT_EQ(Text(3615, I32(6) + Bytes({2, 3}) + Bytes({2, 4}) + I16(1) + operand("bird") +
                           operand("dog") + Bytes({2, 1}) + operand("cat")),
            "!'cat' | 'dog' <-> 'bird'");
  // (a | b) & c:*AB with a quote in a lexeme.
  EXPECT_EQ(Text(3615, I32(5) + Bytes({2, 2}) + operand("c", 8 | 4, 1) + Bytes({2, 3}) +
                           operand("b") + operand("it's")),
            "( 'it''s' | 'b' ) & 'c':*AB");
  EXPECT_EQ(Text(3615, I32(0)), "");
  EXPECT_EQ(Make(3615)->AppendBinary(I32(2) + Bytes({2, 2}) + operand("x")).code(),
            absl::StatusCode::kInvalidArgument);
}

// Arrays ----------------------------------------------------------------------------------

TEST(TypeCodecTest, ArraysWithNulls) {
  auto a = DecodeBoth(1007, -1,
                      {Array1(23, {I32(1), std::nullopt, I32(3)}), Array1(23, {}),
                       std::string(I32(0) + I32(0) + I32(23)), std::nullopt},
                      {"{1,NULL,3}", "{}", "{}", std::nullopt});
  auto list = std::static_pointer_cast<arrow::ListArray>(a);
  EXPECT_EQ(list->length(), 4);
  EXPECT_EQ(list->value_length(0), 3);
  EXPECT_EQ(list->value_length(1), 0);
  EXPECT_TRUE(list->IsValid(2));
  EXPECT_TRUE(list->IsNull(3));
  auto values = std::static_pointer_cast<arrow::Int32Array>(list->values());
  EXPECT_EQ(values->Value(0), 1);
  EXPECT_TRUE(values->IsNull(1));
  EXPECT_EQ(values->Value(2), 3);
  EXPECT_EQ(Text(1007, Array1(23, {I32(1), std::nullopt, I32(3)})), "{1,NULL,3}");
}

TEST(TypeCodecTest, TextArrayQuoting) {
  std::vector<std::optional<std::string>> elems = {"a b", "NULL", std::nullopt, "x\"y\\z",
                                                   "",    "{}",   "plain"};
  const std::string text = R"({"a b","NULL",NULL,"x\"y\\z","","{}",plain})";
  EXPECT_EQ(Text(1009, Array1(25, elems)), text);
  auto a = DecodeBoth(1009, -1, {Array1(25, elems)}, {text});
  auto values = std::static_pointer_cast<arrow::StringArray>(
      std::static_pointer_cast<arrow::ListArray>(a)->values());
  EXPECT_EQ(values->GetString(0), "a b");
  EXPECT_EQ(values->GetString(1), "NULL");
  EXPECT_TRUE(values->IsNull(2));
  EXPECT_EQ(values->GetString(3), "x\"y\\z");
  EXPECT_EQ(values->GetString(4), "");
}

TEST(TypeCodecTest, MultiDimensionalArrayIsUnrepresentable) {
  std::string two_d = I32(2) + I32(0) + BE(uint32_t{23}) + I32(2) + I32(1) + I32(2) + I32(1);
  for (int v : {1, 2, 3, 4}) two_d += I32(4) + I32(v);
  EXPECT_EQ(Text(1007, two_d), "{{1,2},{3,4}}");
  std::string lb0 = Array1(23, {I32(1), I32(2)}, /*lower_bound=*/0);
  EXPECT_EQ(Text(1007, lb0), "[0:1]={1,2}");

  auto b = Make(1007);
  auto t = Make(1007);
  ASSERT_TRUE(b->AppendBinary(Array1(23, {I32(7)})).ok());
  ASSERT_TRUE(b->AppendBinary(two_d).ok());
  ASSERT_TRUE(b->AppendBinary(lb0).ok());
  ASSERT_TRUE(t->AppendText("{7}").ok());
  ASSERT_TRUE(t->AppendText("{{1,2},{3,4}}").ok());
  ASSERT_TRUE(t->AppendText("[0:1]={1,2}").ok());
  std::vector<UnrepresentableValue> expected = {{1, "{{1,2},{3,4}}"}, {2, "[0:1]={1,2}"}};
  EXPECT_EQ(b->unrepresentable(), expected);
  EXPECT_EQ(t->unrepresentable(), expected);
  auto ba = FinishOk(*b);
  auto ta = FinishOk(*t);
  EXPECT_TRUE(ba->Equals(*ta));
  EXPECT_EQ(ba->null_count(), 2);
}

TEST(TypeCodecTest, ArrayWithUnrepresentableElement) {
  const int32_t typmod = NumericTypmod(5, 2);
  auto b = Make(1231, typmod);
  auto t = Make(1231, typmod);
  std::string bin = Array1(1700, {Numeric(0, 0, 2, {1, 5000}), Numeric(0, 0xC000, 0, {})});
  ASSERT_TRUE(b->AppendBinary(bin).ok());
  ASSERT_TRUE(t->AppendText("{1.50,NaN}").ok());
  std::vector<UnrepresentableValue> expected = {{0, "{1.50,NaN}"}};
  EXPECT_EQ(b->unrepresentable(), expected);
  EXPECT_EQ(t->unrepresentable(), expected);
  EXPECT_TRUE(FinishOk(*b)->Equals(*FinishOk(*t)));
}

TEST(TypeCodecTest, BoxArrayUsesSemicolon) {
  std::string box = F64(1) + F64(1) + F64(0) + F64(0);
  EXPECT_EQ(Text(1020, Array1(603, {box, box})), "{(1,1),(0,0);(1,1),(0,0)}");
  DecodeBoth(1020, -1, {Array1(603, {box, box})}, {"{(1,1),(0,0);(1,1),(0,0)}"});
}

// Ranges ----------------------------------------------------------------------------------

TEST(TypeCodecTest, Ranges) {
  EXPECT_EQ(Text(3904, Range(0x01, std::nullopt, std::nullopt)), "empty");
  EXPECT_EQ(Text(3904, Range(0x02, I32(1), I32(10))), "[1,10)");
  EXPECT_EQ(Text(3904, Range(0x08, std::nullopt, I32(5))), "(,5)");
  EXPECT_EQ(Text(3904, Range(0x02 | 0x10, I32(5), std::nullopt)), "[5,)");
  EXPECT_EQ(Text(3904, Range(0x08 | 0x10, std::nullopt, std::nullopt)), "(,)");
  EXPECT_EQ(Text(3908, Range(0x02, I64(631152000000000), I64(631238400000000))),
            R"(["2020-01-01 00:00:00","2020-01-02 00:00:00"))");
  EXPECT_EQ(Text(3912, Range(0x02, I32(0), I32(1))), "[2000-01-01,2000-01-02)");
  EXPECT_EQ(Text(3906, Range(0x02 | 0x04, Numeric(0, 0, 1, {1, 5000}), Numeric(0, 0, 0, {2}))),
            "[1.5,2]");
  // int4multirange {[1,3),[5,7)}
  std::string r1 = Range(0x02, I32(1), I32(3));
  std::string r2 = Range(0x02, I32(5), I32(7));
  EXPECT_EQ(Text(4451, I32(2) + I32(static_cast<int32_t>(r1.size())) + r1 +
                           I32(static_cast<int32_t>(r2.size())) + r2),
            "{[1,3),[5,7)}");
  EXPECT_EQ(Text(4451, I32(0)), "{}");
}

// Catalog-resolved types --------------------------------------------------------------------

TypeLookup FakeCatalog() {
  return [](Oid oid) -> absl::StatusOr<TypeInfo> {
    TypeInfo t;
    t.oid = oid;
    t.schema = "public";
    switch (oid.value()) {
      case 50000:
        t.name = "mood";
        t.typtype = 'e';
        t.category = 'E';
        return t;
      case 50001:
        t.name = "_mood";
        t.category = 'A';
        t.element_oid = Oid(50000);
        return t;
      case 50002:
        t.name = "price";
        t.typtype = 'd';
        t.category = 'N';
        t.base_oid = Oid(1700);
        t.typmod = NumericTypmod(10, 2);
        return t;
      case 50003:
        t.name = "pair";
        t.typtype = 'c';
        t.category = 'C';
        return t;
      case 50004:
        t.name = "positive_price";  // domain over a domain
        t.typtype = 'd';
        t.category = 'N';
        t.base_oid = Oid(50002);
        return t;
      case 50005:
        t.name = "floatrange";
        t.typtype = 'r';
        t.category = 'R';
        t.range_subtype = Oid(701);
        return t;
      case 50006:
        t.name = "hstore";
        return t;
      default:
        return absl::NotFoundError(absl::StrCat("no type ", oid.value()));
    }
  };
}

TEST(TypeCodecTest, EnumAndEnumArray) {
  auto lookup = FakeCatalog();
  auto a = DecodeBoth(50000, -1, {"happy", std::string()}, {"happy", ""}, lookup);
  EXPECT_TRUE(a->type()->Equals(arrow::utf8()));
  EXPECT_EQ(std::static_pointer_cast<arrow::StringArray>(a)->GetString(0), "happy");
  a = DecodeBoth(50001, -1, {Array1(50000, {"sad", std::nullopt})}, {"{sad,NULL}"}, lookup);
  EXPECT_TRUE(a->type()->Equals(arrow::list(arrow::utf8())));
}

TEST(TypeCodecTest, DomainsDecodeAsTheirBase) {
  auto lookup = FakeCatalog();
  auto a = DecodeBoth(50004, -1, {Numeric(0, 0, 2, {3, 1400})}, {"3.14"}, lookup);
  ASSERT_TRUE(a->type()->Equals(arrow::decimal128(10, 2))) << a->type()->ToString();
  EXPECT_EQ(std::static_pointer_cast<arrow::Decimal128Array>(a)->FormatValue(0), "3.14");
}

TEST(TypeCodecTest, CompositeRendersLikeRecordOut) {
  auto lookup = FakeCatalog();
  // (1,"a b",,"",x"y, 50000 enum field)
  std::string rec = I32(6) + BE(uint32_t{23}) + I32(4) + I32(1) + BE(uint32_t{25}) + I32(3) +
                    "a b" + BE(uint32_t{25}) + I32(-1) + BE(uint32_t{25}) + I32(0) +
                    BE(uint32_t{25}) + I32(3) + "x\"y" + BE(uint32_t{50000}) + I32(2) + "ok";
  const std::string text = R"((1,"a b",,"","x""y",ok))";
  EXPECT_EQ(Text(50003, rec, lookup), text);
  auto a = DecodeBoth(50003, -1, {rec}, {text}, lookup);
  EXPECT_EQ(std::static_pointer_cast<arrow::StringArray>(a)->GetString(0), text);
  // Nested: record containing a record and an int4[] array.
  std::string arr = Array1(23, {I32(1), I32(2)});
  std::string outer = I32(2) + BE(uint32_t{50003}) + I32(static_cast<int32_t>(rec.size())) + rec +
                      BE(uint32_t{1007}) + I32(static_cast<int32_t>(arr.size())) + arr;
  EXPECT_EQ(Text(2249, outer, lookup), R"x(("(1,""a b"",,"""",""x""""y"",ok)","{1,2}"))x");
}

TEST(TypeCodecTest, UserRangeAndUnknownBaseType) {
  auto lookup = FakeCatalog();
  EXPECT_EQ(Text(50005, Range(0x02, F64(1.5), F64(2.25)), lookup), "[1.5,2.25)");
  auto d = Make(50006, -1, lookup);
  auto st = d->AppendBinary("x");
  EXPECT_EQ(st.code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(st.message().find("public.hstore"), absl::string_view::npos);
  ASSERT_TRUE(d->AppendText("\"a\"=>\"1\"").ok());
  EXPECT_EQ(std::static_pointer_cast<arrow::StringArray>(FinishOk(*d))->GetString(0),
            "\"a\"=>\"1\"");
}

TEST(TypeCodecTest, MalformedInputIsAnErrorNotGarbage) {
  EXPECT_EQ(Make(23)->AppendBinary(I16(1)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Make(23)->AppendText("12x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Make(1700, NumericTypmod(10, 2))->AppendBinary(I16(5) + I16(0)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Make(1007)->AppendBinary(Array1(23, {I32(1)}).substr(0, 22)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Make(1007)->AppendText("{1,2").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Make(1114)->AppendText("2020-13-01 00:00:00").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Make(1186)->AppendText("3 fortnights").code(), absl::StatusCode::kInvalidArgument);
  // Absurd magnitudes are rejected, not overflowed.
  EXPECT_EQ(Make(1186)->AppendText("999999999999:00:00").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Make(1114)->AppendText("999999999-01-01 00:00:00").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Make(1082)->AppendText("999999999-01-01").code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ductstream::postgres

namespace ductstream::postgres {
namespace {

// Batches after the first start with room for one like the last (ReserveLikeLastBatch): values
// must come out whole whether a batch stays within that room, outgrows it or is much smaller.
TEST(TypeCodecTest, BatchesReservedLikeTheLastOneKeepEveryValue) {
  for (const Oid oid : {Oid(25), Oid(17), Oid(20)}) {  // text (utf8), bytea, int8
    SCOPED_TRACE(absl::StrCat("oid ", oid.value()));
    auto decoder = MakeColumnDecoder(oid, -1, {});
    ASSERT_TRUE(decoder.ok()) << decoder.status();
    int64_t next = 0;
    for (const int rows : {100, 100, 1000, 3, 0, 50}) {
      (*decoder)->ReserveLikeLastBatch();
      std::vector<std::string> want;
      for (int i = 0; i < rows; ++i, ++next) {
        std::string v = absl::StrCat(next * 7919);
        if (i % 10 == 3) {
          ASSERT_TRUE((*decoder)->AppendNull().ok());
          want.push_back("null");
          continue;
        }
        ASSERT_TRUE(
            (*decoder)->AppendText(oid == Oid(17) ? absl::StrCat("\\x3", next % 10) : v).ok());
        want.push_back(oid == Oid(17) ? std::string(1, static_cast<char>('0' + next % 10)) : v);
      }
      auto array = (*decoder)->Finish();
      ASSERT_TRUE(array.ok()) << array.status();
      ASSERT_TRUE((*array)->ValidateFull().ok());
      ASSERT_EQ((*array)->length(), rows);
      for (int i = 0; i < rows; ++i) {
        auto scalar = (*array)->GetScalar(i);
        ASSERT_TRUE(scalar.ok());
        const std::string got = (*scalar)->is_valid ? (*scalar)->ToString() : "null";
        EXPECT_EQ(got, want[static_cast<size_t>(i)])
            << "row " << i << " of a " << rows << "-row batch";
      }
    }
  }
}

}  // namespace
}  // namespace ductstream::postgres
