#include "ductstream/cdc/toast_cache.h"

#include <cstring>
#include <utility>

namespace ductstream::cdc {

namespace pgo = postgres::pgoutput;

namespace {

// Per cached row, beyond its key and values: the list node, the index slot and the value
// vector's bookkeeping (an estimate; what matters is that it grows with the row count).
constexpr int64_t kRowOverhead = 96;

bool SameLayout(const std::vector<pgo::RelationColumn>& a,
                const std::vector<pgo::RelationColumn>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].type_oid != b[i].type_oid ||
        a[i].type_modifier != b[i].type_modifier || a[i].is_key != b[i].is_key) {
      return false;
    }
  }
  return true;
}

bool HasValue(const pgo::Cell& cell) {
  return cell.kind == pgo::CellKind::kText || cell.kind == pgo::CellKind::kBinary;
}

}  // namespace

ToastCache::ToastCache(int64_t max_bytes) : max_bytes_(max_bytes) {}

bool ToastCache::IsToastable(Oid type_oid) {
  switch (type_oid.value()) {
    case 16:    // bool
    case 18:    // "char"
    case 19:    // name (fixed 64 bytes)
    case 20:    // int8
    case 21:    // int2
    case 23:    // int4
    case 26:    // oid
    case 27:    // tid
    case 28:    // xid
    case 29:    // cid
    case 600:   // point
    case 601:   // lseg
    case 603:   // box
    case 628:   // line
    case 700:   // float4
    case 701:   // float8
    case 718:   // circle
    case 774:   // macaddr8
    case 790:   // money
    case 829:   // macaddr
    case 1082:  // date
    case 1083:  // time
    case 1114:  // timestamp
    case 1184:  // timestamptz
    case 1186:  // interval
    case 1266:  // timetz
    case 2950:  // uuid
    case 3220:  // pg_lsn
    case 5069:  // xid8
      return false;
    default:
      return true;
  }
}

void ToastCache::OnRelation(const pgo::RelationMessage& msg) {
  const uint32_t id = msg.relation_id.value();
  auto it = relations_.find(id);
  if (it != relations_.end() && it->second.identity == msg.replica_identity &&
      SameLayout(it->second.columns, msg.columns)) {
    return;  // the same relation announced again (reconnect, or after another relation)
  }
  if (it != relations_.end()) ForgetRelation(id);
  RelationInfo info;
  info.columns = msg.columns;
  info.identity = msg.replica_identity;
  for (size_t i = 0; i < msg.columns.size(); ++i) {
    if (msg.columns[i].is_key) info.key_indexes.push_back(static_cast<int>(i));
    if (IsToastable(msg.columns[i].type_oid)) info.cached_indexes.push_back(static_cast<int>(i));
  }
  info.usable = msg.replica_identity != pgo::ReplicaIdentity::kFull &&
                msg.replica_identity != pgo::ReplicaIdentity::kNothing &&
                !info.key_indexes.empty() && !info.cached_indexes.empty();
  relations_[id] = std::move(info);
}

const ToastCache::RelationInfo* ToastCache::Usable(Oid relation) const {
  auto it = relations_.find(relation.value());
  if (it == relations_.end() || !it->second.usable) return nullptr;
  return &it->second;
}

bool ToastCache::EncodeId(Oid relation, const RelationInfo& info,
                          const std::vector<pgo::Cell>& tuple, std::string* id) {
  if (tuple.size() != info.columns.size()) return false;
  id->clear();
  const uint32_t rel = relation.value();
  id->append(reinterpret_cast<const char*>(&rel), sizeof(rel));
  for (int k : info.key_indexes) {
    const pgo::Cell& cell = tuple[k];
    if (cell.kind == pgo::CellKind::kUnchangedToast) return false;
    id->push_back(static_cast<char>(cell.kind));
    if (!HasValue(cell)) continue;
    const uint32_t len = static_cast<uint32_t>(cell.data.size());
    id->append(reinterpret_cast<const char*>(&len), sizeof(len));
    id->append(cell.data.data(), cell.data.size());
  }
  return true;
}

ToastCache::RowList::iterator ToastCache::Find(absl::string_view id) {
  auto it = index_.find(id);
  return it == index_.end() ? lru_.end() : it->second;
}

const ToastCache::Row* ToastCache::FindConst(absl::string_view id) const {
  auto it = index_.find(id);
  return it == index_.end() ? nullptr : &*it->second;
}

void ToastCache::Erase(RowList::iterator row) {
  index_.erase(absl::string_view(row->id));
  bytes_ -= row->bytes;
  lru_.erase(row);
}

void ToastCache::ForgetRelation(uint32_t relation) {
  for (auto it = lru_.begin(); it != lru_.end();) {
    auto next = std::next(it);
    if (it->relation == relation) Erase(it);
    it = next;
  }
}

void ToastCache::Clear() {
  index_.clear();
  lru_.clear();
  bytes_ = 0;
}

void ToastCache::Store(const RelationInfo& info, std::string id, RowList::iterator row,
                       const std::vector<pgo::Cell>& tuple) {
  if (row == lru_.end()) {
    lru_.push_front(Row{});
    row = lru_.begin();
    row->id = std::move(id);
    std::memcpy(&row->relation, row->id.data(), sizeof(row->relation));
    row->values.resize(info.cached_indexes.size());
    index_[absl::string_view(row->id)] = row;
  } else {
    if (row->id != id) {  // the key changed: re-index under the new one
      index_.erase(absl::string_view(row->id));
      row->id = std::move(id);
      index_[absl::string_view(row->id)] = row;
    }
    lru_.splice(lru_.begin(), lru_, row);
  }
  bool any = false;
  int64_t size = kRowOverhead + static_cast<int64_t>(row->id.size()) +
                 static_cast<int64_t>(row->values.size() * sizeof(Value));
  for (size_t k = 0; k < info.cached_indexes.size(); ++k) {
    const pgo::Cell& cell = tuple[info.cached_indexes[k]];
    Value& v = row->values[k];
    if (HasValue(cell)) {
      v.present = true;
      v.kind = cell.kind;
      // A fresh string rather than assign(): a shrinking value must give its capacity back,
      // since the budget counts sizes.
      v.data = std::string(cell.data.data(), cell.data.size());
    } else if (cell.kind == pgo::CellKind::kNull) {
      v.present = false;
      std::string().swap(v.data);  // give the memory back
    }  // kUnchangedToast: the value did not change; keep what we hold (or don't)
    if (v.present) {
      any = true;
      size += static_cast<int64_t>(v.data.size());
    }
  }
  bytes_ += size - row->bytes;
  row->bytes = size;
  if (!any || size > max_bytes_) {
    Erase(row);  // nothing worth holding, or larger than the whole budget
    return;
  }
  while (bytes_ > max_bytes_ && !lru_.empty()) {
    Erase(std::prev(lru_.end()));
    ++evictions_;
  }
}

void ToastCache::OnInsert(const pgo::InsertMessage& msg) {
  const RelationInfo* info = Usable(msg.relation_id);
  if (info == nullptr) return;
  std::string id;
  if (!EncodeId(msg.relation_id, *info, msg.new_tuple, &id)) return;
  Store(*info, id, Find(id), msg.new_tuple);
}

int ToastCache::FillUpdate(const pgo::UpdateMessage& msg, std::vector<pgo::Cell>* cells) const {
  const RelationInfo* info = Usable(msg.relation_id);
  if (info == nullptr || cells->size() != info->columns.size()) return 0;
  std::string id;
  const auto& identity = msg.old_kind == pgo::OldTupleKind::kKey ? msg.old_tuple : msg.new_tuple;
  if (!EncodeId(msg.relation_id, *info, identity, &id)) return 0;
  const Row* row = FindConst(id);
  if (row == nullptr) return 0;
  int filled = 0;
  for (size_t k = 0; k < info->cached_indexes.size(); ++k) {
    pgo::Cell& cell = (*cells)[info->cached_indexes[k]];
    const Value& v = row->values[k];
    if (cell.kind != pgo::CellKind::kUnchangedToast || !v.present) continue;
    cell.kind = v.kind;
    cell.data = v.data;
    ++filled;
  }
  return filled;
}

void ToastCache::RememberUpdate(const pgo::UpdateMessage& msg) {
  const RelationInfo* info = Usable(msg.relation_id);
  if (info == nullptr) return;
  std::string new_id;
  if (!EncodeId(msg.relation_id, *info, msg.new_tuple, &new_id)) {
    // The new key itself is an unchanged TOASTed value (a key longer than ~2 kB): this row can
    // be neither found nor updated, so whatever is cached for it may now be stale.
    ForgetRelation(msg.relation_id.value());
    return;
  }
  RowList::iterator row = lru_.end();
  if (msg.old_kind == pgo::OldTupleKind::kKey) {
    std::string old_id;
    if (EncodeId(msg.relation_id, *info, msg.old_tuple, &old_id)) row = Find(old_id);
    if (auto stale = Find(new_id); stale != lru_.end() && stale != row) Erase(stale);
  } else {
    row = Find(new_id);
  }
  Store(*info, std::move(new_id), row, msg.new_tuple);
}

void ToastCache::OnDelete(const pgo::DeleteMessage& msg) {
  const RelationInfo* info = Usable(msg.relation_id);
  if (info == nullptr) return;
  std::string id;
  if (!EncodeId(msg.relation_id, *info, msg.old_tuple, &id)) {
    ForgetRelation(msg.relation_id.value());
    return;
  }
  if (auto row = Find(id); row != lru_.end()) Erase(row);
}

void ToastCache::OnTruncate(const pgo::TruncateMessage& msg) {
  for (Oid id : msg.relation_ids) ForgetRelation(id.value());
}

int FillFromOldTuple(const pgo::UpdateMessage& msg, std::vector<pgo::Cell>* cells) {
  if (msg.old_kind != pgo::OldTupleKind::kOld || msg.old_tuple.size() != cells->size()) return 0;
  int filled = 0;
  for (size_t i = 0; i < cells->size(); ++i) {
    if ((*cells)[i].kind == pgo::CellKind::kUnchangedToast && HasValue(msg.old_tuple[i])) {
      (*cells)[i] = msg.old_tuple[i];
      ++filled;
    }
  }
  return filled;
}

}  // namespace ductstream::cdc
