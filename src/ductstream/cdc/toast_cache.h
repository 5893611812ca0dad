#pragma once

// toast_fill=cache: remembers, per row (relation + replica identity key), the last value seen of
// every column that PostgreSQL may store out of line (TOAST), so that an UPDATE which leaves such
// a value untouched — pgoutput then sends the cell as "unchanged" ('u') instead of the value —
// can be delivered with its full after image.
//
// What is cached are the cells exactly as pgoutput sent them (text or binary wire bytes), not
// Arrow values: a hit is decoded by the same column decoder as any other cell, straight into the
// Arrow builder, so a filled value is identical to one that came over the wire (including the
// __exact side list), and a miss costs nothing but the lookup.
//
// Correctness: a cell is 'u' only when the row's previous version held that very value, and the
// walsender delivers changes of a row in the order they happened, so the last value seen for
// (relation, key, column) is the right one — provided the cache saw every change of the row
// since it remembered the value. Hence: Delete forgets the row, Truncate forgets the relation, a
// new layout of the relation (Relation message with other columns) forgets the relation, and the
// owner calls Clear() when it drops a partly decoded transaction (the server resends it from
// its start, and replaying it over its own later values would fill stale ones). A value the
// cache does not hold (evicted, or last written before the flow started) stays unchanged.
//
// Not cached: relations without an identity key (REPLICA IDENTITY NOTHING, or DEFAULT without a
// primary key: their UPDATEs fail in PostgreSQL anyway), REPLICA IDENTITY FULL (the before image
// of every update already holds the values; see FillFromOldTuple), and fixed-length types, which
// are never TOASTed.
//
// Memory: bounded by `max_bytes`, counting the key, the values and a fixed per-row overhead;
// least recently used rows are evicted first. A row larger than the whole budget is not cached.
//
// Lifecycle: construct → On*/Fill* in WAL order → destruction. Thread-compatible: owned by the
// replication reader thread (with the BatchBuilder that calls it).

#include <cstdint>
#include <list>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "ductstream/base/ids.h"
#include "ductstream/postgres/pgoutput.h"

namespace ductstream::cdc {

class ToastCache {
 public:
  explicit ToastCache(int64_t max_bytes);
  ToastCache(const ToastCache&) = delete;
  ToastCache& operator=(const ToastCache&) = delete;

  /// Learns the relation's layout (key and cacheable columns); forgets its rows when the layout
  /// differs from the one known (columns added, dropped, retyped, identity changed).
  void OnRelation(const postgres::pgoutput::RelationMessage& msg);
  /// Remembers the cacheable values of the new row.
  void OnInsert(const postgres::pgoutput::InsertMessage& msg);
  /// Fills the kUnchangedToast cells of `*cells` (the update's after image, possibly already
  /// partly filled) that the cache holds for the row as it was before `msg`; returns how many
  /// it filled. Filled cells point into the cache: they stay valid until the next call of a
  /// non-const method. Call RememberUpdate(msg) afterwards.
  int FillUpdate(const postgres::pgoutput::UpdateMessage& msg,
                 std::vector<postgres::pgoutput::Cell>* cells) const;
  /// Remembers the row after `msg` (cells it left unchanged keep the value cached), under its
  /// new key when the update changed the key.
  void RememberUpdate(const postgres::pgoutput::UpdateMessage& msg);
  void OnDelete(const postgres::pgoutput::DeleteMessage& msg);
  void OnTruncate(const postgres::pgoutput::TruncateMessage& msg);
  /// Forgets every row of every relation (relation layouts are kept).
  void Clear();

  int64_t bytes() const { return bytes_; }
  int64_t max_bytes() const { return max_bytes_; }
  int64_t rows() const { return static_cast<int64_t>(lru_.size()); }
  int64_t evictions() const { return evictions_; }

  /// True for types that may be stored out of line: every type but the builtin fixed-length
  /// ones (varlena and unknown types count as TOASTable; caching those costs only memory).
  static bool IsToastable(Oid type_oid);

 private:
  struct RelationInfo {
    std::vector<postgres::pgoutput::RelationColumn> columns;
    postgres::pgoutput::ReplicaIdentity identity = postgres::pgoutput::ReplicaIdentity::kDefault;
    std::vector<int> key_indexes;
    std::vector<int> cached_indexes;  // columns whose values are cached, in column order
    bool usable = false;              // has a key and cacheable columns, not FULL
  };
  struct Value {
    bool present = false;
    postgres::pgoutput::CellKind kind = postgres::pgoutput::CellKind::kNull;
    std::string data;
  };
  struct Row {
    std::string id;             // relation id (4 bytes) + encoded key; the index views it
    uint32_t relation = 0;      // relation id
    std::vector<Value> values;  // parallel to RelationInfo::cached_indexes
    int64_t bytes = 0;
  };
  using RowList = std::list<Row>;

  const RelationInfo* Usable(Oid relation) const;
  /// Encodes the key cells of `tuple` (relation id first); false when a key cell is unchanged.
  static bool EncodeId(Oid relation, const RelationInfo& info,
                       const std::vector<postgres::pgoutput::Cell>& tuple, std::string* id);
  RowList::iterator Find(absl::string_view id);
  const Row* FindConst(absl::string_view id) const;
  /// Stores the values of `tuple` in `row` (creating it when `row` is end()), where
  /// kUnchangedToast keeps what the row held; moves it to the front; evicts past the budget.
  void Store(const RelationInfo& info, std::string id, RowList::iterator row,
             const std::vector<postgres::pgoutput::Cell>& tuple);
  void Erase(RowList::iterator row);
  void ForgetRelation(uint32_t relation);

  const int64_t max_bytes_;
  absl::flat_hash_map<uint32_t, RelationInfo> relations_;
  RowList lru_;  // most recently used first
  absl::flat_hash_map<absl::string_view, RowList::iterator> index_;
  int64_t bytes_ = 0;
  int64_t evictions_ = 0;
};

/// Fills the kUnchangedToast cells of `*cells` from the update's old tuple when it carries the
/// whole old row (REPLICA IDENTITY FULL: PostgreSQL logs it with TOASTed values inlined). The
/// filled cells view `msg`'s buffer. Returns how many cells it filled.
int FillFromOldTuple(const postgres::pgoutput::UpdateMessage& msg,
                     std::vector<postgres::pgoutput::Cell>* cells);

}  // namespace ductstream::cdc
