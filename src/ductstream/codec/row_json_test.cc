// Unit tests of the row → JSON rendering (row_json.h), checked as exact text.
#include "ductstream/codec/row_json.h"

#include <limits>
#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include <arrow/json/from_string.h>
#include <arrow/util/key_value_metadata.h>

#include "ductstream/codec/testing_batches.h"

namespace ductstream::codec {
namespace {

std::string JsonString(absl::string_view text) {
  std::string out;
  AppendJsonString(text, &out);
  return out;
}

std::string Timestamp(int64_t micros, bool utc = true) {
  std::string out;
  AppendJsonTimestampMicros(micros, utc, &out);
  return out;
}

TEST(RowJsonTest, EscapesStrings) {
  EXPECT_EQ(JsonString(""), R"("")");
  EXPECT_EQ(JsonString("plain"), R"("plain")");
  EXPECT_EQ(JsonString("a\"b\\c/d"), R"("a\"b\\c/d")");
  EXPECT_EQ(JsonString("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(JsonString(std::string("\x00\x01\x1f\x7f", 4)), "\"\\u0000\\u0001\\u001f\x7f\"");
  // Non-ASCII UTF-8 is copied as is (2-, 3- and 4-byte sequences).
  EXPECT_EQ(JsonString("\xc3\xbc\xe2\x9c\x93\xf0\x9f\x98\x80"),
            "\"\xc3\xbc\xe2\x9c\x93\xf0\x9f\x98\x80\"");
  // Whatever the input, an independent parser gets the original text back.
  const std::string nasty = std::string("x\"\\\x00\x02\ny\xc3\xbc", 10);
  EXPECT_EQ(nlohmann::json::parse(JsonString(nasty)).get<std::string>(), nasty);
}

TEST(RowJsonTest, FormatsTimestamps) {
  EXPECT_EQ(Timestamp(0), R"("1970-01-01T00:00:00.000000Z")");
  EXPECT_EQ(Timestamp(-1), R"("1969-12-31T23:59:59.999999Z")");
  EXPECT_EQ(Timestamp(1704164645123456, false), R"("2024-01-02T03:04:05.123456")");
  EXPECT_EQ(Timestamp(951782400000000), R"("2000-02-29T00:00:00.000000Z")");  // leap day
  EXPECT_EQ(Timestamp(253402300800000000), R"("10000-01-01T00:00:00.000000Z")");
  EXPECT_EQ(Timestamp(-62167219200000000), R"("0000-01-01T00:00:00.000000Z")");  // 1 BC
  // PostgreSQL's lowest timestamp, 4714-11-24 00:00:00 BC.
  EXPECT_EQ(Timestamp(-210866803200000000), R"("-4713-11-24T00:00:00.000000Z")");
  EXPECT_EQ(Timestamp(std::numeric_limits<int64_t>::max()), R"("infinity")");
  EXPECT_EQ(Timestamp(std::numeric_limits<int64_t>::min()), R"("-infinity")");
}

TEST(RowJsonTest, AppendsToWhatIsThere) {
  // Longer than the renderer's growth step, with escapes throughout.
  std::string text;
  std::string want = "\"";
  for (int i = 0; i < 3000; ++i) {
    text += (i % 100 == 0) ? '"' : static_cast<char>('a' + i % 26);
    want += (i % 100 == 0) ? "\\\"" : std::string(1, static_cast<char>('a' + i % 26));
  }
  want += "\"";
  std::string out = "prefix ";
  AppendJsonString(text, &out);
  EXPECT_EQ(out, "prefix " + want);
  AppendJsonString("x", &out);
  EXPECT_EQ(out, "prefix " + want + "\"x\"");
}

TEST(RowJsonTest, LsnTextIsLsnToString) {
  for (uint64_t v :
       {uint64_t{0}, uint64_t{1}, uint64_t{0xA}, uint64_t{0x16B374D848}, uint64_t{0xFFFFFFFF},
        uint64_t{1} << 32, uint64_t{0x10000000F}, std::numeric_limits<uint64_t>::max()}) {
    EXPECT_EQ(LsnText(Lsn(v)).view(), Lsn(v).ToString()) << v;
  }
}

class RowJsonSampleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto created = RowJsonRenderer::Create(sample::MakeSampleChanges());
    ASSERT_TRUE(created.ok()) << created.status();
    r_ = *std::move(created);
  }
  std::string After(int64_t row) const {
    std::string out;
    r_->AppendAfter(row, &out);
    return out;
  }
  std::string Before(int64_t row) const {
    std::string out;
    r_->AppendBefore(row, &out);
    return out;
  }
  std::string Key(int64_t row) const {
    std::string out;
    r_->AppendKey(row, &out);
    return out;
  }
  std::unique_ptr<RowJsonRenderer> r_;
};

TEST_F(RowJsonSampleTest, KeyIsSortedByName) {
  // Key columns are (id, account) in column order; the key object sorts them.
  EXPECT_EQ(r_->key_columns(), (std::vector<std::string>{"id", "account"}));
  EXPECT_EQ(Key(0), R"({"account":9007199254740993,"id":1})");
  EXPECT_EQ(Key(2), R"({"account":30,"id":3})");  // update: the new key
  EXPECT_EQ(Key(3), R"({"account":30,"id":3})");  // delete: from the before image
  EXPECT_EQ(Key(4), "null");                      // truncate
}

TEST_F(RowJsonSampleTest, UnchangedToastIsOmittedAndNullIsNull) {
  const std::string after = After(2);
  EXPECT_EQ(after.find("\"name\""), std::string::npos) << after;
  EXPECT_NE(after.find(R"("uid":null)"), std::string::npos) << after;
  EXPECT_EQ(r_->unchanged(2), std::vector<absl::string_view>{"name"});
  // Identity default: the before image has the identity columns only.
  EXPECT_EQ(Before(2), R"({"id":2,"account":-1})");
  EXPECT_EQ(Before(0), "null");
  EXPECT_EQ(After(3), "null");
  EXPECT_EQ(After(4), "null");
  const auto exact = r_->exact(2);
  ASSERT_EQ(exact.size(), 1u);
  EXPECT_EQ(exact[0].first, "price");
  EXPECT_EQ(exact[0].second, "NaN");
  EXPECT_TRUE(r_->exact(0).empty());
}

TEST_F(RowJsonSampleTest, MetadataAccessors) {
  EXPECT_EQ(r_->num_rows(), 6);
  EXPECT_EQ(r_->schema_name(), "public");
  EXPECT_EQ(r_->table_name(), "widgets");
  EXPECT_EQ(r_->op(3), "delete");
  EXPECT_EQ(r_->lsn(0).ToString(), "16/B374D848");
  EXPECT_EQ(r_->commit_lsn(2).ToString(), "16/B3750100");
  EXPECT_EQ(r_->commit_ts_micros(0), 1704164645123456);
  EXPECT_EQ(r_->commit_ts_micros(5), std::nullopt);
  EXPECT_EQ(r_->xid(2), 1001);
  EXPECT_EQ(r_->seq(5), 5);
}

std::shared_ptr<arrow::Field> PgField(const std::string& name,
                                      std::shared_ptr<arrow::DataType> type, int oid) {
  return arrow::field(name, std::move(type), true,
                      arrow::key_value_metadata({cdc::kMetaPgTypeOid, cdc::kMetaPgTypmod},
                                                {std::to_string(oid), "-1"}));
}

std::shared_ptr<arrow::Array> FromJson(std::shared_ptr<arrow::DataType> type,
                                       const std::string& json) {
  auto array = arrow::json::ArrayFromJSONString(type, json);
  EXPECT_TRUE(array.ok()) << array.status().ToString();
  return *array;
}

// One update under replica identity full, whose data columns exercise the types and cases the
// sample does not: json (114) text with newlines, json[] elements, float32, wide and negative
// decimals, structs, maps, and a before-image column that is unchanged TOAST.
cdc::RelationChanges FullIdentityChanges() {
  cdc::RelationDescription relation;
  relation.relation_id = Oid(1);
  relation.schema = "s";
  relation.table = "t\"q";
  relation.replica_identity = 'f';
  relation.columns = {
      PgField("id", arrow::int32(), 23),
      PgField("note", arrow::utf8(), 114),
      PgField("docs", arrow::list(arrow::utf8()), 199),
      PgField("f", arrow::float32(), 700),
      PgField("big", arrow::decimal128(38, 0), 1700),
      PgField("small_dec", arrow::decimal128(5, 4), 1700),
      PgField(
          "pair",
          arrow::struct_({arrow::field("a", arrow::int8()), arrow::field("b\n", arrow::utf8())}),
          16400),
      PgField("attrs", arrow::map(arrow::utf8(), arrow::int64()), 16401),
      PgField("by_day", arrow::map(arrow::date32(), arrow::boolean()), 16402),
      PgField("name", arrow::utf8(), 25),
  };
  relation.key_columns = {"id"};
  auto schema = cdc::MakeChangeSchema(relation);
  auto before_type = schema->GetFieldByName(cdc::kBeforeColumn)->type();
  const std::string before_json =
      R"([{"id": 1, "note": "{\"old\":\n true}", "docs": null, "f": 0.5, "big": "0",)"
      R"( "small_dec": "0.0000", "pair": null, "attrs": null, "by_day": null, "name": null}])";
  auto columns = arrow::ArrayVector{
      FromJson(arrow::utf8(), R"(["update"])"),
      FromJson(arrow::uint64(), "[1]"),
      FromJson(arrow::uint64(), "[2]"),
      FromJson(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), "[0]"),
      FromJson(arrow::int64(), "[7]"),
      FromJson(arrow::int64(), "[0]"),
      FromJson(schema->GetFieldByName(cdc::kUnchangedColumn)->type(), R"([["__before.name"]])"),
      FromJson(before_type, before_json),
      FromJson(schema->GetFieldByName(cdc::kExactColumn)->type(), "[null]"),
      FromJson(arrow::int32(), "[1]"),
      FromJson(arrow::utf8(), R"(["{\"a\":\r\n [1,\n2]}"])"),
      FromJson(arrow::list(arrow::utf8()), R"([["{\"x\": 1}", null, "[]"]])"),
      FromJson(arrow::float32(), "[0.1]"),
      FromJson(arrow::decimal128(38, 0), R"(["-99999999999999999999999999999999999999"])"),
      FromJson(arrow::decimal128(5, 4), R"(["-0.0001"])"),
      FromJson(
          arrow::struct_({arrow::field("a", arrow::int8()), arrow::field("b\n", arrow::utf8())}),
          R"([{"a": -8, "b\n": "v"}])"),
      FromJson(arrow::map(arrow::utf8(), arrow::int64()), R"([[["k\"1", 1], ["k2", null]]])"),
      FromJson(arrow::map(arrow::date32(), arrow::boolean()), R"([[[0, true]]])"),
      FromJson(arrow::utf8(), R"(["new"])"),
  };
  cdc::RelationChanges changes;
  changes.relation_id = relation.relation_id;
  changes.schema = relation.schema;
  changes.table = relation.table;
  changes.key_columns = relation.key_columns;
  changes.records = arrow::RecordBatch::Make(schema, 1, columns);
  EXPECT_TRUE(changes.records->ValidateFull().ok());
  return changes;
}

TEST(RowJsonTest, FullIdentityAndNestedTypes) {
  auto created = RowJsonRenderer::Create(FullIdentityChanges());
  ASSERT_TRUE(created.ok()) << created.status();
  const RowJsonRenderer& r = **created;
  std::string before;
  r.AppendBefore(0, &before);
  // Every column but the unchanged-TOAST "name"; the json text's newline became a space.
  EXPECT_EQ(before, R"({"id":1,"note":{"old":  true},"docs":null,"f":0.5,"big":"0",)"
                    R"("small_dec":"0.0000","pair":null,"attrs":null,"by_day":null})");
  std::string after;
  r.AppendAfter(0, &after);
  EXPECT_EQ(after, R"({"id":1,"note":{"a":   [1, 2]},"docs":[{"x": 1},null,[]],"f":0.1,)"
                   R"("big":"-99999999999999999999999999999999999999","small_dec":"-0.0001",)"
                   R"("pair":{"a":-8,"b\n":"v"},"attrs":{"k\"1":1,"k2":null},)"
                   R"("by_day":{"1970-01-01":true},"name":"new"})");
  std::string change;
  r.AppendChange(0, &change);
  EXPECT_EQ(change.find('\n'), std::string::npos);
  const auto parsed = nlohmann::json::parse(change);
  EXPECT_EQ(parsed["table"], "t\"q");
  EXPECT_EQ(parsed["key"], nlohmann::json({{"id", 1}}));
  EXPECT_EQ(parsed["unchanged"], nlohmann::json({"__before.name"}));
  EXPECT_FALSE(parsed.contains("exact"));
}

TEST(RowJsonTest, UnsupportedTypeNamesTheColumn) {
  cdc::RelationDescription relation;
  relation.schema = "s";
  relation.table = "t";
  relation.columns = {arrow::field("d", arrow::duration(arrow::TimeUnit::MICRO))};
  auto schema = cdc::MakeChangeSchema(relation);
  arrow::ArrayVector columns;
  for (const auto& field : schema->fields()) {
    columns.push_back(*arrow::MakeArrayOfNull(field->type(), 0));
  }
  cdc::RelationChanges changes;
  changes.records = arrow::RecordBatch::Make(schema, 0, columns);
  auto created = RowJsonRenderer::Create(changes);
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(created.status().message().find("column \"d\" (duration[us])"), std::string::npos)
      << created.status();
}

}  // namespace
}  // namespace ductstream::codec
