#include "ductstream/cdc/batch_builder.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include <arrow/buffer_builder.h>
#include <arrow/util/byte_size.h>
#include <arrow/util/key_value_metadata.h>

#include "absl/strings/str_cat.h"
#include "ductstream/base/logging.h"
#include "ductstream/base/status.h"

namespace ductstream::cdc {

namespace pgo = postgres::pgoutput;

namespace {

// Fixed per-row and per-cell costs added to the value bytes when estimating a batch's memory.
constexpr int64_t kRowOverhead = 48;
constexpr int64_t kCellOverhead = 4;

absl::Status ArrowError(const arrow::Status& s, absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", s.ToString()));
}

#define DS_ARROW_RETURN_IF_ERROR(expr, what)     \
  do {                                           \
    ::arrow::Status _st = (expr);                \
    if (!_st.ok()) return ArrowError(_st, what); \
  } while (0)

}  // namespace

// A finished relation batch waiting to be emitted, with what is needed to cut it at the start of
// the open transaction.
struct BatchBuilder::Part {
  RelationChanges changes;
  int64_t rows_at_txn_start = 0;  // rows before the open transaction's first row
  Lsn txn_first_commit_lsn;
  int64_t txn_first_seq = 0;
};

// Builders of one relation's change records under one schema.
class BatchBuilder::RelationBuilder {
 public:
  static absl::StatusOr<std::unique_ptr<RelationBuilder>> Make(const pgo::RelationMessage& msg,
                                                               const postgres::TypeLookup& lookup,
                                                               arrow::MemoryPool* pool) {
    auto rel = std::unique_ptr<RelationBuilder>(new RelationBuilder(msg, pool));
    RelationDescription desc;
    desc.relation_id = msg.relation_id;
    desc.schema = msg.schema;
    desc.table = msg.name;
    desc.replica_identity = static_cast<char>(msg.replica_identity);
    for (size_t i = 0; i < msg.columns.size(); ++i) {
      const auto& col = msg.columns[i];
      auto after = postgres::MakeColumnDecoder(col.type_oid, col.type_modifier, lookup, pool);
      if (!after.ok()) {
        return base::Annotate(after.status(),
                              absl::StrCat("column ", msg.schema, ".", msg.name, ".", col.name));
      }
      DS_ASSIGN_OR_RETURN(
          auto before, postgres::MakeColumnDecoder(col.type_oid, col.type_modifier, lookup, pool));
      desc.columns.push_back(
          arrow::field(col.name, (*after)->type(), true,
                       arrow::key_value_metadata(
                           {kMetaPgTypeOid, kMetaPgTypmod},
                           {absl::StrCat(col.type_oid.value()), absl::StrCat(col.type_modifier)})));
      if (col.is_key) {
        desc.key_columns.push_back(col.name);
        rel->key_indexes_.push_back(static_cast<int>(i));
      }
      rel->after_.push_back(std::move(*after));
      rel->before_.push_back(std::move(before));
    }
    rel->seen_after_.assign(msg.columns.size(), 0);
    rel->seen_before_.assign(msg.columns.size(), 0);
    rel->schema_ = MakeChangeSchema(desc);
    rel->key_columns_ = std::move(desc.key_columns);
    rel->before_type_ = rel->schema_->GetFieldByName(kBeforeColumn)->type();
    return rel;
  }

  /// True when `msg` describes the same record layout (names, types, identity).
  bool SameShape(const pgo::RelationMessage& msg) const {
    if (msg.schema != msg_.schema || msg.name != msg_.name ||
        msg.replica_identity != msg_.replica_identity ||
        msg.columns.size() != msg_.columns.size()) {
      return false;
    }
    for (size_t i = 0; i < msg.columns.size(); ++i) {
      const auto& a = msg.columns[i];
      const auto& b = msg_.columns[i];
      if (a.name != b.name || a.type_oid != b.type_oid || a.type_modifier != b.type_modifier ||
          a.is_key != b.is_key) {
        return false;
      }
    }
    return true;
  }

  const pgo::RelationMessage& message() const { return msg_; }
  int64_t rows() const { return rows_; }

  /// Appends one change. `before`/`after` may be null (no image). Adds its estimated size to
  /// `*bytes`.
  absl::Status Append(Operation op, Lsn lsn, Lsn commit_lsn, int64_t commit_ts, int64_t xid,
                      int64_t seq, int64_t txn_epoch, const std::vector<pgo::Cell>* before,
                      const std::vector<pgo::Cell>* after, int64_t* bytes) {
    const size_t ncols = after_.size();
    if ((after != nullptr && after->size() != ncols) ||
        (before != nullptr && before->size() != ncols)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tuple of ", msg_.schema, ".", msg_.name, " has ",
          after != nullptr ? after->size() : before->size(), " columns, its Relation message ",
          ncols, " (the relation changed without a new Relation message)"));
    }
    if (txn_epoch != txn_epoch_) {  // first row of this relation in the open transaction
      txn_epoch_ = txn_epoch;
      rows_at_txn_start_ = rows_;
      txn_first_commit_lsn_ = commit_lsn;
      txn_first_seq_ = seq;
    }
    if (rows_ == 0) {
      first_commit_lsn_ = commit_lsn;
      first_seq_ = seq;
      ReserveLikeLastBatch();
    }
    int64_t size = kRowOverhead;
    unchanged_.clear();

    DS_ARROW_RETURN_IF_ERROR(
        op_.Append(OperationName(op).data(), static_cast<int32_t>(OperationName(op).size())),
        "__op");
    DS_ARROW_RETURN_IF_ERROR(lsn_.Append(lsn.value()), "__lsn");
    DS_ARROW_RETURN_IF_ERROR(commit_lsn_.Append(commit_lsn.value()), "__commit_lsn");
    DS_ARROW_RETURN_IF_ERROR(commit_ts_.Append(commit_ts), "__commit_ts");
    DS_ARROW_RETURN_IF_ERROR(xid_.Append(xid), "__xid");
    DS_ARROW_RETURN_IF_ERROR(seq_.Append(seq), "__seq");

    // Before image (a struct of the same columns). Rows without one cost nothing until the
    // batch's first before image arrives (inserts-only batches then end as an all-null column
    // sharing one zeroed buffer, instead of a full set of null child arrays).
    if (before == nullptr) {
      ++before_pending_nulls_;
    } else {
      for (; before_pending_nulls_ > 0; --before_pending_nulls_) {
        DS_ARROW_RETURN_IF_ERROR(before_valid_.Append(false), "__before");
        for (auto& d : before_) DS_RETURN_IF_ERROR(d->AppendNull());
      }
      DS_ARROW_RETURN_IF_ERROR(before_valid_.Append(true), "__before");
      for (size_t c = 0; c < ncols; ++c) {
        DS_RETURN_IF_ERROR(AppendCell(*before_[c], (*before)[c], c, /*before=*/true, &size));
      }
    }
    for (size_t c = 0; c < ncols; ++c) {
      if (after == nullptr) {
        DS_RETURN_IF_ERROR(after_[c]->AppendNull());
        continue;
      }
      DS_RETURN_IF_ERROR(AppendCell(*after_[c], (*after)[c], c, /*before=*/false, &size));
    }

    // __unchanged
    DS_ARROW_RETURN_IF_ERROR(unchanged_list_.Append(), "__unchanged");
    auto* names = static_cast<arrow::StringBuilder*>(unchanged_list_.value_builder());
    for (const std::string& name : unchanged_) {
      DS_ARROW_RETURN_IF_ERROR(names->Append(name), "__unchanged");
    }

    // __exact: values the Arrow type could not hold, found in the decoders' side lists.
    bool any_exact = false;
    for (size_t c = 0; c < ncols && !any_exact; ++c) {
      any_exact = after_[c]->unrepresentable().size() > seen_after_[c] ||
                  before_[c]->unrepresentable().size() > seen_before_[c];
    }
    if (!any_exact) {
      DS_ARROW_RETURN_IF_ERROR(exact_.AppendNull(), "__exact");
    } else {
      DS_ARROW_RETURN_IF_ERROR(exact_.Append(), "__exact");
      auto* keys = static_cast<arrow::StringBuilder*>(exact_.key_builder());
      auto* items = static_cast<arrow::StringBuilder*>(exact_.item_builder());
      for (int pass = 0; pass < 2; ++pass) {
        auto& decoders = pass == 0 ? after_ : before_;
        auto& seen = pass == 0 ? seen_after_ : seen_before_;
        for (size_t c = 0; c < ncols; ++c) {
          const auto& list = decoders[c]->unrepresentable();
          for (; seen[c] < list.size(); ++seen[c]) {
            const std::string& name = msg_.columns[c].name;
            DS_ARROW_RETURN_IF_ERROR(
                keys->Append(pass == 0 ? name : absl::StrCat(kBeforeColumn, ".", name)), "__exact");
            DS_ARROW_RETURN_IF_ERROR(items->Append(list[seen[c]].text), "__exact");
          }
        }
      }
    }
    ++rows_;
    *bytes += size;
    return absl::OkStatus();
  }

  /// Finishes the record batch (empty when no rows) and resets for the next batch.
  /// `open_epoch` is the open transaction's epoch (or -2 when none is open): rows appended in
  /// it are the part's tail after rows_at_txn_start.
  absl::StatusOr<Part> Finish(int64_t open_epoch) {
    Part part;
    part.changes.relation_id = msg_.relation_id;
    part.changes.schema = msg_.schema;
    part.changes.table = msg_.name;
    part.changes.key_columns = key_columns_;
    part.changes.first_commit_lsn = first_commit_lsn_;
    part.changes.first_seq = first_seq_;
    part.rows_at_txn_start = txn_epoch_ == open_epoch ? rows_at_txn_start_ : rows_;
    part.txn_first_commit_lsn = txn_first_commit_lsn_;
    part.txn_first_seq = txn_first_seq_;

    arrow::ArrayVector columns;
    columns.reserve(schema_->num_fields());
    auto finish = [&](arrow::ArrayBuilder& b, absl::string_view what) -> absl::Status {
      std::shared_ptr<arrow::Array> array;
      DS_ARROW_RETURN_IF_ERROR(b.Finish(&array), what);
      columns.push_back(std::move(array));
      return absl::OkStatus();
    };
    DS_RETURN_IF_ERROR(finish(op_, kOpColumn));
    DS_RETURN_IF_ERROR(finish(lsn_, kLsnColumn));
    DS_RETURN_IF_ERROR(finish(commit_lsn_, kCommitLsnColumn));
    DS_RETURN_IF_ERROR(finish(commit_ts_, kCommitTsColumn));
    DS_RETURN_IF_ERROR(finish(xid_, kXidColumn));
    DS_RETURN_IF_ERROR(finish(seq_, kSeqColumn));
    DS_RETURN_IF_ERROR(finish(unchanged_list_, kUnchangedColumn));

    if (before_valid_.length() == 0) {
      // No before image in the whole batch.
      auto nulls = arrow::MakeArrayOfNull(before_type_, rows_);
      if (!nulls.ok()) return ArrowError(nulls.status(), "__before");
      columns.push_back(std::move(*nulls));
      for (auto& d : before_) DS_RETURN_IF_ERROR(d->Finish().status());  // reset (empty)
    } else {
      for (; before_pending_nulls_ > 0; --before_pending_nulls_) {
        DS_ARROW_RETURN_IF_ERROR(before_valid_.Append(false), "__before");
        for (auto& d : before_) DS_RETURN_IF_ERROR(d->AppendNull());
      }
      arrow::ArrayVector before_children;
      for (auto& d : before_) {
        DS_ASSIGN_OR_RETURN(auto child, d->Finish());
        before_children.push_back(std::move(child));
      }
      const int64_t null_count = before_valid_.false_count();
      std::shared_ptr<arrow::Buffer> validity;
      DS_ARROW_RETURN_IF_ERROR(before_valid_.Finish(&validity), "__before");
      columns.push_back(
          std::make_shared<arrow::StructArray>(before_type_, rows_, std::move(before_children),
                                               null_count > 0 ? validity : nullptr, null_count));
    }
    before_pending_nulls_ = 0;
    DS_RETURN_IF_ERROR(finish(exact_, kExactColumn));
    for (auto& d : after_) {
      DS_ASSIGN_OR_RETURN(auto array, d->Finish());
      columns.push_back(std::move(array));
    }
    part.changes.records = arrow::RecordBatch::Make(schema_, rows_, std::move(columns));
    last_rows_ = rows_;
    rows_ = 0;
    txn_epoch_ = kNoEpoch;
    std::fill(seen_after_.begin(), seen_after_.end(), 0);
    std::fill(seen_before_.begin(), seen_before_.end(), 0);
    return part;
  }

 private:
  static constexpr int64_t kNoEpoch = -1;

  RelationBuilder(const pgo::RelationMessage& msg, arrow::MemoryPool* pool)
      : msg_(msg),
        op_(pool),
        lsn_(pool),
        commit_lsn_(pool),
        commit_ts_(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), pool),
        xid_(pool),
        seq_(pool),
        unchanged_list_(pool, std::make_shared<arrow::StringBuilder>(pool),
                        arrow::list(arrow::field("item", arrow::utf8(), false))),
        before_valid_(pool),
        exact_(pool, std::make_shared<arrow::StringBuilder>(pool),
               std::make_shared<arrow::StringBuilder>(pool)) {}

  // Room for a batch like the last one (ColumnDecoder::ReserveLikeLastBatch): the per-row
  // columns here, each column's values in its decoders. Failures only mean growing as usual.
  void ReserveLikeLastBatch() {
    if (last_rows_ == 0) return;
    const int64_t rows = last_rows_ + last_rows_ / 8;
    (void)op_.Reserve(rows);
    (void)op_.ReserveData(rows * static_cast<int64_t>(OperationName(Operation::kUpdate).size()));
    (void)lsn_.Reserve(rows);
    (void)commit_lsn_.Reserve(rows);
    (void)commit_ts_.Reserve(rows);
    (void)xid_.Reserve(rows);
    (void)seq_.Reserve(rows);
    (void)unchanged_list_.Reserve(rows);
    (void)exact_.Reserve(rows);
    for (auto& d : after_) d->ReserveLikeLastBatch();
    for (auto& d : before_) d->ReserveLikeLastBatch();
  }

  absl::Status AppendCell(postgres::ColumnDecoder& decoder, const pgo::Cell& cell, size_t c,
                          bool before, int64_t* size) {
    *size += kCellOverhead;
    switch (cell.kind) {
      case pgo::CellKind::kNull:
        return decoder.AppendNull();
      case pgo::CellKind::kUnchangedToast:
        unchanged_.push_back(before ? absl::StrCat(kBeforeColumn, ".", msg_.columns[c].name)
                                    : msg_.columns[c].name);
        return decoder.AppendNull();
      case pgo::CellKind::kText:
        *size += static_cast<int64_t>(cell.data.size());
        return Annotated(decoder.AppendText(cell.data), c);
      case pgo::CellKind::kBinary:
        *size += static_cast<int64_t>(cell.data.size());
        return Annotated(decoder.AppendBinary(cell.data), c);
    }
    return absl::InternalError("unknown cell kind");
  }

  absl::Status Annotated(absl::Status s, size_t c) const {
    if (s.ok()) [[likely]]
      return s;
    return AnnotatedError(std::move(s), c);
  }
  [[gnu::noinline]] absl::Status AnnotatedError(absl::Status s, size_t c) const {
    return base::Annotate(
        s, absl::StrCat("column ", msg_.schema, ".", msg_.name, ".", msg_.columns[c].name));
  }

  pgo::RelationMessage msg_;
  std::shared_ptr<arrow::Schema> schema_;
  std::shared_ptr<arrow::DataType> before_type_;
  std::vector<std::string> key_columns_;
  std::vector<int> key_indexes_;
  std::vector<std::unique_ptr<postgres::ColumnDecoder>> after_;
  std::vector<std::unique_ptr<postgres::ColumnDecoder>> before_;
  std::vector<size_t> seen_after_, seen_before_;  // unrepresentable() entries already in __exact
  std::vector<std::string> unchanged_;            // scratch for the row being appended

  arrow::StringBuilder op_;
  arrow::UInt64Builder lsn_;
  arrow::UInt64Builder commit_lsn_;
  arrow::TimestampBuilder commit_ts_;
  arrow::Int64Builder xid_;
  arrow::Int64Builder seq_;
  arrow::ListBuilder unchanged_list_;
  arrow::TypedBufferBuilder<bool> before_valid_;
  int64_t before_pending_nulls_ = 0;  // rows without before image not yet appended above
  arrow::MapBuilder exact_;

  int64_t rows_ = 0;
  int64_t last_rows_ = 0;  // rows of the last finished batch
  Lsn first_commit_lsn_;
  int64_t first_seq_ = 0;
  int64_t txn_epoch_ = kNoEpoch;
  int64_t rows_at_txn_start_ = 0;
  Lsn txn_first_commit_lsn_;
  int64_t txn_first_seq_ = 0;
};

BatchBuilder::BatchBuilder(BuilderOptions options, postgres::TypeLookup lookup, BatchSink sink)
    : options_(options), lookup_(std::move(lookup)), sink_(std::move(sink)) {
  if (options_.toast_cache_bytes > 0) {
    toast_cache_ = std::make_unique<ToastCache>(options_.toast_cache_bytes);
  }
}

BatchBuilder::~BatchBuilder() = default;

bool BatchBuilder::has_pending() const {
  return batch_rows_ > 0 || !retired_.empty() || committed_end_ > emitted_checkpoint_;
}

absl::StatusOr<BatchBuilder::RelationBuilder*> BatchBuilder::Find(Oid relation_id,
                                                                  absl::string_view what) {
  auto it = relations_.find(relation_id.value());
  if (it == relations_.end()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " for relation ", relation_id.value(),
                                                   " arrived before its Relation message"));
  }
  if (!in_txn_) {
    return absl::InvalidArgumentError(absl::StrCat(what, " outside a transaction"));
  }
  return it->second.get();
}

absl::Status BatchBuilder::OnBegin(const pgo::BeginMessage& msg) {
  if (in_txn_) return absl::InvalidArgumentError("Begin inside an open transaction");
  in_txn_ = true;
  txn_commit_lsn_ = msg.final_lsn;
  txn_commit_ts_ = pgo::PgTimestampToUnixMicros(msg.commit_time);
  txn_xid_ = msg.xid.value();
  txn_seq_ = 0;
  txn_bytes_ = 0;
  txn_rows_ = 0;
  ++txn_epoch_;
  return absl::OkStatus();
}

absl::Status BatchBuilder::OnCommit(const pgo::CommitMessage& msg) {
  if (!in_txn_) return absl::InvalidArgumentError("Commit without Begin");
  in_txn_ = false;
  ++txn_epoch_;  // rows from here on belong to no open transaction
  if (msg.end_lsn > committed_end_) committed_end_ = msg.end_lsn;
  if (batch_rows_ >= options_.batch_rows || batch_bytes_ >= options_.max_batch_bytes) {
    return Flush();
  }
  return absl::OkStatus();
}

absl::Status BatchBuilder::OnOrigin(const pgo::OriginMessage&) { return absl::OkStatus(); }

absl::Status BatchBuilder::OnRelation(const pgo::RelationMessage& msg) {
  if (toast_cache_ != nullptr) toast_cache_->OnRelation(msg);  // forgets the rows of a new layout
  auto& slot = relations_[msg.relation_id.value()];
  if (slot && slot->SameShape(msg)) return absl::OkStatus();
  if (slot && slot->rows() > 0) {
    // The relation changed mid-batch: its rows so far keep their old schema as a separate part.
    DS_ASSIGN_OR_RETURN(Part part, slot->Finish(in_txn_ ? txn_epoch_ : -2));
    retired_.push_back(std::move(part));
  }
  if (msg.replica_identity == pgo::ReplicaIdentity::kNothing) {
    base::GetLogger("cdc")->warn(
        "table {}.{} has REPLICA IDENTITY NOTHING: PostgreSQL refuses its UPDATEs and DELETEs "
        "while it is published; set a primary key or REPLICA IDENTITY FULL",
        msg.schema, msg.name);
  }
  DS_ASSIGN_OR_RETURN(slot, RelationBuilder::Make(msg, lookup_, options_.pool));
  return absl::OkStatus();
}

absl::Status BatchBuilder::OnType(const pgo::TypeMessage&) {
  return absl::OkStatus();  // types are resolved from the catalog (TypeLookup)
}

absl::Status BatchBuilder::AfterRow(RelationBuilder&) {
  ++batch_rows_;
  ++txn_rows_;
  if (batch_bytes_ >= options_.max_batch_bytes && in_txn_) return CutInsideTransaction();
  return absl::OkStatus();
}

absl::Status BatchBuilder::OnInsert(const pgo::InsertMessage& msg) {
  DS_ASSIGN_OR_RETURN(RelationBuilder * rel, Find(msg.relation_id, "Insert"));
  const int64_t before = batch_bytes_;
  DS_RETURN_IF_ERROR(rel->Append(Operation::kInsert, message_lsn_, txn_commit_lsn_, txn_commit_ts_,
                                 txn_xid_, txn_seq_++, txn_epoch_, nullptr, &msg.new_tuple,
                                 &batch_bytes_));
  txn_bytes_ += batch_bytes_ - before;
  if (toast_cache_ != nullptr) toast_cache_->OnInsert(msg);
  return AfterRow(*rel);
}

absl::Status BatchBuilder::OnUpdate(const pgo::UpdateMessage& msg) {
  DS_ASSIGN_OR_RETURN(RelationBuilder * rel, Find(msg.relation_id, "Update"));
  const int64_t before = batch_bytes_;
  const bool has_old = msg.old_kind != pgo::OldTupleKind::kNone;
  // toast_fill: unchanged TOAST cells take the value from the before image or the cache, and
  // are decoded like any other cell (a filled value is indistinguishable from a sent one).
  const std::vector<pgo::Cell>* after = &msg.new_tuple;
  if (options_.toast_fill_from_before || toast_cache_ != nullptr) {
    const bool any_unchanged =
        std::any_of(msg.new_tuple.begin(), msg.new_tuple.end(),
                    [](const pgo::Cell& c) { return c.kind == pgo::CellKind::kUnchangedToast; });
    if (any_unchanged) {
      fill_scratch_.assign(msg.new_tuple.begin(), msg.new_tuple.end());
      int filled = 0;
      if (options_.toast_fill_from_before) filled += FillFromOldTuple(msg, &fill_scratch_);
      if (toast_cache_ != nullptr) filled += toast_cache_->FillUpdate(msg, &fill_scratch_);
      if (filled > 0) after = &fill_scratch_;
      toast_filled_ += filled;
    }
  }
  DS_RETURN_IF_ERROR(rel->Append(Operation::kUpdate, message_lsn_, txn_commit_lsn_, txn_commit_ts_,
                                 txn_xid_, txn_seq_++, txn_epoch_,
                                 has_old ? &msg.old_tuple : nullptr, after, &batch_bytes_));
  txn_bytes_ += batch_bytes_ - before;
  // After the append: the filled cells view the cache, which remembering may change.
  if (toast_cache_ != nullptr) toast_cache_->RememberUpdate(msg);
  return AfterRow(*rel);
}

absl::Status BatchBuilder::OnDelete(const pgo::DeleteMessage& msg) {
  DS_ASSIGN_OR_RETURN(RelationBuilder * rel, Find(msg.relation_id, "Delete"));
  const int64_t before = batch_bytes_;
  DS_RETURN_IF_ERROR(rel->Append(Operation::kDelete, message_lsn_, txn_commit_lsn_, txn_commit_ts_,
                                 txn_xid_, txn_seq_++, txn_epoch_, &msg.old_tuple, nullptr,
                                 &batch_bytes_));
  txn_bytes_ += batch_bytes_ - before;
  if (toast_cache_ != nullptr) toast_cache_->OnDelete(msg);
  return AfterRow(*rel);
}

absl::Status BatchBuilder::OnTruncate(const pgo::TruncateMessage& msg) {
  for (Oid id : msg.relation_ids) {
    DS_ASSIGN_OR_RETURN(RelationBuilder * rel, Find(id, "Truncate"));
    const int64_t before = batch_bytes_;
    DS_RETURN_IF_ERROR(rel->Append(Operation::kTruncate, message_lsn_, txn_commit_lsn_,
                                   txn_commit_ts_, txn_xid_, txn_seq_++, txn_epoch_, nullptr,
                                   nullptr, &batch_bytes_));
    txn_bytes_ += batch_bytes_ - before;
    DS_RETURN_IF_ERROR(AfterRow(*rel));
  }
  if (toast_cache_ != nullptr) toast_cache_->OnTruncate(msg);
  return absl::OkStatus();
}

absl::Status BatchBuilder::OnMessage(const pgo::LogicalMessage&) {
  return absl::OkStatus();  // logical messages are not change rows (DDL capture uses them later)
}

absl::Status BatchBuilder::OnStreamStart(const pgo::StreamStartMessage&) {
  return absl::InternalError("streamed transactions must be assembled before the BatchBuilder");
}
absl::Status BatchBuilder::OnStreamStop() {
  return absl::InternalError("streamed transactions must be assembled before the BatchBuilder");
}
absl::Status BatchBuilder::OnStreamCommit(const pgo::StreamCommitMessage&) {
  return absl::InternalError("streamed transactions must be assembled before the BatchBuilder");
}
absl::Status BatchBuilder::OnStreamAbort(const pgo::StreamAbortMessage&) {
  return absl::InternalError("streamed transactions must be assembled before the BatchBuilder");
}

absl::Status BatchBuilder::FinishAll(std::vector<Part>& parts) {
  parts = std::move(retired_);
  retired_.clear();
  for (auto& [id, rel] : relations_) {
    if (rel->rows() == 0) continue;
    DS_ASSIGN_OR_RETURN(Part part, rel->Finish(in_txn_ ? txn_epoch_ : -2));
    parts.push_back(std::move(part));
  }
  // WAL order of each part's first row: "in order of first appearance".
  std::sort(parts.begin(), parts.end(), [](const Part& a, const Part& b) {
    return std::tie(a.changes.first_commit_lsn, a.changes.first_seq) <
           std::tie(b.changes.first_commit_lsn, b.changes.first_seq);
  });
  return absl::OkStatus();
}

absl::Status BatchBuilder::Emit(std::vector<Part> parts, Lsn checkpoint) {
  ChangeBatch batch;
  batch.checkpoint = checkpoint;
  for (Part& p : parts) {
    if (p.changes.num_rows() == 0) continue;
    batch.relations.push_back(std::move(p.changes));
  }
  if (batch.relations.empty() && !checkpoint.valid()) return absl::OkStatus();
  // The in-flight budget counts the memory the batch really holds (builders over-allocate; the
  // running estimate only decides where to cut).
  batch.bytes = 0;
  for (const auto& r : batch.relations) {
    batch.bytes += arrow::util::TotalBufferSize(*r.records);
  }
  if (checkpoint.valid()) emitted_checkpoint_ = checkpoint;
  return sink_(std::move(batch));
}

absl::Status BatchBuilder::Flush() {
  if (in_txn_ || !has_pending()) return absl::OkStatus();
  std::vector<Part> parts;
  DS_RETURN_IF_ERROR(FinishAll(parts));
  const Lsn checkpoint = committed_end_ > emitted_checkpoint_ ? committed_end_ : Lsn();
  DS_RETURN_IF_ERROR(Emit(std::move(parts), checkpoint));
  batch_rows_ = 0;
  batch_bytes_ = 0;
  return absl::OkStatus();
}

absl::Status BatchBuilder::Forward(ChangeBatch batch) {
  if (in_txn_ || batch_rows_ > 0 || !retired_.empty()) {
    return absl::InternalError("a batch was forwarded while rows were pending");
  }
  if (batch.checkpoint.valid()) {
    if (batch.checkpoint > committed_end_) committed_end_ = batch.checkpoint;
    emitted_checkpoint_ = batch.checkpoint;
  }
  if (batch.relations.empty() && !batch.checkpoint.valid()) return absl::OkStatus();
  return sink_(std::move(batch));
}

void BatchBuilder::StartAt(Lsn position) {
  if (position <= committed_end_) return;  // a reconnect: what is pending keeps its checkpoint
  const bool pending = has_pending();
  committed_end_ = position;
  if (!pending) emitted_checkpoint_ = position;  // nothing to emit for the position itself
}

absl::Status BatchBuilder::AdvanceIdle(Lsn server_lsn) {
  if (batch_rows_ > 0 || !retired_.empty()) return absl::OkStatus();
  return FlushThrough(server_lsn);
}

absl::Status BatchBuilder::FlushThrough(Lsn server_lsn) {
  if (in_txn_) return absl::OkStatus();
  if (server_lsn > committed_end_) committed_end_ = server_lsn;
  return Flush();
}

absl::Status BatchBuilder::CutInsideTransaction() {
  std::vector<Part> parts;
  DS_RETURN_IF_ERROR(FinishAll(parts));
  std::vector<Part> complete, open;
  for (Part& p : parts) {
    const int64_t n = p.changes.num_rows();
    const int64_t start = p.rows_at_txn_start;
    if (start > 0) {
      Part head = p;
      head.changes.records = p.changes.records->Slice(0, start);
      complete.push_back(std::move(head));
    }
    if (n > start) {
      Part tail = p;
      tail.changes.records = p.changes.records->Slice(start);
      tail.changes.first_commit_lsn = p.txn_first_commit_lsn;
      tail.changes.first_seq = p.txn_first_seq;
      open.push_back(std::move(tail));
    }
  }
  auto by_first = [](const Part& a, const Part& b) {
    return std::tie(a.changes.first_commit_lsn, a.changes.first_seq) <
           std::tie(b.changes.first_commit_lsn, b.changes.first_seq);
  };
  std::sort(open.begin(), open.end(), by_first);
  // Complete transactions first, as their own batch, with the checkpoint they reach.
  const int64_t total_bytes = batch_bytes_;
  batch_bytes_ = total_bytes - txn_bytes_;
  const Lsn checkpoint = committed_end_ > emitted_checkpoint_ ? committed_end_ : Lsn();
  DS_RETURN_IF_ERROR(Emit(std::move(complete), checkpoint));
  batch_bytes_ = txn_bytes_;
  DS_RETURN_IF_ERROR(Emit(std::move(open), Lsn()));
  batch_rows_ = 0;
  batch_bytes_ = 0;
  txn_bytes_ = 0;
  txn_rows_ = 0;
  ++txn_epoch_;  // the open transaction's remaining rows start fresh builders
  return absl::OkStatus();
}

void BatchBuilder::DiscardOpenTransaction() {
  if (!in_txn_) return;
  // The server resends the transaction from its start; values the cache took from its first
  // part would be stale for the replay of that part.
  if (toast_cache_ != nullptr) toast_cache_->Clear();
  std::vector<Part> parts;
  if (!FinishAll(parts).ok()) parts.clear();
  in_txn_ = false;
  for (Part& p : parts) {
    if (p.rows_at_txn_start > 0) {
      p.changes.records = p.changes.records->Slice(0, p.rows_at_txn_start);
      retired_.push_back(std::move(p));
    }
  }
  batch_bytes_ -= txn_bytes_;
  batch_rows_ -= txn_rows_;
  txn_bytes_ = 0;
  txn_rows_ = 0;
  ++txn_epoch_;
}

}  // namespace ductstream::cdc
