// The value codec against a real PostgreSQL: every supported type is selected once in binary
// and once in text format, both decoded, and the results compared with each other, with the
// server's own text output, and with independently computed values.
#include <libpq-fe.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "ductstream/postgres/connection.h"
#include "ductstream/postgres/type_codec.h"
#include "ductstream/testing/pg_sandbox.h"

namespace ductstream::postgres {
namespace {

constexpr const char* kNull = "NULL";

// How the decoded values are checked against the server beyond "binary == text".
enum class Expect {
  kNone,         // utf8 columns: the binary-rendered text must equal the server's text (always)
  kPgText,       // FormatCell(arrow) == v::text (ints, bool, decimals, lists of them)
  kFloat,        // the Arrow float equals v::text parsed (extra_float_digits=3 is exact)
  kDays,         // date32 == days since 1970 computed by the server; ±infinity raw
  kEpochMicros,  // timestamp == extract(epoch)*10^6; ±infinity raw
  kTimeMicros,   // time64 == extract(epoch)*10^6
  kInterval,     // (months, days, nanos) from extract()
  kHex,          // bytea == encode(v, 'hex')
  kMoney,        // decimal == v::numeric::text
};

struct TypeCase {
  std::string type;                   // SQL type of the column
  std::vector<std::string> literals;  // quoted as SQL strings; kNull; "=expr" is raw SQL
  Expect expect = Expect::kNone;
  bool binary_unsupported = false;  // binary must be a clean UnimplementedError
};

std::string Quote(absl::string_view s) {
  return absl::StrCat("'", absl::StrReplaceAll(s, {{"'", "''"}}), "'");
}

std::string ExpectSql(Expect e) {
  switch (e) {
    case Expect::kNone:
      return "NULL::text";
    case Expect::kPgText:
    case Expect::kFloat:
      return "v::text";
    case Expect::kDays:
      return "CASE WHEN v = 'infinity' THEN '2147483647' WHEN v = '-infinity' THEN "
             "'-2147483648' ELSE (v - DATE '1970-01-01')::text END";
    case Expect::kEpochMicros:
      return "CASE WHEN v = 'infinity' THEN '9223372036854775807' WHEN v = '-infinity' THEN "
             "'-9223372036854775808' ELSE (extract(epoch from v) * 1000000)::numeric(40,0)::text "
             "END";
    case Expect::kTimeMicros:
      return "(extract(epoch from v) * 1000000)::numeric(40,0)::text";
    case Expect::kInterval:
      return "(extract(year from v) * 12 + extract(month from v))::text || ' ' || "
             "extract(day from v)::text || ' ' || ((extract(hour from v) * 3600 + "
             "extract(minute from v) * 60) * 1000000 + extract(microseconds from v))"
             "::numeric(40,0)::text";
    case Expect::kHex:
      return "encode(v, 'hex')";
    case Expect::kMoney:
      return "v::numeric::text";
  }
  return "NULL";
}

std::string Hex(absl::string_view b) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : b) {
    out.push_back(kHex[static_cast<uint8_t>(c) >> 4]);
    out.push_back(kHex[static_cast<uint8_t>(c) & 15]);
  }
  return out;
}

// Plain decimal notation (Arrow's ToString switches to exponents for small values).
std::string FormatDecimal(const arrow::Decimal128Array& a, int64_t i) {
  const int32_t scale = static_cast<const arrow::Decimal128Type&>(*a.type()).scale();
  arrow::Decimal128 v(a.GetValue(i));
  const bool negative = v.IsNegative();
  if (negative) v.Negate();
  std::string digits = v.ToIntegerString();
  if (static_cast<int32_t>(digits.size()) <= scale) {
    digits.insert(0, static_cast<size_t>(scale + 1) - digits.size(), '0');
  }
  if (scale > 0) digits.insert(digits.size() - static_cast<size_t>(scale), ".");
  return negative ? "-" + digits : digits;
}

// PostgreSQL-style text of one Arrow cell of the types Expect::kPgText is used with.
std::string FormatCell(const arrow::Array& a, int64_t i, bool in_array) {
  if (a.IsNull(i)) return "NULL";
  switch (a.type_id()) {
    case arrow::Type::BOOL: {
      bool v = static_cast<const arrow::BooleanArray&>(a).Value(i);
      return in_array ? (v ? "t" : "f") : (v ? "true" : "false");
    }
    case arrow::Type::INT16:
      return absl::StrCat(static_cast<const arrow::Int16Array&>(a).Value(i));
    case arrow::Type::INT32:
      return absl::StrCat(static_cast<const arrow::Int32Array&>(a).Value(i));
    case arrow::Type::INT64:
      return absl::StrCat(static_cast<const arrow::Int64Array&>(a).Value(i));
    case arrow::Type::UINT32:
      return absl::StrCat(static_cast<const arrow::UInt32Array&>(a).Value(i));
    case arrow::Type::DECIMAL128:
      return FormatDecimal(static_cast<const arrow::Decimal128Array&>(a), i);
    case arrow::Type::STRING:
      return static_cast<const arrow::StringArray&>(a).GetString(i);
    case arrow::Type::LIST: {
      const auto& list = static_cast<const arrow::ListArray&>(a);
      std::vector<std::string> parts;
      for (int32_t k = list.value_offset(i); k < list.value_offset(i + 1); ++k) {
        parts.push_back(FormatCell(*list.values(), k, true));
      }
      return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
    }
    default:
      return absl::StrCat("<unformattable ", a.type()->ToString(), ">");
  }
}

class TypeCodecTest : public ductstream::testing::PostgresTest {
 protected:
  void SetUp() override {
    PostgresTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto db = pg().CreateDatabase("types");
    ASSERT_TRUE(db.ok()) << db.status();
    auto conn = Connection::Connect(pg().Dsn(*db));
    ASSERT_TRUE(conn.ok()) << conn.status();
    conn_ = std::move(*conn);
    for (const char* sql : {
             "SET TimeZone = 'UTC'",
             "SET extra_float_digits = 3",
             "SET DateStyle = 'ISO, MDY'",
             "SET IntervalStyle = 'postgres'",
             "SET lc_monetary = 'C'",
             "SET client_encoding = 'UTF8'",
             "SET client_min_messages = 'warning'",
             // The sandbox runs with synchronous_commit off; logical decoding only sees
             // flushed commits.
             "SET synchronous_commit = on",
             "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'très content')",
             "CREATE DOMAIN price AS numeric(10,2) CHECK (VALUE >= 0)",
             "CREATE DOMAIN short_text AS varchar(8)",
             "CREATE DOMAIN price_list AS price[]",
             "CREATE TYPE pair AS (a int4, b text, c numeric, d timestamptz, e mood, f int4[])",
             "CREATE TYPE wrapper AS (p pair, q float8, r int4range, s bool)",
             "CREATE TYPE floatrange AS RANGE (subtype = float8)",
             "CREATE TYPE floats AS (f4 float4, f8 float8)",
         }) {
      auto r = conn_->Exec(sql);
      ASSERT_TRUE(r.ok()) << sql << ": " << r.status();
    }
    resolver_ = TypeResolver::Create(*conn_);
  }

  // Creates a table with one column of `c.type`, fills it, and checks the codec on it.
  void Check(const TypeCase& c) {
    SCOPED_TRACE(c.type);
    const std::string table = absl::StrCat("t", ++tables_);
    ASSERT_TRUE(
        conn_->Exec(absl::StrCat("CREATE TABLE ", table, " (id int PRIMARY KEY, v ", c.type, ")"))
            .ok());
    for (size_t i = 0; i < c.literals.size(); ++i) {
      const std::string& lit = c.literals[i];
      std::string value = lit == kNull                 ? "NULL"
                          : absl::StartsWith(lit, "=") ? lit.substr(1)
                                                       : Quote(lit);
      auto r = conn_->Exec(absl::StrCat("INSERT INTO ", table, " VALUES (", i, ", ", value, ")"));
      ASSERT_TRUE(r.ok()) << lit << ": " << r.status();
    }
    CheckSelect(absl::StrCat("SELECT v, ", ExpectSql(c.expect), " FROM ", table, " ORDER BY id"),
                c);
  }

  // Runs `select` (column 0: the values, column 1: the Expect value) in both formats and checks
  // the codec on column 0; `c.literals` only labels the rows.
  void CheckSelect(const std::string& select, const TypeCase& c) {
    auto bin = conn_->ExecParams(select, {}, /*binary_results=*/true);
    ASSERT_TRUE(bin.ok()) << bin.status();
    auto text = conn_->ExecParams(select, {}, /*binary_results=*/false);
    ASSERT_TRUE(text.ok()) << text.status();
    const int rows = RowCount(*text);
    ASSERT_EQ(rows, static_cast<int>(c.literals.size()));
    ASSERT_EQ(RowCount(*bin), rows);
    ASSERT_EQ(PQfformat(bin->get(), 0), 1);
    ASSERT_EQ(PQfformat(text->get(), 0), 0);

    const Oid oid(PQftype(bin->get(), 0));
    const int32_t typmod = PQfmod(bin->get(), 0);
    auto lookup = resolver_->AsLookup();
    auto from_binary = MakeColumnDecoder(oid, typmod, lookup);
    ASSERT_TRUE(from_binary.ok()) << from_binary.status();
    auto from_text = MakeColumnDecoder(oid, typmod, lookup);
    ASSERT_TRUE(from_text.ok()) << from_text.status();
    ColumnDecoder& bd = **from_binary;
    ColumnDecoder& td = **from_text;

    for (int row = 0; row < rows; ++row) {
      auto tv = GetValue(*text, row, 0);
      auto st = tv ? td.AppendText(*tv) : td.AppendNull();
      ASSERT_TRUE(st.ok()) << "text row " << row << " \"" << tv.value_or("NULL") << "\": " << st;
      auto bv = GetValue(*bin, row, 0);
      if (c.binary_unsupported && bv) {
        st = bd.AppendBinary(*bv);
        EXPECT_EQ(st.code(), absl::StatusCode::kUnimplemented) << st;
        continue;
      }
      st = bv ? bd.AppendBinary(*bv) : bd.AppendNull();
      ASSERT_TRUE(st.ok()) << "binary row " << row << " (server text \"" << tv.value_or("NULL")
                           << "\"): " << st;
    }
    if (c.binary_unsupported) return;

    // (a) Both paths give equal Arrow arrays and equal side lists.
    EXPECT_EQ(bd.unrepresentable(), td.unrepresentable());
    const auto unrep = bd.unrepresentable();
    auto ba = bd.Finish();
    ASSERT_TRUE(ba.ok()) << ba.status();
    auto ta = td.Finish();
    ASSERT_TRUE(ta.ok()) << ta.status();
    ASSERT_TRUE((*ba)->ValidateFull().ok()) << (*ba)->ValidateFull();
    EXPECT_TRUE((*ba)->Equals(**ta, arrow::EqualOptions::Defaults().nans_equal(true)))
        << "binary: " << (*ba)->ToString() << "\ntext: " << (*ta)->ToString();
    const arrow::Array& a = **ba;
    ASSERT_EQ(a.length(), rows);

    // Unrepresentable cells are NULL and carry the server's exact text.
    std::vector<bool> is_unrep(static_cast<size_t>(rows), false);
    for (const auto& u : unrep) {
      ASSERT_GE(u.row, 0);
      ASSERT_LT(u.row, rows);
      is_unrep[static_cast<size_t>(u.row)] = true;
      EXPECT_TRUE(a.IsNull(u.row));
      EXPECT_EQ(u.text, GetValue(*text, static_cast<int>(u.row), 0).value_or("<null>"));
    }

    for (int row = 0; row < rows; ++row) {
      SCOPED_TRACE(absl::StrCat("row ", row, " literal ", c.literals[static_cast<size_t>(row)]));
      auto server_text = GetValue(*text, row, 0);
      if (!server_text) {
        EXPECT_TRUE(a.IsNull(row));
        continue;
      }
      if (is_unrep[static_cast<size_t>(row)]) continue;
      ASSERT_TRUE(a.IsValid(row));
      // (b) utf8 columns: the text rendered from binary is exactly the server's text.
      if (a.type_id() == arrow::Type::STRING) {
        EXPECT_EQ(static_cast<const arrow::StringArray&>(a).GetString(row), *server_text);
      }
      // (c) independent expectations.
      const std::string expected(GetValue(*text, row, 1).value_or("<null>"));
      switch (c.expect) {
        case Expect::kNone:
          break;
        case Expect::kPgText:
          EXPECT_EQ(FormatCell(a, row, false), expected);
          break;
        case Expect::kFloat: {
          double actual = a.type_id() == arrow::Type::FLOAT
                              ? static_cast<const arrow::FloatArray&>(a).Value(row)
                              : static_cast<const arrow::DoubleArray&>(a).Value(row);
          if (expected == "NaN") {
            EXPECT_TRUE(std::isnan(actual));
          } else if (a.type_id() == arrow::Type::FLOAT) {
            EXPECT_EQ(static_cast<float>(actual), std::strtof(expected.c_str(), nullptr));
          } else {
            double e = std::strtod(expected.c_str(), nullptr);
            EXPECT_EQ(actual, e);
            EXPECT_EQ(std::signbit(actual), std::signbit(e));
          }
          break;
        }
        case Expect::kDays:
          EXPECT_EQ(absl::StrCat(static_cast<const arrow::Date32Array&>(a).Value(row)), expected);
          break;
        case Expect::kEpochMicros:
          EXPECT_EQ(absl::StrCat(static_cast<const arrow::TimestampArray&>(a).Value(row)),
                    expected);
          break;
        case Expect::kTimeMicros:
          EXPECT_EQ(absl::StrCat(static_cast<const arrow::Time64Array&>(a).Value(row)), expected);
          break;
        case Expect::kInterval: {
          auto v = static_cast<const arrow::MonthDayNanoIntervalArray&>(a).Value(row);
          EXPECT_EQ(v.nanoseconds % 1000, 0);
          EXPECT_EQ(absl::StrCat(v.months, " ", v.days, " ", v.nanoseconds / 1000), expected);
          break;
        }
        case Expect::kHex:
          EXPECT_EQ(Hex(static_cast<const arrow::BinaryArray&>(a).GetString(row)), expected);
          break;
        case Expect::kMoney:
          EXPECT_EQ(FormatDecimal(static_cast<const arrow::Decimal128Array&>(a), row), expected);
          break;
      }
    }
  }

  void CheckAll(const std::vector<TypeCase>& cases) {
    for (const TypeCase& c : cases) Check(c);
  }

  std::unique_ptr<Connection> conn_;
  std::unique_ptr<TypeResolver> resolver_;
  int tables_ = 0;
};

TEST_F(TypeCodecTest, BoolAndIntegers) {
  CheckAll({
      {"bool", {"true", "false", kNull}, Expect::kPgText},
      {"int2", {"0", "-32768", "32767", kNull}, Expect::kPgText},
      {"int4", {"-2147483648", "2147483647", "0", "42", kNull}, Expect::kPgText},
      {"int8", {"-9223372036854775808", "9223372036854775807", "0", kNull}, Expect::kPgText},
      {"oid", {"0", "4294967295", "16384", kNull}, Expect::kPgText},
  });
}

TEST_F(TypeCodecTest, Floats) {
  CheckAll({
      {"float4",
       {"0", "-0", "1.1", "3.4028235e38", "1e-45", "NaN", "Infinity", "-Infinity", "123456", "1e6",
        "0.0001", "1.17549435e-38", kNull},
       Expect::kFloat},
      {"float8",
       {"0.1", "-0", "1e100", "1.5e-5", "5e-324", "1.7976931348623157e308", "NaN", "Infinity",
        "-Infinity", "123456789012345678", "123456789012345", "0.0001", "2.5", kNull},
       Expect::kFloat},
  });
}

TEST_F(TypeCodecTest, Numeric) {
  CheckAll({
      // Unconstrained → utf8, exact text.
      {"numeric",
       {"12.3400", "0", "-0.0001", "NaN", "Infinity", "-Infinity", "1e100",
        "123456789012345678901234567890.123456789", "0.000000000000000000001", "-5", "10000",
        "9999.9999", kNull}},
      {"numeric(10,2)",
       {"12.34", "-99999999.99", "0", "NaN", "0.05", "1.005", "-0.01", kNull},
       Expect::kPgText},
      {"numeric(38,10)",
       {"9999999999999999999999999999.9999999999", "-1.0000000001", "0", "NaN", kNull},
       Expect::kPgText},
      {"numeric(38,0)", {"99999999999999999999999999999999999999", "-1", kNull}, Expect::kPgText},
      {"numeric(5,5)", {"0.12345", "-0.5", kNull}, Expect::kPgText},
      {"numeric(1,0)", {"9", "-9", "NaN", kNull}, Expect::kPgText},
      // p > 38 and negative scale → utf8.
      {"numeric(40,5)", {"12345678901234567890123456789012345.12345", "NaN", kNull}},
      {"numeric(5,-2)", {"12345", "-50", kNull}},
      {"money",
       {"1234.56", "-1", "0", "92233720368547758.07", "-92233720368547758.08", "0.01", kNull},
       Expect::kMoney},
  });
}

TEST_F(TypeCodecTest, TextTypes) {
  CheckAll({
      {"text",
       {"", "hello", "ünïcödé 🚀 中文", "a\"b\\c", "tab\there\nnewline", "NULL", " padded ", kNull}},
      {"varchar(5)", {"abc", "", "ü🚀", kNull}},
      {"varchar", {"x", kNull}},
      {"char(5)", {"ab", "", "abcde", "ü", kNull}},
      {"char", {"x", kNull}},
      {"name", {"pg_class", "", "Üñí", kNull}},
      {"\"char\"", {"a", "Z", "", kNull}},
      {"json", {"{\"a\": [1, 2.50, null]}", "[]", "\"ü\"", "  {\"spaces\" : 1}  ", kNull}},
      {"jsonb", {"{\"a\": [1, 2.50, null]}", "[]", "\"ü\"", "{\"b\":1,\"a\":{}}", kNull}},
      {"jsonpath", {"$.a[*] ? (@ > 1)", "strict $.b", kNull}},
      {"xml", {"<a>b</a>", "<?xml version=\"1.0\"?><x/>", "text only", kNull}},
      {"bytea",
       {"\\x", "\\x00ff10", "=E'abc'::bytea", "=decode('c3a9', 'hex')", kNull},
       Expect::kHex},
      {"uuid",
       {"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "00000000-0000-0000-0000-000000000000",
        "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "{ffffffff-ffff-ffff-ffff-ffffffffffff}", kNull}},
  });
}

TEST_F(TypeCodecTest, Temporal) {
  CheckAll({
      {"date",
       {"2020-01-01", "1970-01-01", "1969-12-31", "infinity", "-infinity", "4713-01-01 BC",
        "5874897-12-31", "0001-01-01", "0001-12-31 BC", "2000-02-29", kNull},
       Expect::kDays},
      {"time",
       {"00:00:00", "12:34:56.789", "23:59:59.999999", "24:00:00", "00:00:00.000001", kNull},
       Expect::kTimeMicros},
      {"time(2)", {"12:34:56.789", kNull}, Expect::kTimeMicros},
      {"timetz",
       {"12:34:56.789+05:30", "00:00:00-01", "23:59:59+14", "12:00:00+05:30:15", "24:00:00-15:59",
        "01:02:03.000004+00", kNull}},
      {"timestamp",
       {"2020-01-01 00:00:00", "2020-01-01 00:00:00.123", "infinity", "-infinity",
        "4713-01-01 00:00:00 BC", "294276-12-31 23:59:59.999999", "1969-12-31 23:59:59.999999",
        "0001-01-01 00:00:00", "10000-01-01 00:00:00", "2000-02-29 12:00:00.5", kNull},
       Expect::kEpochMicros},
      {"timestamp(0)", {"2020-01-01 00:00:00.6", kNull}, Expect::kEpochMicros},
      {"timestamptz",
       {"2020-01-01 00:00:00+00", "2020-06-01 12:00:00+05:30", "infinity", "-infinity",
        "1900-01-01 00:00:00+00", "0044-03-15 12:00:00+00 BC", "1970-01-01 00:00:00.000001+00",
        kNull},
       Expect::kEpochMicros},
      {"interval",
       {"1 year 2 mons 3 days 04:05:06.789", "0", "-1 days +02:00:00", "-00:00:01",
        "178000000 years", "-178000000 years", "1 mon -1 day", "01:02:03.000001", "-1 year -2 mons",
        "100 hours", "-3 days -04:00:00", "100000000 hours", kNull},
       Expect::kInterval},
      {"interval day to second", {"1 day 02:03:04", kNull}, Expect::kInterval},
  });
}

TEST_F(TypeCodecTest, NetworkBitsAndMisc) {
  CheckAll({
      {"inet",
       {"192.168.1.5/24", "10.0.0.1", "::1", "2001:db8::1/64", "::ffff:1.2.3.4", "fe80::1:2:3:4",
        "0.0.0.0/0", "::", "1::", "1:0:0:1::1", "2001:db8:0:0:1:0:0:1", "::1.2.3.4",
        "255.255.255.255", kNull}},
      {"cidr",
       {"10.0.0.0/8", "192.168.1.0/24", "2001:db8::/32", "::/0", "10.1.2.3/32", "::ffff:0:0/96",
        "::1/128", kNull}},
      {"macaddr", {"08:00:2b:01:02:03", "FF-FF-FF-FF-FF-FF", kNull}},
      {"macaddr8", {"08:00:2b:01:02:03:04:05", "08:00:2b:01:02:03", kNull}},
      {"bit(4)", {"1010", "0000", kNull}},
      {"varbit", {"", "1", "1111111101", "101010101010101010", kNull}},
      {"tsvector",
       {"a fat cat", "a:1A fat:2B,4C cat:5 sat:3D", "it's", "", "'back\\\\slash' 'q''t'", kNull}},
      {"tsquery",
       {"fat & rat", "!cat | (dog <-> bird)", "", "'it''s' & back\\\\slash", "fat:AB & ca:*",
        "a <3> (b | c)", "(a <-> b) <-> c", "a <-> (b <-> c)", "!(a & b)", "!!a",
        "a & (b | c) & !d", "(a | b) & c", "a:*D", "!a <-> b", "(a & b) <2> c", kNull}},
      // Binary regclass is an oid; its text needs the catalog, so binary is refused cleanly.
      {"regclass", {"pg_class", "pg_type", kNull}, Expect::kNone, /*binary_unsupported=*/true},
      {"pg_lsn", {"16/B374D848", "0/0", "FFFFFFFF/FFFFFFFF", kNull}},
      {"txid_snapshot", {"10:20:10,15", "10:10:", kNull}},
      {"pg_snapshot", {"10:20:10,15", kNull}},
      {"xid", {"=1234::text::xid", kNull}},
      {"xid8", {"=18446744073709551615::text::xid8", "0", kNull}},
      {"cid", {"=7::text::cid", kNull}},
      {"tid", {"(0,1)", "(4294967295,65535)", kNull}},
      {"int2vector", {"1 2 -3", "", kNull}},
      {"oidvector", {"23 4294967295", kNull}},
      {"refcursor", {"my cursor", kNull}},
      {"int2vector[]", {"{\"1 2\",\"\"}", kNull}},
  });
}

TEST_F(TypeCodecTest, Geometric) {
  CheckAll({
      {"point", {"(1.5,-2)", "(0,0)", "(1e100,-1e-100)", "(0.1,NaN)", kNull}},
      {"line", {"{1,2,3}", "{0.5,-1,0}", kNull}},
      {"lseg", {"[(0,0),(1,1)]", kNull}},
      {"box", {"(1,1),(0,0)", "(0,0),(2.5,3)", kNull}},
      {"path", {"[(0,0),(1,1),(2,0)]", "((0,0),(1,1),(2,0))", kNull}},
      {"polygon", {"((0,0),(1,1),(2,0))", kNull}},
      {"circle", {"<(0,0),2.5>", "<(1.1,-2.2),0>", kNull}},
  });
}

TEST_F(TypeCodecTest, RangesAndMultiranges) {
  CheckAll({
      {"int4range", {"empty", "[1,10)", "(,5)", "[5,)", "(,)", "[1,1]", kNull}},
      {"int8range", {"[-9223372036854775808,0)", "empty", kNull}},
      {"numrange", {"[1.5,2.25]", "(,)", "(0.000,NaN)", "empty", kNull}},
      {"tsrange",
       {"[\"2020-01-01 00:00:00\",\"2020-01-02 00:00:00\")", "(,infinity)",
        "[2020-01-01 00:00:00.5,)", kNull}},
      {"tstzrange", {"[2020-01-01 00:00:00+00,2020-01-02 00:00:00+00)", "empty", kNull}},
      {"daterange", {"[2020-01-01,2020-02-01)", "[2020-01-01,infinity)", "(,)", kNull}},
      {"floatrange", {"[1.5,2.25)", "(-Infinity,0]", kNull}},
      {"floatmultirange", {"{[1.5,2.25),[3,4]}", "{}", kNull}},
      {"int4multirange", {"{[1,3),[5,7)}", "{}", "{(,)}", kNull}},
      {"nummultirange", {"{[1.5,2)}", kNull}},
      {"tsmultirange", {"{[2020-01-01,2020-01-02),[2021-01-01,)}", kNull}},
      {"tstzmultirange", {"{[2020-01-01 00:00:00+00,2020-01-02 00:00:00+00)}", kNull}},
      {"datemultirange", {"{[2020-01-01,2020-01-05),[2020-02-01,2020-02-03)}", "{}", kNull}},
  });
}

TEST_F(TypeCodecTest, EnumsDomainsAndComposites) {
  CheckAll({
      {"mood", {"sad", "happy", "très content", kNull}},
      {"price", {"12.34", "0", "NaN", kNull}, Expect::kPgText},
      {"short_text", {"abc", "", kNull}},
      {"pair",
       {"=ROW(1, 'a b', 1.50, '2020-01-01 00:00:00+00', 'happy', '{1,NULL}')::pair",
        "=ROW(NULL, '', NULL, NULL, NULL, NULL)::pair",
        "=ROW(2, 'x\"y\\z(),', 'NaN', 'infinity', "
        "'très content', '{}')::pair",
        "=ROW(NULL, NULL, NULL, NULL, NULL, NULL)::pair", kNull}},
      // Floats rendered from binary (PostgreSQL's shortest-exact output, fixed vs. exponent).
      {"floats",
       {"=ROW(1e6, 1e15)::floats", "=ROW(123456, 1e14)::floats", "=ROW(1.1, 0.1)::floats",
        "=ROW(3.4028235e38, 5e-324)::floats", "=ROW('NaN', '-Infinity')::floats",
        "=ROW('-0', 1e-5)::floats", "=ROW(1e-4, 0.0001)::floats",
        "=ROW(999999.94, 999999999999999.9)::floats", "=ROW(1e-45, 1.7976931348623157e308)::floats",
        "=ROW(0.000123, 123456789012345.67)::floats", "=ROW(100, 1234567890123456789)::floats",
        kNull}},
      {"float8[]", {"{{1e15,1e14},{1e-5,NaN}}", kNull}},
      {"float4[]", {"{{1e6,123456},{1.5e-5,-0}}", kNull}},
      {"wrapper",
       {"=ROW(ROW(1, 'a b', 1.5, NULL, 'ok', '{{1,2},{3,4}}')::pair, 0.1, '[1,5)', true)::wrapper",
        "=ROW(NULL, 'NaN', 'empty', false)::wrapper", kNull}},
  });
}

// Big-endian reader for the pgoutput and COPY BINARY framing in the tests below.
class Wire {
 public:
  explicit Wire(absl::string_view data) : data_(data) {}
  bool done() const { return pos_ >= data_.size(); }
  template <typename T>
  T Read() {
    T v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) {
      v = static_cast<T>((static_cast<uint64_t>(v) << 8) | static_cast<uint8_t>(Byte()));
    }
    return v;
  }
  char Byte() {
    if (pos_ >= data_.size()) {
      ADD_FAILURE() << "read past the end";
      return 0;
    }
    return data_[pos_++];
  }
  std::string CString() {
    std::string out;
    for (char c = Byte(); c != '\0'; c = Byte()) out.push_back(c);
    return out;
  }
  absl::string_view Bytes(size_t n) {
    if (pos_ + n > data_.size()) {
      ADD_FAILURE() << "read past the end";
      n = data_.size() - pos_;
    }
    absl::string_view out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }

 private:
  absl::string_view data_;
  size_t pos_ = 0;
};

using Cells = std::vector<std::optional<std::string>>;

// One column as delivered by a path: the type the path reports, its cells, and their format.
struct Delivered {
  Oid oid;
  int32_t typmod = -1;
  bool binary = true;
  Cells cells;
};

TEST_F(TypeCodecTest, SameValuesThroughPgoutputCopyAndQueries) {
  // The point of the codec: a value looks identical whichever path delivered it. Each column
  // is read by a SELECT in binary, pgoutput with binary 'true' (which reports domains as
  // themselves), pgoutput in text, and COPY BINARY; all four decode to equal arrays.
  ASSERT_TRUE(conn_->Exec("CREATE PUBLICATION codec_pub FOR ALL TABLES").ok());
  const std::string slot = ductstream::testing::PgSandbox::UniqueName("codec");
  ASSERT_TRUE(conn_
                  ->Exec(absl::StrCat("SELECT pg_create_logical_replication_slot('", slot,
                                      "', 'pgoutput')"))
                  .ok());
  const std::vector<TypeCase> cases = {
      {"numeric(10,2)", {"12.34", "NaN", kNull, "-0.01"}},
      {"numeric", {"12.3400", "NaN", "-Infinity"}},
      {"price", {"1.50", "NaN", kNull}},
      {"short_text", {"abc", ""}},
      {"text", {"ünï 🚀", "", kNull}},
      {"timestamptz", {"2020-01-01 00:00:00+00", "infinity", "294276-12-31 23:59:59.999999+00"}},
      {"date", {"2020-01-01", "-infinity"}},
      {"interval", {"1 year 2 mons 3 days 04:05:06.789", "100000000 hours"}},
      {"int4[]", {"{1,NULL,3}", "{{1,2},{3,4}}", "{}"}},
      {"price[]", {"{1.50,NaN}", "{2}"}},
      {"pair", {"=ROW(1, 'a b', 1.5, '2020-01-01', 'ok', '{1}')::pair", kNull}},
      {"mood[]", {"{sad,\"très content\"}"}},
      {"inet", {"::ffff:1.2.3.4", "10.0.0.1/8"}},
      {"tstzrange", {"[2020-01-01 00:00:00+00,infinity)"}},
      {"bytea", {"\\x00ff"}},
      {"float8", {"NaN", "-0", "1e100"}},
      {"bool", {"true"}},
  };
  auto lookup = resolver_->AsLookup();
  for (const TypeCase& c : cases) {
    SCOPED_TRACE(c.type);
    const std::string table = absl::StrCat("p", ++tables_);
    ASSERT_TRUE(
        conn_->Exec(absl::StrCat("CREATE TABLE ", table, " (id int, v ", c.type, ")")).ok());
    auto relid = conn_->QueryValue(absl::StrCat("SELECT '", table, "'::regclass::oid"));
    ASSERT_TRUE(relid.ok());
    for (size_t i = 0; i < c.literals.size(); ++i) {
      const std::string& lit = c.literals[i];
      std::string value = lit == kNull                 ? "NULL"
                          : absl::StartsWith(lit, "=") ? lit.substr(1)
                                                       : Quote(lit);
      ASSERT_TRUE(
          conn_->Exec(absl::StrCat("INSERT INTO ", table, " VALUES (", i, ", ", value, ")")).ok());
    }
    std::vector<Delivered> paths;

    // 1. SELECT, binary results.
    auto select = conn_->ExecParams(absl::StrCat("SELECT v FROM ", table, " ORDER BY id"), {},
                                    /*binary_results=*/true);
    ASSERT_TRUE(select.ok()) << select.status();
    Delivered query{Oid(PQftype(select->get(), 0)), PQfmod(select->get(), 0), true, {}};
    for (int row = 0; row < RowCount(*select); ++row) {
      auto v = GetValue(*select, row, 0);
      query.cells.push_back(v ? std::optional<std::string>(std::string(*v)) : std::nullopt);
    }
    paths.push_back(std::move(query));

    // 2, 3. pgoutput, binary and text.
    for (bool binary : {true, false}) {
      auto changes = conn_->ExecParams(
          absl::StrCat("SELECT data FROM pg_logical_slot_peek_binary_changes('", slot,
                       "', NULL, NULL, 'proto_version', '1', 'publication_names', 'codec_pub', "
                       "'binary', '",
                       binary ? "true" : "false", "')"),
          {}, /*binary_results=*/true);
      ASSERT_TRUE(changes.ok()) << changes.status();
      Delivered out;
      out.binary = binary;
      for (int row = 0; row < RowCount(*changes); ++row) {
        Wire w(GetValue(*changes, row, 0).value_or(""));
        const char kind = w.Byte();
        if (kind == 'R') {
          if (absl::StrCat(w.Read<uint32_t>()) != *relid) continue;
          w.CString();  // namespace
          w.CString();  // relation
          w.Byte();     // replica identity
          ASSERT_EQ(w.Read<int16_t>(), 2);
          for (int att = 0; att < 2; ++att) {
            w.Byte();  // flags
            w.CString();
            out.oid = Oid(w.Read<uint32_t>());
            out.typmod = w.Read<int32_t>();
          }
        } else if (kind == 'I') {
          if (absl::StrCat(w.Read<uint32_t>()) != *relid) continue;
          ASSERT_EQ(w.Byte(), 'N');
          ASSERT_EQ(w.Read<int16_t>(), 2);
          for (int att = 0; att < 2; ++att) {
            const char format = w.Byte();
            std::optional<std::string> cell;
            if (format == 'b' || format == 't') {
              ASSERT_EQ(format, binary ? 'b' : 't');
              cell = std::string(w.Bytes(w.Read<uint32_t>()));
            } else {
              ASSERT_EQ(format, 'n');
            }
            if (att == 1) out.cells.push_back(std::move(cell));
          }
        }
      }
      paths.push_back(std::move(out));
    }

    // 4. COPY BINARY.
    {
      PGresult* copy = PQexec(conn_->raw(), absl::StrCat("COPY (SELECT v FROM ", table,
                                                         " ORDER BY id) TO STDOUT (FORMAT binary)")
                                                .c_str());
      ASSERT_EQ(PQresultStatus(copy), PGRES_COPY_OUT) << PQerrorMessage(conn_->raw());
      PQclear(copy);
      std::string stream;
      char* buf = nullptr;
      int n;
      while ((n = PQgetCopyData(conn_->raw(), &buf, 0)) > 0) {
        stream.append(buf, static_cast<size_t>(n));
        PQfreemem(buf);
      }
      ASSERT_EQ(n, -1) << PQerrorMessage(conn_->raw());
      while (PGresult* r = PQgetResult(conn_->raw())) {
        EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK);
        PQclear(r);
      }
      Wire w(stream);
      ASSERT_EQ(w.Bytes(11), absl::string_view("PGCOPY\n\377\r\n\0", 11));
      w.Read<int32_t>();                                // flags
      w.Bytes(static_cast<size_t>(w.Read<int32_t>()));  // header extension
      Delivered out{paths[0].oid, paths[0].typmod, true, {}};
      for (int16_t fields = w.Read<int16_t>(); fields != -1; fields = w.Read<int16_t>()) {
        ASSERT_EQ(fields, 1);
        const int32_t len = w.Read<int32_t>();
        out.cells.push_back(
            len < 0 ? std::nullopt
                    : std::optional<std::string>(std::string(w.Bytes(static_cast<size_t>(len)))));
      }
      paths.push_back(std::move(out));
    }

    std::shared_ptr<arrow::Array> first;
    std::vector<UnrepresentableValue> first_unrep;
    for (size_t p = 0; p < paths.size(); ++p) {
      SCOPED_TRACE(absl::StrCat("path ", p));
      const Delivered& d = paths[p];
      ASSERT_EQ(d.cells.size(), c.literals.size());
      auto decoder = MakeColumnDecoder(d.oid, d.typmod, lookup);
      ASSERT_TRUE(decoder.ok()) << decoder.status();
      for (const auto& cell : d.cells) {
        auto st = !cell      ? (*decoder)->AppendNull()
                  : d.binary ? (*decoder)->AppendBinary(*cell)
                             : (*decoder)->AppendText(*cell);
        ASSERT_TRUE(st.ok()) << st;
      }
      auto unrep = (*decoder)->unrepresentable();
      auto array = (*decoder)->Finish();
      ASSERT_TRUE(array.ok()) << array.status();
      if (p == 0) {
        first = *array;
        first_unrep = unrep;
        continue;
      }
      EXPECT_TRUE(first->Equals(**array, arrow::EqualOptions::Defaults().nans_equal(true)))
          << first->ToString() << "\nvs\n"
          << (*array)->ToString();
      EXPECT_EQ(unrep, first_unrep);
    }
    // The domain columns really arrived as domains through pgoutput.
    if (c.type == "price") {
      EXPECT_NE(paths[1].oid, paths[0].oid);
    }
    ASSERT_TRUE(
        conn_
            ->Exec(absl::StrCat("SELECT count(*) FROM pg_logical_slot_get_binary_changes('", slot,
                                "', NULL, NULL, 'proto_version', '1', "
                                "'publication_names', 'codec_pub')"))
            .ok());
  }
  ASSERT_TRUE(conn_->Exec(absl::StrCat("SELECT pg_drop_replication_slot('", slot, "')")).ok());
}

TEST_F(TypeCodecTest, AnonymousRecords) {
  // `record` columns: the binary format names each field's type.
  CheckSelect(
      "SELECT v, NULL::text FROM (VALUES (1, ROW(1, 'a b', NULL::text, ROW(2.5, 'x'), "
      "ARRAY[1.5::float8, NULL], '2020-01-01'::date, '1 day'::interval, '\\x01'::bytea)), "
      "(2, ROW(NULL::int, ''::text, 'ü'::text, NULL::record, '{}'::int4[], 'infinity'::date, "
      "'-00:00:01'::interval, ''::bytea)), (3, NULL)) t(id, v) ORDER BY id",
      {"record", {"row 1", "row 2", "NULL"}});
}

TEST_F(TypeCodecTest, TimestamptzTextInOtherTimeZones) {
  // Text timestamptz carries the session's UTC offset (with seconds for LMT-era values); it
  // must decode to the same instant as the binary value.
  for (const char* tz : {"Asia/Kolkata", "America/St_Johns", "Europe/Amsterdam", "UTC"}) {
    SCOPED_TRACE(tz);
    ASSERT_TRUE(conn_->Exec(absl::StrCat("SET TimeZone = '", tz, "'")).ok());
    CheckSelect(
        "SELECT v::timestamptz, NULL::text FROM (VALUES (1, '2020-01-01 00:00:00+00'), "
        "(2, '1900-01-01 12:00:00+00'), (3, '1850-06-01 00:00:00.5+00'), (4, 'infinity'), "
        "(5, '0044-03-15 12:00:00+00 BC')) t(id, v) ORDER BY id",
        {"timestamptz", {"2020", "1900", "1850", "infinity", "44 BC"}});
  }
}

TEST_F(TypeCodecTest, ResolverReadsTheCatalog) {
  auto oid_of = [&](const char* type) {
    auto v = conn_->QueryValue(absl::StrCat("SELECT '", type, "'::regtype::oid"));
    EXPECT_TRUE(v.ok()) << v.status();
    uint32_t oid = 0;
    EXPECT_TRUE(absl::SimpleAtoi(v.value_or("0"), &oid));
    return Oid(oid);
  };
  auto mood = resolver_->Lookup(oid_of("mood"));
  ASSERT_TRUE(mood.ok()) << mood.status();
  EXPECT_EQ(mood->schema, "public");
  EXPECT_EQ(mood->name, "mood");
  EXPECT_EQ(mood->typtype, 'e');
  auto moods = resolver_->Lookup(oid_of("mood[]"));
  ASSERT_TRUE(moods.ok()) << moods.status();
  EXPECT_EQ(moods->category, 'A');
  EXPECT_EQ(moods->element_oid, oid_of("mood"));
  auto price = resolver_->Lookup(oid_of("price"));
  ASSERT_TRUE(price.ok()) << price.status();
  EXPECT_EQ(price->typtype, 'd');
  EXPECT_EQ(price->base_oid, Oid(1700));
  EXPECT_EQ(price->typmod, ((10 << 16) | 2) + 4);
  auto range = resolver_->Lookup(oid_of("floatrange"));
  ASSERT_TRUE(range.ok()) << range.status();
  EXPECT_EQ(range->typtype, 'r');
  EXPECT_EQ(range->range_subtype, Oid(701));
  auto multirange = resolver_->Lookup(oid_of("floatmultirange"));
  ASSERT_TRUE(multirange.ok()) << multirange.status();
  EXPECT_EQ(multirange->typtype, 'm');
  EXPECT_EQ(multirange->range_subtype, Oid(701));
  auto missing = resolver_->Lookup(Oid(4000000000u));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  // Answers are cached: they survive the type being dropped.
  ASSERT_TRUE(conn_->Exec("CREATE TYPE gone AS ENUM ('x')").ok());
  const Oid gone = oid_of("gone");
  ASSERT_TRUE(resolver_->Lookup(gone).ok());
  ASSERT_TRUE(conn_->Exec("DROP TYPE gone").ok());
  auto cached = resolver_->Lookup(gone);
  ASSERT_TRUE(cached.ok()) << cached.status();
  EXPECT_EQ(cached->name, "gone");
}

TEST_F(TypeCodecTest, DomainOidsDecodeAsTheirBase) {
  // RowDescription reports a domain column as its base type, pgoutput as the domain itself:
  // both must decode the same.
  auto domain_oid = conn_->QueryValue("SELECT 'price'::regtype::oid");
  ASSERT_TRUE(domain_oid.ok()) << domain_oid.status();
  uint32_t oid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(*domain_oid, &oid));
  ASSERT_TRUE(conn_->Exec("CREATE TABLE dom (id int, v price)").ok());
  ASSERT_TRUE(
      conn_->Exec("INSERT INTO dom VALUES (1, '12.34'), (2, NULL), (3, 'NaN'), (4, 0)").ok());
  auto r = conn_->ExecParams("SELECT v FROM dom ORDER BY id", {}, /*binary_results=*/true);
  ASSERT_TRUE(r.ok()) << r.status();
  auto lookup = resolver_->AsLookup();
  auto via_domain = MakeColumnDecoder(Oid(oid), -1, lookup);
  ASSERT_TRUE(via_domain.ok()) << via_domain.status();
  auto via_base = MakeColumnDecoder(Oid(PQftype(r->get(), 0)), PQfmod(r->get(), 0), lookup);
  ASSERT_TRUE(via_base.ok()) << via_base.status();
  EXPECT_TRUE((*via_domain)->type()->Equals(arrow::decimal128(10, 2)));
  for (int row = 0; row < RowCount(*r); ++row) {
    for (auto* d : {via_domain->get(), via_base->get()}) {
      auto v = GetValue(*r, row, 0);
      ASSERT_TRUE((v ? d->AppendBinary(*v) : d->AppendNull()).ok());
    }
  }
  std::vector<UnrepresentableValue> expected = {{2, "NaN"}};
  EXPECT_EQ((*via_domain)->unrepresentable(), expected);
  EXPECT_EQ((*via_base)->unrepresentable(), expected);
  auto a = (*via_domain)->Finish();
  auto b = (*via_base)->Finish();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE((*a)->Equals(**b));
  EXPECT_EQ(static_cast<const arrow::Decimal128Array&>(**a).FormatValue(0), "12.34");
}

TEST_F(TypeCodecTest, Arrays) {
  CheckAll({
      {"int4[]",
       {"{1,NULL,3}", "{}", "{{1,2},{3,4}}", "[0:1]={1,2}", "{NULL}", kNull},
       Expect::kPgText},
      {"int8[]", {"{-9223372036854775808,9223372036854775807}", kNull}, Expect::kPgText},
      {"bool[]", {"{t,f,NULL}", kNull}, Expect::kPgText},
      {"text[]",
       {"{\"a b\",\"NULL\",NULL,\"\",\"x\\\"y\\\\z\",ü,\"{}\",\"a,b\"}", "{}", "{{a,b},{c,d}}",
        kNull}},
      {"varchar(3)[]", {"{ab,\"\"}", kNull}},
      {"char(3)[]", {"{a,\"\"}", kNull}},
      {"numeric(5,2)[]", {"{1.50,-2,NULL}", "{1.50,NaN}", kNull}, Expect::kPgText},
      {"numeric[]", {"{1.50,NaN,Infinity,-0.001}", kNull}},
      {"float8[]", {"{0.1,NaN,-Infinity,1e100}", kNull}},
      {"timestamptz[]", {"{\"2020-01-01 00:00:00+00\",infinity,NULL}", kNull}},
      {"timestamp[]", {"{\"294276-12-31 23:59:59.999999\"}", "{\"2020-01-01 00:00:00\"}", kNull}},
      {"date[]", {"{2020-01-01,-infinity}", kNull}},
      {"interval[]", {"{\"1 day\",\"-00:00:01\"}", kNull}},
      {"uuid[]", {"{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}", kNull}},
      {"bytea[]", {"{\"\\\\x00ff\",NULL}", kNull}},
      {"jsonb[]", {"{\"{\\\"a\\\": 1}\",null}", kNull}},
      {"inet[]", {"{10.0.0.1/8,::1}", kNull}},
      {"box[]", {"{(1,1),(0,0);(3,3),(2,2)}", kNull}},
      {"point[]", {"{\"(1,2)\",\"(3,4)\"}", kNull}},
      {"int4range[]", {"{\"[1,3)\",empty}", kNull}},
      {"mood[]", {"{sad,NULL,\"très content\"}", kNull}},
      {"pair[]", {"=ARRAY[ROW(1, 'a b', 1.5, NULL, 'ok', NULL)::pair, NULL]", kNull}},
      {"price[]", {"{1.50,NaN}", kNull}, Expect::kPgText},
      {"price_list", {"{1.50,2}", kNull}, Expect::kPgText},
      {"\"char\"[]", {"{a,b}", kNull}},
      {"money[]", {"{1.50,-2}", kNull}},
      {"timetz[]", {"{12:00:00+05:30}", kNull}},
      {"bit(2)[]", {"{10,01}", kNull}},
  });
}

}  // namespace
}  // namespace ductstream::postgres
