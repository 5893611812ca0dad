// The Avro encoder, checked by readers we did not write: fastavro (the project venv) for
// every value, Avro C's own reader where fastavro lacks a codec (snappy).
#include <avro.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <arrow/api.h>
#include <arrow/json/from_string.h>

#include "ductstream/cdc/change_batch.h"
#include "ductstream/codec/codec.h"
#include "ductstream/testing/pg_sandbox.h"
#include "ductstream/testing/subprocess.h"

namespace ductstream::codec {
namespace {

using nlohmann::json;

std::shared_ptr<arrow::Array> FromJson(const std::shared_ptr<arrow::DataType>& type,
                                       const std::string& text) {
  auto array = arrow::json::ArrayFromJSONString(type, text);
  if (!array.ok()) ADD_FAILURE() << type->ToString() << " from " << text << ": " << array.status();
  return array.ValueOrDie();
}

class TempFile {
 public:
  TempFile() {
    static std::atomic<int> counter{0};
    path_ =
        (std::filesystem::temp_directory_path() / ("ds-avro-codec-" + std::to_string(::getpid()) +
                                                   "-" + std::to_string(counter++) + ".avro"))
            .string();
  }
  ~TempFile() { std::filesystem::remove(path_); }
  const std::string& path() const { return path_; }
  void Write(const std::string& bytes) const {
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << bytes;
  }

 private:
  std::string path_;
};

// Reads one Avro file (as bytes) with fastavro; see tests/readers/read_avro_changes.py.
json ReadWithFastavro(const std::string& bytes) {
  TempFile file;
  file.Write(bytes);
  auto out = testing::RunCommandOk({testing::PythonBin(),
                                    testing::SourceDir() + "/tests/readers/read_avro_changes.py",
                                    file.path()});
  if (!out.ok()) {
    ADD_FAILURE() << out.status();
    return json();
  }
  return json::parse(*out);
}

std::string Encode(const cdc::RelationChanges& changes, const std::string& compression = "") {
  auto encoder = MakeEncoder(WireFormat::kAvro, {.compression = compression});
  EXPECT_TRUE(encoder.ok()) << encoder.status();
  std::string out;
  absl::Status s = (*encoder)->Encode(changes, &out);
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

const json* FieldNamed(const json& record_schema, const std::string& name) {
  for (const auto& f : record_schema["fields"]) {
    if (f["name"] == name) return &f;
  }
  return nullptr;
}

// Three changes of public.orders: an insert, an update (REPLICA IDENTITY FULL before image,
// unchanged TOAST in `note`, a numeric NaN kept in __exact) and a key-only delete.
cdc::RelationChanges OrdersChanges() {
  using arrow::field;
  const arrow::FieldVector data = {
      field("id", arrow::int32()),
      field("small", arrow::int16()),
      field("big", arrow::int64()),
      field("oid", arrow::uint32()),
      field("ratio", arrow::float64()),
      field("flag", arrow::boolean()),
      field("amount", arrow::decimal128(10, 2)),
      field("name", arrow::utf8()),
      field("blob", arrow::binary()),
      field("day", arrow::date32()),
      field("ts", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
      field("local_ts", arrow::timestamp(arrow::TimeUnit::MICRO)),
      field("t", arrow::time64(arrow::TimeUnit::MICRO)),
      field("span", arrow::month_day_nano_interval()),
      field("nums", arrow::list(arrow::int32())),
      field("order id", arrow::utf8()),
      field("note", arrow::utf8()),
  };
  cdc::RelationDescription relation{.relation_id = Oid(16384),
                                    .schema = "public",
                                    .table = "orders",
                                    .replica_identity = 'd',
                                    .columns = data,
                                    .key_columns = {"id"}};
  auto schema = cdc::MakeChangeSchema(relation);

  // One JSON array per data column, rows: insert, update, delete.
  const std::vector<std::string> after = {
      R"([1, 1, null])",
      R"([-32768, 7, null])",
      R"([9223372036854775807, -5, null])",
      R"([4294967295, 0, null])",
      R"([NaN, -Inf, null])",
      R"([true, false, null])",
      R"(["-12345678.91", null, null])",
      R"(["Zoë 東京 🚀", "plain", null])",
      R"(["ab\u0000\u007f", "", null])",
      R"([19723, -1, null])",
      R"([1704067200123456, 0, null])",
      R"([1704067200000001, -1, null])",
      R"([45296789012, 0, null])",
      R"([[1, 2, 3000], [-1, -2, -3], null])",
      R"([[1, null, 3], [], null])",
      R"(["A-1", "B-2", null])",
      R"(["a long text", null, null])",
  };
  const std::string before = R"([null,
      {"id": 1, "small": 6, "big": -4, "oid": 1, "ratio": 2.5, "flag": true, "amount": "-0.01",
       "name": "old", "blob": "", "day": 0, "ts": 1, "local_ts": 2, "t": 3, "span": [0, 0, 1],
       "nums": [7], "order id": "A-0", "note": "old note"},
      {"id": 2}])";

  arrow::ArrayVector columns = {
      FromJson(arrow::utf8(), R"(["insert", "update", "delete"])"),
      FromJson(arrow::uint64(), R"([22817864, 22817900, 9223372036854775807])"),
      FromJson(arrow::uint64(), R"([22818000, 22818000, 22818100])"),
      FromJson(schema->field(3)->type(), R"([1704067200000000, 1704067200000000, 1])"),
      FromJson(arrow::int64(), R"([735, 735, 736])"),
      FromJson(arrow::int64(), R"([0, 1, 0])"),
      FromJson(schema->field(6)->type(), R"([[], ["note"], []])"),
      FromJson(schema->field(7)->type(), before),
      FromJson(schema->field(8)->type(), R"([null, [["amount", "NaN"]], null])"),
  };
  for (size_t i = 0; i < data.size(); ++i) {
    columns.push_back(FromJson(data[i]->type(), after[i]));
  }
  cdc::RelationChanges changes;
  changes.relation_id = Oid(16384);
  changes.schema = "public";
  changes.table = "orders";
  changes.key_columns = {"id"};
  changes.records = arrow::RecordBatch::Make(schema, 3, columns);
  EXPECT_TRUE(changes.records->ValidateFull().ok());
  return changes;
}

// What fastavro must read back from OrdersChanges(), value for value.
json ExpectedOrders() {
  return json::parse(R"([
    {"__op": "insert", "__lsn": 22817864, "__commit_lsn": 22818000,
     "__commit_ts": {"$datetime": "2024-01-01T00:00:00+00:00"}, "__xid": 735, "__seq": 0,
     "__unchanged": [], "__before": null, "__exact": null,
     "id": 1, "small": -32768, "big": 9223372036854775807, "oid": 4294967295,
     "ratio": {"$float": "nan"}, "flag": true, "amount": {"$decimal": "-12345678.91"},
     "name": "Zoë 東京 🚀", "blob": {"$bytes": "6162007f"}, "day": {"$date": "2024-01-01"},
     "ts": {"$datetime": "2024-01-01T00:00:00.123456+00:00"},
     "local_ts": {"$datetime": "2024-01-01T00:00:00.000001"}, "t": {"$time": "12:34:56.789012"},
     "span": {"months": 1, "days": 2, "nanoseconds": 3000}, "nums": [1, null, 3],
     "order_id": "A-1", "note": "a long text"},
    {"__op": "update", "__lsn": 22817900, "__commit_lsn": 22818000,
     "__commit_ts": {"$datetime": "2024-01-01T00:00:00+00:00"}, "__xid": 735, "__seq": 1,
     "__unchanged": ["note"],
     "__before": {"id": 1, "small": 6, "big": -4, "oid": 1, "ratio": 2.5, "flag": true,
                  "amount": {"$decimal": "-0.01"}, "name": "old", "blob": {"$bytes": ""},
                  "day": {"$date": "1970-01-01"},
                  "ts": {"$datetime": "1970-01-01T00:00:00.000001+00:00"},
                  "local_ts": {"$datetime": "1970-01-01T00:00:00.000002"},
                  "t": {"$time": "00:00:00.000003"},
                  "span": {"months": 0, "days": 0, "nanoseconds": 1}, "nums": [7],
                  "order_id": "A-0", "note": "old note"},
     "__exact": {"amount": "NaN"},
     "id": 1, "small": 7, "big": -5, "oid": 0, "ratio": {"$float": "-inf"}, "flag": false,
     "amount": null, "name": "plain", "blob": {"$bytes": ""}, "day": {"$date": "1969-12-31"},
     "ts": {"$datetime": "1970-01-01T00:00:00+00:00"},
     "local_ts": {"$datetime": "1969-12-31T23:59:59.999999"}, "t": {"$time": "00:00:00"},
     "span": {"months": -1, "days": -2, "nanoseconds": -3}, "nums": [], "order_id": "B-2",
     "note": null},
    {"__op": "delete", "__lsn": 9223372036854775807, "__commit_lsn": 22818100,
     "__commit_ts": {"$datetime": "1970-01-01T00:00:00.000001+00:00"}, "__xid": 736,
     "__seq": 0, "__unchanged": [],
     "__before": {"id": 2, "small": null, "big": null, "oid": null, "ratio": null, "flag": null,
                  "amount": null, "name": null, "blob": null, "day": null, "ts": null,
                  "local_ts": null, "t": null, "span": null, "nums": null, "order_id": null,
                  "note": null},
     "__exact": null,
     "id": null, "small": null, "big": null, "oid": null, "ratio": null, "flag": null,
     "amount": null, "name": null, "blob": null, "day": null, "ts": null, "local_ts": null,
     "t": null, "span": null, "nums": null, "order_id": null, "note": null}
  ])");
}

TEST(AvroCodecTest, FastavroReadsEveryValueBack) {
  const json got = ReadWithFastavro(Encode(OrdersChanges()));
  ASSERT_TRUE(got.is_object());
  EXPECT_EQ(got["codec"], "null");
  const json& records = got["records"];
  const json expected = ExpectedOrders();
  ASSERT_EQ(records.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    for (const auto& [name, value] : expected[i].items()) {
      EXPECT_EQ(records[i][name], value) << "row " << i << " column " << name;
    }
    EXPECT_EQ(records[i].size(), expected[i].size()) << "row " << i;
  }
  EXPECT_EQ(got["metadata"]["ductstream.table"], "orders");
  EXPECT_EQ(got["metadata"]["ductstream.key"], "id");
}

TEST(AvroCodecTest, SchemaCarriesNamesTypesAndDefaults) {
  const json schema = ReadWithFastavro(Encode(OrdersChanges()))["schema"];
  EXPECT_EQ(schema["type"], "record");
  EXPECT_EQ(schema["name"], "public_orders");
  EXPECT_EQ(schema["namespace"], "ductstream");

  const json* op = FieldNamed(schema, "__op");
  ASSERT_NE(op, nullptr);
  EXPECT_EQ((*op)["type"], "string");
  EXPECT_FALSE(op->contains("default"));
  const json* unchanged = FieldNamed(schema, "__unchanged");
  ASSERT_NE(unchanged, nullptr);
  EXPECT_EQ((*unchanged)["type"], json::parse(R"({"type": "array", "items": "string"})"));

  const json* amount = FieldNamed(schema, "amount");
  ASSERT_NE(amount, nullptr);
  EXPECT_EQ((*amount)["type"], json::parse(R"(["null", {"type": "bytes",
      "logicalType": "decimal", "precision": 10, "scale": 2}])"));
  EXPECT_TRUE((*amount)["default"].is_null());
  EXPECT_TRUE(amount->contains("default"));

  const json* order_id = FieldNamed(schema, "order_id");
  ASSERT_NE(order_id, nullptr);
  EXPECT_EQ((*order_id)["pg_name"], "order id");
  EXPECT_FALSE(FieldNamed(schema, "id")->contains("pg_name"));

  const json* before = FieldNamed(schema, "__before");
  ASSERT_NE(before, nullptr);
  const json& before_record = (*before)["type"][1];
  EXPECT_EQ(before_record["type"], "record");
  EXPECT_NE(before_record["name"], schema["name"]);
  const json* before_order_id = FieldNamed(before_record, "order_id");
  ASSERT_NE(before_order_id, nullptr);
  EXPECT_EQ((*before_order_id)["pg_name"], "order id");

  // The interval record is defined once and referenced by name the second time.
  EXPECT_EQ(FieldNamed(before_record, "span")->at("type")[1]["type"], "record");
  EXPECT_EQ(FieldNamed(schema, "span")->at("type")[1], "month_day_nano_interval");
}

TEST(AvroCodecTest, SanitizedNamesStayUnique) {
  cdc::RelationDescription relation{
      .relation_id = Oid(1),
      .schema = "my schema",
      .table = "9 lives",
      .columns = {arrow::field("order id", arrow::int32()),
                  arrow::field("order_id", arrow::int32()), arrow::field("1st", arrow::int32()),
                  arrow::field("größe", arrow::int32())}};
  cdc::RelationChanges changes;
  changes.schema = relation.schema;
  changes.table = relation.table;
  changes.records =
      arrow::RecordBatch::Make(cdc::MakeChangeSchema(relation), 0, arrow::ArrayVector{});
  // A zero-row batch still needs its columns.
  arrow::ArrayVector columns;
  for (const auto& f : changes.records->schema()->fields()) {
    columns.push_back(*arrow::MakeEmptyArray(f->type()));
  }
  changes.records = arrow::RecordBatch::Make(changes.records->schema(), 0, columns);

  const json got = ReadWithFastavro(Encode(changes));
  EXPECT_TRUE(got["records"].empty());
  const json& schema = got["schema"];
  EXPECT_EQ(schema["name"], "my_schema_9_lives");
  EXPECT_EQ((*FieldNamed(schema, "order_id")).contains("pg_name"), false);
  EXPECT_EQ((*FieldNamed(schema, "order_id_2"))["pg_name"], "order id");
  EXPECT_EQ((*FieldNamed(schema, "_1st"))["pg_name"], "1st");
  EXPECT_EQ((*FieldNamed(schema, "gr____e"))["pg_name"], "größe");
}

TEST(AvroCodecTest, EachEncodeIsAnIndependentFile) {
  auto encoder = MakeEncoder(WireFormat::kAvro);
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  const cdc::RelationChanges changes = OrdersChanges();
  std::string out;
  ASSERT_TRUE((*encoder)->Encode(changes, &out).ok());
  const size_t first_size = out.size();
  ASSERT_TRUE((*encoder)->Encode(changes, &out).ok());  // appends; reuses the cached schema
  ASSERT_GT(out.size(), first_size);

  const json first = ReadWithFastavro(out.substr(0, first_size));
  const json second = ReadWithFastavro(out.substr(first_size));
  ASSERT_EQ(first["records"].size(), 3u);
  EXPECT_EQ(first["records"], second["records"]);
  EXPECT_EQ(first["schema"], second["schema"]);
}

TEST(AvroCodecTest, DeflateRoundTrips) {
  const json plain = ReadWithFastavro(Encode(OrdersChanges()));
  const json deflated = ReadWithFastavro(Encode(OrdersChanges(), "deflate"));
  EXPECT_EQ(deflated["codec"], "deflate");
  ASSERT_EQ(deflated["records"].size(), 3u);
  EXPECT_EQ(deflated["records"], plain["records"]);
}

// fastavro needs cramjam for snappy, which the venv does not carry; Avro C reads it instead.
TEST(AvroCodecTest, SnappyIsReadableByAvroC) {
  const std::string bytes = Encode(OrdersChanges(), "snappy");
  ASSERT_FALSE(bytes.empty());
  TempFile file;
  file.Write(bytes);
  avro_file_reader_t reader;
  ASSERT_EQ(avro_file_reader(file.path().c_str(), &reader), 0) << avro_strerror();
  avro_schema_t schema = avro_file_reader_get_writer_schema(reader);
  avro_value_iface_t* iface = avro_generic_class_from_schema(schema);
  avro_value_t record;
  ASSERT_EQ(avro_generic_value_new(iface, &record), 0);
  std::vector<std::string> ops;
  while (avro_file_reader_read_value(reader, &record) == 0) {
    avro_value_t op;
    const char* text = nullptr;
    size_t size = 0;
    ASSERT_EQ(avro_value_get_by_name(&record, "__op", &op, nullptr), 0);
    ASSERT_EQ(avro_value_get_string(&op, &text, &size), 0);
    ops.emplace_back(text, size - 1);  // Avro C counts the terminating NUL
    avro_value_reset(&record);
  }
  avro_value_decref(&record);
  avro_value_iface_decref(iface);
  avro_schema_decref(schema);
  avro_file_reader_close(reader);
  EXPECT_EQ(ops, (std::vector<std::string>{"insert", "update", "delete"}));
}

TEST(AvroCodecTest, RejectsUnknownCompression) {
  auto encoder = MakeEncoder(WireFormat::kAvro, {.compression = "brotli"});
  ASSERT_FALSE(encoder.ok());
  EXPECT_EQ(encoder.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(encoder.status().message().find("brotli"), std::string::npos);
}

cdc::RelationChanges SingleColumn(const std::shared_ptr<arrow::Field>& column,
                                  const std::shared_ptr<arrow::Array>& values) {
  cdc::RelationDescription relation{
      .relation_id = Oid(7), .schema = "public", .table = "t", .columns = {column}};
  auto schema = cdc::MakeChangeSchema(relation);
  const int64_t n = values->length();
  arrow::ArrayVector columns;
  for (int i = 0; i < cdc::kMetadataColumnCount; ++i) {
    const auto& f = schema->field(i);
    if (f->name() == cdc::kOpColumn) {
      auto b = arrow::StringBuilder();
      for (int64_t r = 0; r < n; ++r) EXPECT_TRUE(b.Append("insert").ok());
      columns.push_back(*b.Finish());
    } else if (f->name() == cdc::kUnchangedColumn) {
      auto b = arrow::ListBuilder(arrow::default_memory_pool(),
                                  std::make_shared<arrow::StringBuilder>(), f->type());
      for (int64_t r = 0; r < n; ++r) EXPECT_TRUE(b.Append().ok());
      columns.push_back(*b.Finish());
    } else if (f->nullable()) {
      columns.push_back(*arrow::MakeArrayOfNull(f->type(), n));
    } else {  // the non-null integers: __lsn, __commit_lsn, __xid, __seq
      std::string ones = "[";
      for (int64_t r = 0; r < n; ++r) ones += r == 0 ? "1" : ",1";
      columns.push_back(FromJson(f->type(), ones + "]"));
    }
  }
  columns.push_back(values);
  cdc::RelationChanges changes;
  changes.schema = "public";
  changes.table = "t";
  changes.records = arrow::RecordBatch::Make(schema, n, columns);
  return changes;
}

TEST(AvroCodecTest, UnsupportedTypeNamesColumnAndType) {
  auto encoder = MakeEncoder(WireFormat::kAvro);
  ASSERT_TRUE(encoder.ok());
  const auto large_list = arrow::large_list(arrow::int32());
  std::string out;
  absl::Status s = (*encoder)->Encode(
      SingleColumn(arrow::field("tags", large_list), FromJson(large_list, "[[1], null]")), &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("tags"), std::string::npos) << s;
  EXPECT_NE(s.message().find("large_list"), std::string::npos) << s;
  EXPECT_TRUE(out.empty());

  const auto dict = arrow::dictionary(arrow::int8(), arrow::utf8());
  auto dict_values = arrow::DictionaryArray::FromArrays(dict, FromJson(arrow::int8(), "[0, 1]"),
                                                        FromJson(arrow::utf8(), R"(["a","b"])"));
  ASSERT_TRUE(dict_values.ok());
  s = (*encoder)->Encode(SingleColumn(arrow::field("mood", dict), *dict_values), &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("mood"), std::string::npos) << s;
  EXPECT_NE(s.message().find("dictionary"), std::string::npos) << s;
}

// A value larger than the default Avro block must not fail: the file gets a larger block.
TEST(AvroCodecTest, LargeValueRoundTrips) {
  const std::string big(3 * 1024 * 1024 + 17, 'x');
  auto b = arrow::StringBuilder();
  ASSERT_TRUE(b.Append(big).ok());
  ASSERT_TRUE(b.Append("small").ok());
  auto changes = SingleColumn(arrow::field("doc", arrow::utf8()), *b.Finish());
  const json got = ReadWithFastavro(Encode(changes, "deflate"));
  ASSERT_EQ(got["records"].size(), 2u);
  EXPECT_EQ(got["records"][0]["doc"], big);
  EXPECT_EQ(got["records"][1]["doc"], "small");
}

TEST(AvroCodecTest, UInt64AboveLongRangeIsAnError) {
  const auto values = FromJson(arrow::uint64(), "[18446744073709551615]");
  auto encoder = MakeEncoder(WireFormat::kAvro);
  ASSERT_TRUE(encoder.ok());
  std::string out;
  absl::Status s =
      (*encoder)->Encode(SingleColumn(arrow::field("u", arrow::uint64()), values), &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("18446744073709551615"), std::string::npos) << s;
}

}  // namespace
}  // namespace ductstream::codec
