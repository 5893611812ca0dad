// Encoder tests: each wire format encodes the sample change records (testing_batches.h), the
// result is written to a file and read back by an independent reader (pyarrow, Python's json
// module, the protobuf runtime; tests/readers/read_change_file.py), and every value is compared
// here against expectations written by hand or built from the plain C++ sample values.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include <arrow/api.h>
#include <arrow/io/memory.h>
#include <parquet/arrow/reader.h>
#include <parquet/file_reader.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ductstream/codec/codec.h"
#include "ductstream/codec/testing_batches.h"
#include "ductstream/testing/pg_sandbox.h"
#include "ductstream/testing/subprocess.h"

namespace ductstream::codec {
namespace {

using nlohmann::json;

// The json wire format's lines for the sample rows, written by hand: the rendering rules of
// row_json.h applied to the values in testing_batches.cc.
const std::vector<std::string> kExpectedLines = {
    // insert: plain values.
    R"({"op":"insert","schema":"public","table":"widgets","lsn":"16/B374D848",)"
    R"("commit_lsn":"16/B374D900","commit_ts":"2024-01-02T03:04:05.123456Z","xid":1000,"seq":0,)"
    R"("key":{"account":9007199254740993,"id":1},"before":null,"after":{"id":1,"small":-32768,)"
    R"("account":9007199254740993,"owner_oid":4294967295,"score":1.5,"flag":true,)"
    R"("price":"12.30","name":"plain","doc":{"a": [1, 2.5, null], "b": {"c": "x\"y"}},)"
    R"("blob":"AP8QYWJj","day":"2024-01-02","ts_tz":"2024-01-02T03:04:05.123456Z",)"
    R"("ts":"2024-01-02T03:04:05.000001","t":"12:34:56.789012",)"
    R"("span":{"months":1,"days":2,"nanoseconds":3000},"tags":[1,null,3],)"
    R"("uid":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},"unchanged":[]})",
    // insert: edge values (NaN, escapes, infinities, empty binary and list, NULL uuid).
    R"({"op":"insert","schema":"public","table":"widgets","lsn":"16/B374D850",)"
    R"("commit_lsn":"16/B374D900","commit_ts":"2024-01-02T03:04:05.123456Z","xid":1000,"seq":1,)"
    R"("key":{"account":-1,"id":2},"before":null,"after":{"id":2,"small":7,"account":-1,)"
    R"("owner_oid":0,"score":"NaN","flag":false,"price":"-0.05",)"
    R"("name":"quote\" back\\ ctl\u0001\t\n ü ✓ 😀","doc":"ü","blob":"","day":"infinity",)"
    R"("ts_tz":"-infinity","ts":"infinity","t":"00:00:00.000000",)"
    R"("span":{"months":-14,"days":-3,"nanoseconds":-1},"tags":[],"uid":null},"unchanged":[]})",
    // update changing the key: key-only before image, "name" unchanged TOAST (omitted), "uid"
    // NULL (null), "price" not representable (null, exact text in "exact").
    R"({"op":"update","schema":"public","table":"widgets","lsn":"16/B3750000",)"
    R"("commit_lsn":"16/B3750100","commit_ts":"2024-01-02T03:04:06.000000Z","xid":1001,"seq":0,)"
    R"("key":{"account":30,"id":3},"before":{"id":2,"account":-1},"after":{"id":3,"small":null,)"
    R"("account":30,"owner_oid":null,"score":"Infinity","flag":null,"price":null,"doc":null,)"
    R"("blob":null,"day":"-infinity","ts_tz":"1969-12-31T23:59:59.999999Z",)"
    R"("ts":"0001-01-01T00:00:00.000000","t":"23:59:59.999999","span":null,"tags":null,)"
    R"("uid":null},"unchanged":["name"],"exact":{"price":"NaN"}})",
    // delete: key from the before image.
    R"({"op":"delete","schema":"public","table":"widgets","lsn":"16/B3760000",)"
    R"("commit_lsn":"16/B3760100","commit_ts":"2024-01-02T03:04:07.000000Z","xid":1002,"seq":0,)"
    R"("key":{"account":30,"id":3},"before":{"id":3,"account":30},"after":null,"unchanged":[]})",
    // truncate: no row.
    R"({"op":"truncate","schema":"public","table":"widgets","lsn":"0/0",)"
    R"("commit_lsn":"16/B3770100","commit_ts":"2024-01-02T03:04:08.000000Z","xid":1003,"seq":0,)"
    R"("key":null,"before":null,"after":null,"unchanged":[]})",
    // load: no commit time.
    R"({"op":"load","schema":"public","table":"widgets","lsn":"0/0","commit_lsn":"16/B3780000",)"
    R"("commit_ts":null,"xid":0,"seq":5,"key":{"account":40,"id":4},"before":null,)"
    R"("after":{"id":4,"small":null,"account":40,"owner_oid":null,"score":"-Infinity",)"
    R"("flag":null,"price":"99999999.99","name":null,"doc":null,"blob":null,)"
    R"("day":"0001-01-01","ts_tz":null,"ts":null,"t":null,"span":null,"tags":[-7],)"
    R"("uid":null},"unchanged":[]})",
};

class CodecReadBackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("ds-codec-", ::getpid(), "-", info->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Encodes the sample changes, writes them to a file and returns the reader's summary.
  json EncodeAndRead(WireFormat format, const EncoderOptions& options = {},
                     std::string* encoded = nullptr) {
    auto encoder = MakeEncoder(format, options);
    EXPECT_TRUE(encoder.ok()) << encoder.status();
    if (!encoder.ok()) return json();
    EXPECT_EQ((*encoder)->format(), format);
    std::string bytes = "";
    const absl::Status status = (*encoder)->Encode(sample::MakeSampleChanges(), &bytes);
    EXPECT_TRUE(status.ok()) << status;
    if (!status.ok()) return json();
    const std::string path = (dir_ / absl::StrCat("changes.", FileExtension(format))).string();
    std::ofstream(path, std::ios::binary) << bytes;
    if (encoded != nullptr) *encoded = bytes;
    auto out = testing::RunCommand({testing::PythonBin(),
                                    testing::SourceDir() + "/tests/readers/read_change_file.py",
                                    std::string(WireFormatName(format)), path});
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok()) return json();
    EXPECT_EQ(out->exit_code, 0) << out->err;
    if (out->exit_code != 0) return json();
    return json::parse(out->out);
  }

  std::filesystem::path dir_;
};

TEST(WireFormatTest, ParsesNames) {
  EXPECT_EQ(*ParseWireFormat("Parquet"), WireFormat::kParquet);
  EXPECT_EQ(*ParseWireFormat("jsonl"), WireFormat::kJson);
  EXPECT_FALSE(ParseWireFormat("csv").ok());
}

// ---------------------------------------------------------------------------------------------
// json

TEST_F(CodecReadBackTest, JsonLinesAreExactlyTheExpectedText) {
  std::string encoded;
  const json got = EncodeAndRead(WireFormat::kJson, {}, &encoded);
  ASSERT_FALSE(got.is_null());
  std::vector<std::string> lines = absl::StrSplit(encoded, '\n');
  ASSERT_EQ(lines.back(), "");  // every line, the last included, ends in "\n"
  lines.pop_back();
  ASSERT_EQ(lines.size(), kExpectedLines.size());
  for (size_t i = 0; i < lines.size(); ++i) EXPECT_EQ(lines[i], kExpectedLines[i]) << "line " << i;
}

TEST_F(CodecReadBackTest, JsonReadBackByPythonJson) {
  const json got = EncodeAndRead(WireFormat::kJson);
  ASSERT_FALSE(got.is_null());
  ASSERT_EQ(got["lines"].size(), kExpectedLines.size());
  for (size_t i = 0; i < kExpectedLines.size(); ++i) {
    EXPECT_EQ(got["lines"][i], json::parse(kExpectedLines[i])) << "line " << i;
  }
  // Python's view of the distinctions that matter: unchanged is absent, NULL is null.
  const json& update_after = got["lines"][2]["after"];
  EXPECT_FALSE(update_after.contains("name"));
  ASSERT_TRUE(update_after.contains("uid"));
  EXPECT_TRUE(update_after["uid"].is_null());
  EXPECT_EQ(got["lines"][0]["after"]["account"].get<int64_t>(), 9007199254740993);
  EXPECT_EQ(got["lines"][1]["after"]["name"],
            "quote\" back\\ ctl\x01\t\n \xc3\xbc \xe2\x9c\x93 \xf0\x9f\x98\x80");
}

// ---------------------------------------------------------------------------------------------
// proto

TEST_F(CodecReadBackTest, ProtoReadBackByPythonProtobuf) {
  const json got = EncodeAndRead(WireFormat::kProto);
  ASSERT_FALSE(got.is_null());
  EXPECT_EQ(got["wire_format"], "WIRE_FORMAT_PROTO");
  const json& schema = got["schema"];
  EXPECT_EQ(schema["name"], "widgets");
  EXPECT_EQ(schema["namespace"], "public");
  EXPECT_EQ(schema["version"], 1);
  EXPECT_EQ(schema["key_columns"], json({"id", "account"}));
  const std::vector<std::array<std::string, 3>> kColumns = {
      {"id", "integer", "int32"},
      {"small", "smallint", "int16"},
      {"account", "bigint", "int64"},
      {"owner_oid", "oid", "uint32"},
      {"score", "double precision", "double"},
      {"flag", "boolean", "bool"},
      {"price", "numeric", "decimal128(10, 2)"},
      {"name", "text", "string"},
      {"doc", "jsonb", "string"},
      {"blob", "bytea", "binary"},
      {"day", "date", "date32[day]"},
      {"ts_tz", "timestamp with time zone", "timestamp[us, tz=UTC]"},
      {"ts", "timestamp without time zone", "timestamp[us]"},
      {"t", "time without time zone", "time64[us]"},
      {"span", "interval", "month_day_nano_interval"},
      {"tags", "integer[]", "list<item: int32>"},
      {"uid", "uuid", "string"},
  };
  ASSERT_EQ(schema["columns"].size(), kColumns.size());
  for (size_t c = 0; c < kColumns.size(); ++c) {
    const json& column = schema["columns"][c];
    EXPECT_EQ(column["name"], kColumns[c][0]);
    EXPECT_EQ(column["type"], kColumns[c][1]) << kColumns[c][0];
    EXPECT_EQ(column["arrow_type"], kColumns[c][2]) << kColumns[c][0];
    EXPECT_EQ(column["nullable"], true);
  }

  const auto& data = sample::Data();
  const json& records = got["records"];
  ASSERT_EQ(records.size(), kExpectedLines.size());
  for (size_t i = 0; i < kExpectedLines.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("record ", i));
    const json expected = json::parse(kExpectedLines[i]);
    const json& r = records[i];
    EXPECT_EQ(r["table"], "widgets");
    EXPECT_EQ(r["operation"], expected["op"]);
    EXPECT_EQ(r["key"], expected["key"]);
    EXPECT_EQ(r["before"], expected["before"]);
    EXPECT_EQ(r["after"], expected["after"]);
    EXPECT_EQ(r["unchanged"], expected["unchanged"]);
    EXPECT_EQ(r["exact"], expected.value("exact", json::object()));
    EXPECT_EQ(r["lsn"], expected["lsn"]);
    EXPECT_EQ(r["commit_lsn"], expected["commit_lsn"]);
    EXPECT_EQ(r["xid"], expected["xid"]);
    EXPECT_EQ(r["seq"], expected["seq"]);
    EXPECT_EQ(r["schema_version"], 1);
    EXPECT_EQ(r["timestamp_unix_millis"],
              data.commit_ts[i] ? *data.commit_ts[i] / 1000 : int64_t{0});
  }
  // Keys are sorted in the bytes themselves, not only after parsing.
  EXPECT_EQ(records[0]["key_raw"], R"({"account":9007199254740993,"id":1})");
  EXPECT_EQ(records[3]["after_raw"], "null");
  EXPECT_EQ(records[4]["key_raw"], "null");
  EXPECT_EQ(got["checkpoint"]["lsn"], "16/B3780000");
}

// ---------------------------------------------------------------------------------------------
// arrow and parquet

std::string Hex(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

template <typename T, typename F>
json Expected(const sample::Column<T>& values, F convert) {
  json out = json::array();
  for (const auto& v : values) out.push_back(v ? json(convert(*v)) : json());
  return out;
}

json Same(auto v) { return json(v); }

json CanonFloat(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  return v;
}

// The reader's canonical columns (read_change_file.py) for the sample, from the plain values.
// Parquet carries intervals as struct<months, days, nanoseconds>.
json ExpectedColumns(bool interval_as_struct) {
  const auto& d = sample::Data();
  json c;
  c["__op"] = d.op;
  c["__lsn"] = d.lsn;
  c["__commit_lsn"] = d.commit_lsn;
  c["__commit_ts"] = Expected(d.commit_ts, Same<int64_t>);
  c["__xid"] = d.xid;
  c["__seq"] = d.seq;
  c["__unchanged"] = d.unchanged;
  c["__exact"] = json::array();
  for (const auto& entries : d.exact) {
    if (entries.empty()) {
      c["__exact"].push_back(nullptr);
      continue;
    }
    json pairs = json::array();
    for (const auto& [k, v] : entries) pairs.push_back({k, v});
    c["__exact"].push_back(pairs);
  }
  c["id"] = Expected(d.id, Same<int32_t>);
  c["small"] = Expected(d.small, Same<int16_t>);
  c["account"] = Expected(d.account, Same<int64_t>);
  c["owner_oid"] = Expected(d.owner_oid, Same<uint32_t>);
  c["score"] = Expected(d.score, CanonFloat);
  c["flag"] = Expected(d.flag, Same<bool>);
  c["price"] = Expected(d.price, Same<std::string>);
  c["name"] = Expected(d.name, Same<std::string>);
  c["doc"] = Expected(d.doc, Same<std::string>);
  c["blob"] = Expected(d.blob, Hex);
  c["day"] = Expected(d.day, Same<int32_t>);
  c["ts_tz"] = Expected(d.ts_tz, Same<int64_t>);
  c["ts"] = Expected(d.ts, Same<int64_t>);
  c["t"] = Expected(d.t, Same<int64_t>);
  c["span"] = Expected(d.span, [&](const sample::Interval& v) {
    return interval_as_struct
               ? json{{"months", v.months}, {"days", v.days}, {"nanoseconds", v.nanoseconds}}
               : json{v.months, v.days, v.nanoseconds};
  });
  c["tags"] = Expected(d.tags, [](const std::vector<std::optional<int32_t>>& v) {
    json out = json::array();
    for (const auto& e : v) out.push_back(e ? json(*e) : json());
    return out;
  });
  c["uid"] = Expected(d.uid, Same<std::string>);
  c["__before"] = json::array();
  for (const auto& key : d.before_key) {
    if (!key) {
      c["__before"].push_back(nullptr);
      continue;
    }
    json image;
    for (const auto& field : sample::DataFields()) image[field->name()] = nullptr;
    image["id"] = key->first;
    image["account"] = key->second;
    c["__before"].push_back(image);
  }
  return c;
}

json ExpectedFieldMetadata(const arrow::Field& field) {
  json out = json::object();
  const auto& md = field.metadata();
  for (int64_t i = 0; md != nullptr && i < md->size(); ++i) out[md->key(i)] = md->value(i);
  return out;
}

void ExpectArrowReadBack(const json& got, bool parquet) {
  EXPECT_EQ(got["num_rows"], 6);
  EXPECT_EQ(got["schema_metadata"], json({{"ductstream.schema", "public"},
                                          {"ductstream.table", "widgets"},
                                          {"ductstream.relation_id", "16384"},
                                          {"ductstream.replica_identity", "default"},
                                          {"ductstream.key", "id,account"}}));
  const std::map<std::string, std::string> kTypes = {
      {"__op", "string"},
      {"__lsn", "uint64"},
      {"__commit_lsn", "uint64"},
      {"__commit_ts", "timestamp[us, tz=UTC]"},
      {"__xid", "int64"},
      {"__seq", "int64"},
      {"__unchanged", "list<item: string not null>"},
      {"__exact", "map<string, string>"},
      {"id", "int32"},
      {"small", "int16"},
      {"account", "int64"},
      {"owner_oid", "uint32"},
      {"score", "double"},
      {"flag", "bool"},
      {"price", "decimal128(10, 2)"},
      {"name", "string"},
      {"doc", "string"},
      {"blob", "binary"},
      {"day", "date32[day]"},
      {"ts_tz", "timestamp[us, tz=UTC]"},
      {"ts", "timestamp[us]"},
      {"t", "time64[us]"},
      {"span", parquet ? "struct<months: int32 not null, days: int32 not null, nanoseconds: "
                         "int64 not null>"
                       : "month_day_nano_interval"},
      {"tags", "list<item: int32>"},
      {"uid", "string"},
  };
  const auto changes = sample::MakeSampleChanges();
  const auto& schema = *changes.records->schema();
  ASSERT_EQ(got["fields"].size(), static_cast<size_t>(schema.num_fields()));
  for (int f = 0; f < schema.num_fields(); ++f) {
    const json& field = got["fields"][f];
    const auto& expected = *schema.field(f);
    SCOPED_TRACE(expected.name());
    EXPECT_EQ(field["name"], expected.name());
    EXPECT_EQ(field["nullable"], expected.nullable());
    json metadata = ExpectedFieldMetadata(expected);
    if (parquet && expected.name() == "span") {
      metadata["ductstream.arrow_type"] = "month_day_nano_interval";
    }
    EXPECT_EQ(field["metadata"], metadata);
    if (expected.name() == "__before") {
      // The before image's fields keep their types and PostgreSQL metadata too.
      const auto data_fields = sample::DataFields();
      ASSERT_EQ(field["children"].size(), data_fields.size());
      for (size_t c = 0; c < data_fields.size(); ++c) {
        EXPECT_EQ(field["children"][c]["name"], data_fields[c]->name());
        EXPECT_EQ(field["children"][c]["type"], kTypes.at(data_fields[c]->name()));
        json child_metadata = ExpectedFieldMetadata(*data_fields[c]);
        if (parquet && data_fields[c]->name() == "span") {
          child_metadata["ductstream.arrow_type"] = "month_day_nano_interval";
        }
        EXPECT_EQ(field["children"][c]["metadata"], child_metadata);
      }
    } else {
      EXPECT_EQ(field["type"], kTypes.at(expected.name()));
    }
  }
  const json expected = ExpectedColumns(/*interval_as_struct=*/parquet);
  ASSERT_EQ(got["columns"].size(), expected.size());
  for (const auto& [name, values] : expected.items()) {
    EXPECT_EQ(got["columns"][name], values) << "column " << name;
  }
}

TEST_F(CodecReadBackTest, ArrowStreamReadBackByPyarrow) {
  const json got = EncodeAndRead(WireFormat::kArrow);
  ASSERT_FALSE(got.is_null());
  ExpectArrowReadBack(got, /*parquet=*/false);
}

TEST_F(CodecReadBackTest, ParquetReadBackByPyarrowWithEachCompression) {
  const std::vector<std::pair<std::string, std::string>> kCompressions = {
      {"", "SNAPPY"},   {"snappy", "SNAPPY"}, {"zstd", "ZSTD"},
      {"gzip", "GZIP"}, {"lz4", "LZ4"},       {"none", "UNCOMPRESSED"},
  };
  for (const auto& [option, codec] : kCompressions) {
    SCOPED_TRACE(absl::StrCat("compression \"", option, "\""));
    const json got = EncodeAndRead(WireFormat::kParquet, EncoderOptions{.compression = option});
    ASSERT_FALSE(got.is_null());
    EXPECT_EQ(got["row_groups"], 1);
    EXPECT_EQ(got["compression"], json::array({codec}));
    ExpectArrowReadBack(got, /*parquet=*/true);
  }
}

TEST(ParquetCodecTest, UnknownCompressionIsInvalidArgument) {
  auto encoder = MakeEncoder(WireFormat::kParquet, EncoderOptions{.compression = "brotli2"});
  ASSERT_FALSE(encoder.ok());
  EXPECT_EQ(encoder.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(encoder.status().message().find("brotli2"), std::string::npos);
  EXPECT_TRUE(MakeEncoder(WireFormat::kParquet, EncoderOptions{.compression = "ZSTD"}).ok());
}

// Columns whose values repeat are dictionary-encoded, nearly unique ones (keys, LSNs,
// timestamps) are written plain: judged per column from a sample of the batch, in a large batch
// (sampled) and a small one (every row looked at). Read back by Arrow's Parquet reader.
TEST(ParquetCodecTest, DictionaryOnlyForColumnsWhoseValuesRepeat) {
  for (int64_t rows : {int64_t{100}, int64_t{5000}}) {
    SCOPED_TRACE(absl::StrCat(rows, " rows"));
    arrow::Int64Builder id;
    arrow::StringBuilder status;
    arrow::StringBuilder note;
    arrow::DoubleBuilder amount;
    for (int64_t i = 0; i < rows; ++i) {
      ASSERT_TRUE(id.Append(i * 7919).ok());
      ASSERT_TRUE(status.Append(std::vector<std::string>{"new", "paid", "shipped"}[i % 3]).ok());
      ASSERT_TRUE(note.Append(absl::StrCat("note ", i)).ok());
      ASSERT_TRUE((i % 10 == 0 ? amount.AppendNull() : amount.Append((i % 7) * 1.5)).ok());
    }
    auto schema = arrow::schema(
        {arrow::field("id", arrow::int64()), arrow::field("status", arrow::utf8()),
         arrow::field("note", arrow::utf8()), arrow::field("amount", arrow::float64())});
    cdc::RelationChanges changes;
    changes.schema = "public";
    changes.table = "t";
    changes.records = arrow::RecordBatch::Make(
        schema, rows, {*id.Finish(), *status.Finish(), *note.Finish(), *amount.Finish()});
    auto encoder = MakeEncoder(WireFormat::kParquet);
    ASSERT_TRUE(encoder.ok());
    std::string file;
    ASSERT_TRUE((*encoder)->Encode(changes, &file).ok());

    auto input = std::make_shared<arrow::io::BufferReader>(arrow::Buffer::FromString(file));
    auto metadata = parquet::ParquetFileReader::Open(input)->metadata();
    ASSERT_EQ(metadata->num_row_groups(), 1);
    std::map<std::string, bool> dictionary;
    for (int i = 0; i < metadata->num_columns(); ++i) {
      auto chunk = metadata->RowGroup(0)->ColumnChunk(i);
      dictionary[chunk->path_in_schema()->ToDotString()] = chunk->has_dictionary_page();
    }
    EXPECT_EQ(dictionary, (std::map<std::string, bool>{
                              {"id", false}, {"status", true}, {"note", false}, {"amount", true}}));

    auto reader = parquet::arrow::OpenFile(input, arrow::default_memory_pool());
    ASSERT_TRUE(reader.ok()) << reader.status();
    auto table = (*reader)->ReadTable();
    ASSERT_TRUE(table.ok()) << table.status();
    auto expected = arrow::Table::FromRecordBatches({changes.records});
    ASSERT_TRUE(expected.ok());
    EXPECT_TRUE((*table)->Equals(**expected));
  }
}

TEST(CodecTest, EncodeAppendsToOutput) {
  for (WireFormat format :
       {WireFormat::kArrow, WireFormat::kParquet, WireFormat::kProto, WireFormat::kJson}) {
    auto encoder = MakeEncoder(format);
    ASSERT_TRUE(encoder.ok()) << encoder.status();
    std::string out = "prefix";
    ASSERT_TRUE((*encoder)->Encode(sample::MakeSampleChanges(), &out).ok());
    EXPECT_EQ(out.substr(0, 6), "prefix") << WireFormatName(format);
    EXPECT_GT(out.size(), 6u);
  }
}

TEST(CodecTest, MissingRecordsIsAnError) {
  for (WireFormat format :
       {WireFormat::kArrow, WireFormat::kParquet, WireFormat::kProto, WireFormat::kJson}) {
    auto encoder = MakeEncoder(format);
    ASSERT_TRUE(encoder.ok());
    std::string out;
    EXPECT_FALSE((*encoder)->Encode(cdc::RelationChanges{}, &out).ok());
  }
}

}  // namespace
}  // namespace ductstream::codec
