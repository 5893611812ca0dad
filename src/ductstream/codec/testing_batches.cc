#include "ductstream/codec/testing_batches.h"

#include <cmath>
#include <limits>

#include <arrow/util/decimal.h>
#include <arrow/util/key_value_metadata.h>

#include "absl/strings/str_cat.h"
#include "ductstream/base/check.h"

namespace ductstream::codec::sample {
namespace {

constexpr int32_t kDateInfinity = std::numeric_limits<int32_t>::max();
constexpr int32_t kDateMinusInfinity = std::numeric_limits<int32_t>::min();
constexpr int64_t kTsInfinity = std::numeric_limits<int64_t>::max();
constexpr int64_t kTsMinusInfinity = std::numeric_limits<int64_t>::min();
constexpr std::nullopt_t N = std::nullopt;

SampleData MakeData() {
  SampleData d;
  d.op = {"insert", "insert", "update", "delete", "truncate", "load"};
  d.lsn = {0x16B374D848, 0x16B374D850, 0x16B3750000, 0x16B3760000, 0, 0};
  d.commit_lsn = {0x16B374D900, 0x16B374D900, 0x16B3750100,
                  0x16B3760100, 0x16B3770100, 0x16B3780000};
  d.commit_ts = {1704164645123456, 1704164645123456, 1704164646000000,
                 1704164647000000, 1704164648000000, N};
  d.xid = {1000, 1000, 1001, 1002, 1003, 0};
  d.seq = {0, 1, 0, 0, 0, 5};
  d.unchanged = {{}, {}, {"name"}, {}, {}, {}};
  d.exact = {{}, {}, {{"price", "NaN"}}, {}, {}, {}};
  d.before_key = {N, N, std::make_pair(2, -1), std::make_pair(3, 30), N, N};

  d.id = {1, 2, 3, N, N, 4};
  d.small = {-32768, 7, N, N, N, N};
  d.account = {9007199254740993, -1, 30, N, N, 40};  // 2^53 + 1: not exact as a double
  d.owner_oid = {4294967295u, 0u, N, N, N, N};
  d.score = {1.5, std::nan(""), INFINITY, N, N, -INFINITY};
  d.flag = {true, false, N, N, N, N};
  d.price = {"12.30", "-0.05", N, N, N, "99999999.99"};
  d.name = {"plain", "quote\" back\\ ctl\x01\t\n \xc3\xbc \xe2\x9c\x93 \xf0\x9f\x98\x80", N, N, N,
            N};
  d.doc = {R"({"a": [1, 2.5, null], "b": {"c": "x\"y"}})", "\"\xc3\xbc\"", N, N, N, N};
  d.blob = {std::string("\x00\xff\x10"
                        "abc",
                        6),
            "",
            N,
            N,
            N,
            N};
  d.day = {19724, kDateInfinity, kDateMinusInfinity, N, N, -719162};
  d.ts_tz = {1704164645123456, kTsMinusInfinity, -1, N, N, N};
  d.ts = {1704164645000001, kTsInfinity, -62135596800000000, N, N, N};
  d.t = {45296789012, 0, 86399999999, N, N, N};
  d.span = {Interval{1, 2, 3000}, Interval{-14, -3, -1}, N, N, N, N};
  d.tags = {
      std::vector<std::optional<int32_t>>{1, N, 3}, std::vector<std::optional<int32_t>>{}, N, N, N,
      std::vector<std::optional<int32_t>>{-7}};
  d.uid = {"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", N, N, N, N, N};
  return d;
}

std::shared_ptr<arrow::Field> PgField(const std::string& name,
                                      std::shared_ptr<arrow::DataType> type, int oid,
                                      int typmod = -1) {
  return arrow::field(name, std::move(type), true,
                      arrow::key_value_metadata({cdc::kMetaPgTypeOid, cdc::kMetaPgTypmod},
                                                {absl::StrCat(oid), absl::StrCat(typmod)}));
}

void Check(const arrow::Status& status) { DS_CHECK_OK(status); }

template <typename T>
std::shared_ptr<T> Finish(arrow::ArrayBuilder& builder) {
  auto array = builder.Finish();
  DS_CHECK_OK(array.status());
  return std::static_pointer_cast<T>(*array);
}

// Appends `values` with a builder whose Append takes T.
template <typename Builder, typename T>
std::shared_ptr<arrow::Array> Build(Builder&& builder, const Column<T>& values) {
  for (const auto& v : values) Check(v ? builder.Append(*v) : builder.AppendNull());
  return Finish<arrow::Array>(builder);
}

}  // namespace

const SampleData& Data() {
  static const SampleData* const data = new SampleData(MakeData());
  return *data;
}

std::vector<std::shared_ptr<arrow::Field>> DataFields() {
  return {
      PgField("id", arrow::int32(), 23),
      PgField("small", arrow::int16(), 21),
      PgField("account", arrow::int64(), 20),
      PgField("owner_oid", arrow::uint32(), 26),
      PgField("score", arrow::float64(), 701),
      PgField("flag", arrow::boolean(), 16),
      PgField("price", arrow::decimal128(10, 2), 1700, (10 << 16 | 2) + 4),
      PgField("name", arrow::utf8(), 25),
      PgField("doc", arrow::utf8(), 3802),
      PgField("blob", arrow::binary(), 17),
      PgField("day", arrow::date32(), 1082),
      PgField("ts_tz", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), 1184),
      PgField("ts", arrow::timestamp(arrow::TimeUnit::MICRO), 1114),
      PgField("t", arrow::time64(arrow::TimeUnit::MICRO), 1083),
      PgField("span", arrow::month_day_nano_interval(), 1186),
      PgField("tags", arrow::list(arrow::int32()), 1007),
      PgField("uid", arrow::utf8(), 2950),
  };
}

cdc::RelationChanges MakeSampleChanges() {
  const SampleData& d = Data();
  const int64_t rows = static_cast<int64_t>(d.op.size());
  auto* pool = arrow::default_memory_pool();

  cdc::RelationDescription relation;
  relation.relation_id = Oid(16384);
  relation.schema = "public";
  relation.table = "widgets";
  relation.replica_identity = 'd';
  relation.columns = DataFields();
  relation.key_columns = {"id", "account"};
  auto schema = cdc::MakeChangeSchema(relation);

  // Metadata columns.
  arrow::StringBuilder op;
  for (const auto& v : d.op) Check(op.Append(v));
  arrow::UInt64Builder lsn;
  arrow::UInt64Builder commit_lsn;
  for (int64_t r = 0; r < rows; ++r) {
    Check(lsn.Append(d.lsn[r]));
    Check(commit_lsn.Append(d.commit_lsn[r]));
  }
  arrow::TimestampBuilder commit_ts(schema->GetFieldByName(cdc::kCommitTsColumn)->type(), pool);
  arrow::Int64Builder xid;
  arrow::Int64Builder seq;
  for (int64_t r = 0; r < rows; ++r) {
    Check(xid.Append(d.xid[r]));
    Check(seq.Append(d.seq[r]));
  }
  std::unique_ptr<arrow::ArrayBuilder> unchanged_builder;
  Check(arrow::MakeBuilder(pool, schema->GetFieldByName(cdc::kUnchangedColumn)->type(),
                           &unchanged_builder));
  auto& unchanged = static_cast<arrow::ListBuilder&>(*unchanged_builder);
  auto& unchanged_values = static_cast<arrow::StringBuilder&>(*unchanged.value_builder());
  std::unique_ptr<arrow::ArrayBuilder> exact_builder;
  Check(
      arrow::MakeBuilder(pool, schema->GetFieldByName(cdc::kExactColumn)->type(), &exact_builder));
  auto& exact = static_cast<arrow::MapBuilder&>(*exact_builder);
  auto& exact_keys = static_cast<arrow::StringBuilder&>(*exact.key_builder());
  auto& exact_items = static_cast<arrow::StringBuilder&>(*exact.item_builder());
  std::unique_ptr<arrow::ArrayBuilder> before_builder;
  Check(arrow::MakeBuilder(pool, schema->GetFieldByName(cdc::kBeforeColumn)->type(),
                           &before_builder));
  auto& before = static_cast<arrow::StructBuilder&>(*before_builder);
  for (int64_t r = 0; r < rows; ++r) {
    Check(unchanged.Append());
    for (const auto& name : d.unchanged[r]) Check(unchanged_values.Append(name));
    if (d.exact[r].empty()) {
      Check(exact.AppendNull());
    } else {
      Check(exact.Append());
      for (const auto& [k, v] : d.exact[r]) {
        Check(exact_keys.Append(k));
        Check(exact_items.Append(v));
      }
    }
    if (!d.before_key[r]) {
      Check(before.AppendNull());
      continue;
    }
    // Replica identity default: only the identity columns are filled.
    Check(before.Append());
    const auto before_type = before.type();
    for (int f = 0; f < before.num_fields(); ++f) {
      const std::string name = before_type->field(f)->name();
      auto* child = before.field_builder(f);
      if (name == "id") {
        Check(static_cast<arrow::Int32Builder*>(child)->Append(d.before_key[r]->first));
      } else if (name == "account") {
        Check(static_cast<arrow::Int64Builder*>(child)->Append(d.before_key[r]->second));
      } else {
        Check(child->AppendNull());
      }
    }
  }

  // Data columns.
  arrow::Decimal128Builder price(arrow::decimal128(10, 2), pool);
  for (const auto& v : d.price) {
    if (v) {
      auto decimal = arrow::Decimal128::FromString(*v);
      DS_CHECK_OK(decimal.status());
      Check(price.Append(*decimal));
    } else {
      Check(price.AppendNull());
    }
  }
  arrow::MonthDayNanoIntervalBuilder span;
  for (const auto& v : d.span) {
    Check(v ? span.Append({v->months, v->days, v->nanoseconds}) : span.AppendNull());
  }
  arrow::ListBuilder tags(pool, std::make_shared<arrow::Int32Builder>());
  auto& tag_values = static_cast<arrow::Int32Builder&>(*tags.value_builder());
  for (const auto& v : d.tags) {
    if (!v) {
      Check(tags.AppendNull());
      continue;
    }
    Check(tags.Append());
    for (const auto& e : *v) Check(e ? tag_values.Append(*e) : tag_values.AppendNull());
  }

  arrow::ArrayVector columns = {
      Finish<arrow::Array>(op),
      Finish<arrow::Array>(lsn),
      Finish<arrow::Array>(commit_lsn),
      Build(std::move(commit_ts), d.commit_ts),
      Finish<arrow::Array>(xid),
      Finish<arrow::Array>(seq),
      Finish<arrow::Array>(unchanged),
      Finish<arrow::Array>(before),
      Finish<arrow::Array>(exact),
      Build(arrow::Int32Builder(), d.id),
      Build(arrow::Int16Builder(), d.small),
      Build(arrow::Int64Builder(), d.account),
      Build(arrow::UInt32Builder(), d.owner_oid),
      Build(arrow::DoubleBuilder(), d.score),
      Build(arrow::BooleanBuilder(), d.flag),
      Finish<arrow::Array>(price),
      Build(arrow::StringBuilder(), d.name),
      Build(arrow::StringBuilder(), d.doc),
      Build(arrow::BinaryBuilder(), d.blob),
      Build(arrow::Date32Builder(), d.day),
      Build(arrow::TimestampBuilder(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), pool),
            d.ts_tz),
      Build(arrow::TimestampBuilder(arrow::timestamp(arrow::TimeUnit::MICRO), pool), d.ts),
      Build(arrow::Time64Builder(arrow::time64(arrow::TimeUnit::MICRO), pool), d.t),
      Finish<arrow::Array>(span),
      Finish<arrow::Array>(tags),
      Build(arrow::StringBuilder(), d.uid),
  };

  cdc::RelationChanges changes;
  changes.relation_id = relation.relation_id;
  changes.schema = relation.schema;
  changes.table = relation.table;
  changes.key_columns = relation.key_columns;
  changes.records = arrow::RecordBatch::Make(schema, rows, std::move(columns));
  const auto valid = changes.records->ValidateFull();
  DS_CHECK_OK(valid);
  changes.first_commit_lsn = Lsn(d.commit_lsn[0]);
  changes.first_seq = d.seq[0];
  return changes;
}

}  // namespace ductstream::codec::sample
