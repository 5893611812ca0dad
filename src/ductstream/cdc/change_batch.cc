#include "ductstream/cdc/change_batch.h"

#include <arrow/util/key_value_metadata.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ductstream::cdc {

absl::string_view OperationName(Operation op) {
  switch (op) {
    case Operation::kInsert:
      return "insert";
    case Operation::kUpdate:
      return "update";
    case Operation::kDelete:
      return "delete";
    case Operation::kTruncate:
      return "truncate";
    case Operation::kLoad:
      return "load";
  }
  return "unknown";
}

bool IsMetadataColumn(absl::string_view name) {
  return name == kOpColumn || name == kLsnColumn || name == kCommitLsnColumn ||
         name == kCommitTsColumn || name == kXidColumn || name == kSeqColumn ||
         name == kUnchangedColumn || name == kBeforeColumn || name == kExactColumn;
}

namespace {

absl::string_view IdentityName(char code) {
  switch (code) {
    case 'n':
      return "nothing";
    case 'f':
      return "full";
    case 'i':
      return "index";
    default:
      return "default";
  }
}

}  // namespace

std::shared_ptr<arrow::Schema> MakeChangeSchema(const RelationDescription& relation) {
  arrow::FieldVector data;
  data.reserve(relation.columns.size());
  for (const auto& f : relation.columns) data.push_back(f->WithNullable(true));

  arrow::FieldVector fields = {
      arrow::field(kOpColumn, arrow::utf8(), /*nullable=*/false),
      arrow::field(kLsnColumn, arrow::uint64(), false),
      arrow::field(kCommitLsnColumn, arrow::uint64(), false),
      arrow::field(kCommitTsColumn, arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), true),
      arrow::field(kXidColumn, arrow::int64(), false),
      arrow::field(kSeqColumn, arrow::int64(), false),
      arrow::field(kUnchangedColumn, arrow::list(arrow::field("item", arrow::utf8(), false)),
                   false),
      arrow::field(kBeforeColumn, arrow::struct_(data), true),
      arrow::field(kExactColumn, arrow::map(arrow::utf8(), arrow::utf8()), true),
  };
  fields.insert(fields.end(), data.begin(), data.end());

  auto metadata = arrow::key_value_metadata(
      {kMetaSchema, kMetaTable, kMetaRelationId, kMetaReplicaIdentity, kMetaKey},
      {relation.schema, relation.table, absl::StrCat(relation.relation_id.value()),
       std::string(IdentityName(relation.replica_identity)),
       absl::StrJoin(relation.key_columns, ",")});
  return arrow::schema(std::move(fields), std::move(metadata));
}

}  // namespace ductstream::cdc
