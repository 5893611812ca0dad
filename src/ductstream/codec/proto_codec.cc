// The proto wire format: one serialized ductstream.v1.Batch (proto/ductstream/v1/data.proto) per
// relation's change records. Row images travel as JSON bytes rendered by RowJsonRenderer, so
// their value rules are the json format's (row_json.h).
#include <arrow/util/key_value_metadata.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ductstream/codec/encoders.h"
#include "ductstream/codec/row_json.h"
#include "ductstream/v1/data.pb.h"

namespace ductstream::codec::internal {
namespace {

// format_type() names of common builtin types, by oid; other types are described by their Arrow
// type (enums, domains and composites need the catalog, which the encoder does not have).
struct BuiltinType {
  int64_t oid;
  const char* name;
};
constexpr BuiltinType kBuiltinTypes[] = {
    {16, "boolean"},
    {17, "bytea"},
    {18, "\"char\""},
    {19, "name"},
    {20, "bigint"},
    {21, "smallint"},
    {23, "integer"},
    {25, "text"},
    {26, "oid"},
    {114, "json"},
    {142, "xml"},
    {199, "json[]"},
    {650, "cidr"},
    {700, "real"},
    {701, "double precision"},
    {790, "money"},
    {829, "macaddr"},
    {869, "inet"},
    {1000, "boolean[]"},
    {1001, "bytea[]"},
    {1005, "smallint[]"},
    {1007, "integer[]"},
    {1009, "text[]"},
    {1014, "character[]"},
    {1015, "character varying[]"},
    {1016, "bigint[]"},
    {1021, "real[]"},
    {1022, "double precision[]"},
    {1042, "character"},
    {1043, "character varying"},
    {1082, "date"},
    {1083, "time without time zone"},
    {1114, "timestamp without time zone"},
    {1115, "timestamp without time zone[]"},
    {1182, "date[]"},
    {1183, "time without time zone[]"},
    {1184, "timestamp with time zone"},
    {1185, "timestamp with time zone[]"},
    {1186, "interval"},
    {1187, "interval[]"},
    {1231, "numeric[]"},
    {1266, "time with time zone"},
    {1560, "bit"},
    {1562, "bit varying"},
    {1700, "numeric"},
    {2950, "uuid"},
    {2951, "uuid[]"},
    {3220, "pg_lsn"},
    {3614, "tsvector"},
    {3802, "jsonb"},
    {3807, "jsonb[]"},
    {4072, "jsonpath"},
};

const char* BuiltinTypeName(int64_t oid) {
  for (const auto& t : kBuiltinTypes) {
    if (t.oid == oid) return t.name;
  }
  return nullptr;
}

std::string ColumnTypeName(const arrow::Field& field) {
  const auto& metadata = field.metadata();
  if (metadata != nullptr) {
    const int index = metadata->FindKey(cdc::kMetaPgTypeOid);
    int64_t oid = 0;
    if (index >= 0 && absl::SimpleAtoi(metadata->value(index), &oid)) {
      if (const char* name = BuiltinTypeName(oid)) return name;
    }
  }
  return field.type()->ToString();
}

int64_t FloorMillis(int64_t micros) {
  return micros >= 0 ? micros / 1000 : -((-(micros + 1)) / 1000) - 1;
}

class ProtoEncoder final : public Encoder {
 public:
  WireFormat format() const override { return WireFormat::kProto; }

  absl::Status Encode(const cdc::RelationChanges& changes, std::string* out) override {
    auto created = RowJsonRenderer::Create(changes);
    if (!created.ok()) {
      return absl::Status(created.status().code(),
                          absl::StrCat("encoding ", changes.QualifiedName(),
                                       " as proto: ", created.status().message()));
    }
    const RowJsonRenderer& r = **created;
    v1::Batch batch;
    v1::Schema* schema = batch.mutable_schema();
    schema->set_name(r.table_name());
    schema->set_namespace_(r.schema_name());
    schema->set_version(1);
    for (const auto& field : changes.records->schema()->fields()) {
      if (cdc::IsMetadataColumn(field->name())) continue;
      v1::SchemaColumn* column = schema->add_columns();
      column->set_name(field->name());
      column->set_type(ColumnTypeName(*field));
      column->set_nullable(true);
      column->set_arrow_type(field->type()->ToString());
    }
    for (const std::string& key : r.key_columns()) schema->add_key_columns(key);

    std::string json;
    for (int64_t row = 0; row < r.num_rows(); ++row) {
      v1::Record* record = batch.add_records();
      record->set_table(r.table_name());
      record->set_operation(std::string(r.op(row)));
      json.clear();
      r.AppendKey(row, &json);
      record->set_key(json);
      json.clear();
      r.AppendBefore(row, &json);
      record->set_before_json(json);
      json.clear();
      r.AppendAfter(row, &json);
      record->set_after_json(json);
      const auto ts = r.commit_ts_micros(row);
      if (ts.has_value()) record->set_timestamp_unix_millis(FloorMillis(*ts));
      record->set_schema_version(1);
      for (absl::string_view name : r.unchanged(row)) record->add_unchanged(std::string(name));
      record->set_lsn(r.lsn(row).ToString());
      record->set_commit_lsn(r.commit_lsn(row).ToString());
      record->set_xid(r.xid(row));
      record->set_seq(r.seq(row));
      for (const auto& [column, text] : r.exact(row)) {
        (*record->mutable_exact())[std::string(column)] = std::string(text);
      }
    }
    if (r.num_rows() > 0) {
      const int64_t last = r.num_rows() - 1;
      batch.mutable_checkpoint()->set_lsn(r.commit_lsn(last).ToString());
      const auto ts = r.commit_ts_micros(last);
      if (ts.has_value()) batch.mutable_checkpoint()->set_timestamp_unix_millis(FloorMillis(*ts));
    }
    batch.set_wire_format(v1::WIRE_FORMAT_PROTO);
    if (!batch.AppendToString(out)) {
      return absl::InternalError(
          absl::StrCat("encoding ", changes.QualifiedName(), " as proto: serialization failed"));
    }
    return absl::OkStatus();
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<Encoder>> MakeProtoEncoder(const EncoderOptions&) {
  return std::make_unique<ProtoEncoder>();
}

}  // namespace ductstream::codec::internal
