#include "ductstream/cdc/toast_cache.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ductstream/cdc/batch_builder.h"

namespace ductstream::cdc {
namespace {

namespace pgo = postgres::pgoutput;

constexpr uint32_t kItems = 16384;
constexpr uint32_t kOther = 16390;

pgo::Cell Text(absl::string_view data) { return pgo::Cell{pgo::CellKind::kText, data}; }
pgo::Cell Null() { return pgo::Cell{pgo::CellKind::kNull, {}}; }
pgo::Cell Unchanged() { return pgo::Cell{pgo::CellKind::kUnchangedToast, {}}; }

// items (id int4 key, n int4, big text, doc jsonb)
pgo::RelationMessage Items(uint32_t id = kItems,
                           pgo::ReplicaIdentity identity = pgo::ReplicaIdentity::kDefault) {
  pgo::RelationMessage m;
  m.relation_id = Oid(id);
  m.schema = "public";
  m.name = absl::StrCat("items", id);
  m.replica_identity = identity;
  const bool full = identity == pgo::ReplicaIdentity::kFull;
  m.columns = {{true, "id", Oid(23), -1},
               {full, "n", Oid(23), -1},
               {full, "big", Oid(25), -1},
               {full, "doc", Oid(3802), -1}};
  return m;
}

pgo::InsertMessage Insert(uint32_t rel, absl::string_view id, absl::string_view big,
                          absl::string_view doc = "{}") {
  pgo::InsertMessage m;
  m.relation_id = Oid(rel);
  m.new_tuple = {Text(id), Text("0"), Text(big), Text(doc)};
  return m;
}

// UPDATE ... SET n = <n>: big and doc were not sent.
pgo::UpdateMessage UpdateN(uint32_t rel, absl::string_view id, absl::string_view n) {
  pgo::UpdateMessage m;
  m.relation_id = Oid(rel);
  m.new_tuple = {Text(id), Text(n), Unchanged(), Unchanged()};
  return m;
}

pgo::DeleteMessage Delete(uint32_t rel, absl::string_view id) {
  pgo::DeleteMessage m;
  m.relation_id = Oid(rel);
  m.old_kind = pgo::OldTupleKind::kKey;
  m.old_tuple = {Text(id), Null(), Null(), Null()};
  return m;
}

// What the cache makes of the update: the after image as "kind:data" cells.
std::string Filled(ToastCache& cache, const pgo::UpdateMessage& msg, int* count = nullptr) {
  std::vector<pgo::Cell> cells = msg.new_tuple;
  const int n = cache.FillUpdate(msg, &cells);
  if (count != nullptr) *count = n;
  std::vector<std::string> out;
  for (const auto& c : cells) {
    out.push_back(c.kind == pgo::CellKind::kUnchangedToast ? "u"
                  : c.kind == pgo::CellKind::kNull         ? "null"
                                                           : std::string(c.data));
  }
  cache.RememberUpdate(msg);
  return absl::StrJoin(out, ",");
}

TEST(ToastCacheTest, FillsWhatAnInsertOrUpdateLeftAndMissesStayUnchanged) {
  ToastCache cache(1 << 20);
  cache.OnRelation(Items());
  cache.OnInsert(Insert(kItems, "1", "big-1", "{\"a\": 1}"));
  int filled = 0;
  EXPECT_EQ(Filled(cache, UpdateN(kItems, "1", "5"), &filled), "1,5,big-1,{\"a\": 1}");
  EXPECT_EQ(filled, 2);
  // Never seen: stays unchanged (not NULL).
  EXPECT_EQ(Filled(cache, UpdateN(kItems, "2", "5"), &filled), "2,5,u,u");
  EXPECT_EQ(filled, 0);
  // An update that sends a new value replaces the cached one; a later one fills the new value.
  pgo::UpdateMessage set_big = UpdateN(kItems, "1", "6");
  set_big.new_tuple[2] = Text("big-2");
  EXPECT_EQ(Filled(cache, set_big), "1,6,big-2,{\"a\": 1}");
  EXPECT_EQ(Filled(cache, UpdateN(kItems, "1", "7")), "1,7,big-2,{\"a\": 1}");
  // SET big = NULL forgets the value (a NULL is sent, never 'u').
  pgo::UpdateMessage null_big = UpdateN(kItems, "1", "8");
  null_big.new_tuple[2] = Null();
  EXPECT_EQ(Filled(cache, null_big), "1,8,null,{\"a\": 1}");
  EXPECT_EQ(Filled(cache, UpdateN(kItems, "1", "9")), "1,9,u,{\"a\": 1}");
}

TEST(ToastCacheTest, OnlyToastableColumnsAreCounted) {
  ToastCache cache(1 << 20);
  cache.OnRelation(Items());
  cache.OnInsert(Insert(kItems, "1", std::string(1000, 'x'), "{}"));
  // 1000 + 2 bytes of values, the key and the per-row overhead; not the int4 column n.
  EXPECT_GE(cache.bytes(), 1002);
  EXPECT_LT(cache.bytes(), 1002 + 200);
  EXPECT_FALSE(ToastCache::IsToastable(Oid(23)));
  EXPECT_FALSE(ToastCache::IsToastable(Oid(1184)));
  EXPECT_TRUE(ToastCache::IsToastable(Oid(25)));
  EXPECT_TRUE(ToastCache::IsToastable(Oid(17)));
  EXPECT_TRUE(ToastCache::IsToastable(Oid(1007)));  // int4[]
}

TEST(ToastCacheTest, DeleteEvictsTruncateAndNewLayoutClearTheRelationOnly) {
  ToastCache cache(1 << 20);
  cache.OnRelation(Items(kItems));
  cache.OnRelation(Items(kOther));
  for (const char* id : {"1", "2", "3"}) {
    cache.OnInsert(Insert(kItems, id, absl::StrCat("items-", id)));
    cache.OnInsert(Insert(kOther, id, absl::StrCat("other-", id)));
  }
  EXPECT_EQ(cache.rows(), 6);
  cache.OnDelete(Delete(kItems, "1"));
  EXPECT_EQ(Filled(cache, UpdateN(kItems, "1", "0")), "1,0,u,u");
  EXPECT_EQ(Filled(cache, UpdateN(kItems, "2", "0")), "2,0,items-2,{}");

  pgo::TruncateMessage truncate;
  truncate.relation_ids = {Oid(kItems)};
  cache.OnTruncate(truncate);
  EXPECT_EQ(Filled(cache, UpdateN(kItems, "2", "0")), "2,0,u,u");
  EXPECT_EQ(Filled(cache, UpdateN(kOther, "2", "0")), "2,0,other-2,{}");
  EXPECT_EQ(cache.rows(), 3);

  // The same layout announced again (a reconnect) keeps the rows; a new one drops them.
  cache.OnRelation(Items(kOther));
  EXPECT_EQ(Filled(cache, UpdateN(kOther, "3", "0")), "3,0,other-3,{}");
  pgo::RelationMessage altered = Items(kOther);
  altered.columns.push_back({false, "added", Oid(25), -1});
  cache.OnRelation(altered);
  EXPECT_EQ(cache.rows(), 0);
  cache.OnRelation(Items(kOther));
  EXPECT_EQ(Filled(cache, UpdateN(kOther, "3", "0")), "3,0,u,u");
}

TEST(ToastCacheTest, KeyChangeMovesTheRow) {
  ToastCache cache(1 << 20);
  cache.OnRelation(Items());
  cache.OnInsert(Insert(kItems, "1", "big-1"));
  pgo::UpdateMessage rekey = UpdateN(kItems, "2", "0");
  rekey.old_kind = pgo::OldTupleKind::kKey;
  rekey.old_tuple = {Text("1"), Null(), Null(), Null()};
  EXPECT_EQ(Filled(cache, rekey), "2,0,big-1,{}");
  EXPECT_EQ(Filled(cache, UpdateN(kItems, "2", "1")), "2,1,big-1,{}");
  EXPECT_EQ(Filled(cache, UpdateN(kItems, "1", "1")), "1,1,u,u");
  EXPECT_EQ(cache.rows(), 1);
}

TEST(ToastCacheTest, EvictionKeepsTheByteBoundAndDropsTheLeastRecentlyUsed) {
  constexpr int64_t kBudget = 64 << 10;
  ToastCache cache(kBudget);
  cache.OnRelation(Items());
  const std::string value(1000, 'v');
  for (int i = 0; i < 500; ++i) {
    cache.OnInsert(Insert(kItems, absl::StrCat(i), value));
    ASSERT_LE(cache.bytes(), kBudget) << "after row " << i;
    if (i >= 10) {
      // Row 0 is used by every update, so it stays while rows inserted after it go.
      EXPECT_EQ(Filled(cache, UpdateN(kItems, "0", "1")), absl::StrCat("0,1,", value, ",{}"));
    }
  }
  EXPECT_GT(cache.evictions(), 400);
  EXPECT_GT(cache.rows(), 40);  // the budget is used, not wasted
  EXPECT_LT(cache.rows(), 66);
  EXPECT_EQ(Filled(cache, UpdateN(kItems, "499", "1")), absl::StrCat("499,1,", value, ",{}"));
  EXPECT_EQ(Filled(cache, UpdateN(kItems, "1", "1")), "1,1,u,u");  // evicted long ago
  EXPECT_EQ(Filled(cache, UpdateN(kItems, "100", "1")), "100,1,u,u");

  // A row larger than the whole budget is not cached, and evicts nothing.
  const int64_t rows = cache.rows();
  const std::string huge(kBudget, 'h');
  cache.OnInsert(Insert(kItems, "huge", huge));
  EXPECT_EQ(cache.rows(), rows);
  EXPECT_LE(cache.bytes(), kBudget);
  EXPECT_EQ(Filled(cache, UpdateN(kItems, "huge", "1")), "huge,1,u,u");
  // A growing row that no longer fits is dropped rather than kept stale.
  const std::string grown(kBudget, 'g');
  pgo::UpdateMessage grow = UpdateN(kItems, "0", "2");
  grow.new_tuple[2] = Text(grown);
  Filled(cache, grow);
  EXPECT_EQ(Filled(cache, UpdateN(kItems, "0", "3")), "0,3,u,u");
  EXPECT_LE(cache.bytes(), kBudget);
}

TEST(ToastCacheTest, RelationsWithoutKeyOrWithFullIdentityAreNotCached) {
  ToastCache cache(1 << 20);
  cache.OnRelation(Items(kItems, pgo::ReplicaIdentity::kFull));
  pgo::RelationMessage nokey = Items(kOther);
  for (auto& c : nokey.columns) c.is_key = false;
  cache.OnRelation(nokey);
  cache.OnInsert(Insert(kItems, "1", "a"));
  cache.OnInsert(Insert(kOther, "1", "a"));
  EXPECT_EQ(cache.rows(), 0);
  EXPECT_EQ(cache.bytes(), 0);
}

TEST(ToastCacheTest, FullIdentityFillsFromTheOldTuple) {
  pgo::UpdateMessage m = UpdateN(kItems, "1", "2");
  m.old_kind = pgo::OldTupleKind::kOld;
  m.old_tuple = {Text("1"), Text("1"), Text("old-big"), Null()};
  std::vector<pgo::Cell> cells = m.new_tuple;
  EXPECT_EQ(FillFromOldTuple(m, &cells), 1);
  EXPECT_EQ(cells[2].kind, pgo::CellKind::kText);
  EXPECT_EQ(cells[2].data, "old-big");
  EXPECT_EQ(cells[3].kind, pgo::CellKind::kUnchangedToast);  // NULL before: cannot be 'u'
}

// --- through the BatchBuilder: filled values land in the Arrow after image ---------------------

struct Built {
  std::vector<std::string> big;        // after image of "big" per row ("<null>" for null)
  std::vector<std::string> unchanged;  // __unchanged per row, comma-joined
};

Built BuildBatches(const BuilderOptions& options, pgo::ReplicaIdentity identity,
                   const std::vector<std::function<absl::Status(BatchBuilder&)>>& steps,
                   int64_t* filled = nullptr) {
  Built out;
  BatchBuilder builder(options, nullptr, [&](ChangeBatch batch) {
    for (const auto& rel : batch.relations) {
      auto big = std::static_pointer_cast<arrow::StringArray>(rel.records->GetColumnByName("big"));
      auto u = std::static_pointer_cast<arrow::ListArray>(
          rel.records->GetColumnByName(kUnchangedColumn));
      for (int64_t r = 0; r < rel.num_rows(); ++r) {
        out.big.push_back(big->IsNull(r) ? "<null>" : std::string(big->GetView(r)));
        auto names = std::static_pointer_cast<arrow::StringArray>(u->value_slice(r));
        std::vector<std::string> n;
        for (int64_t i = 0; i < names->length(); ++i) n.emplace_back(names->GetView(i));
        out.unchanged.push_back(absl::StrJoin(n, ","));
      }
    }
    return absl::OkStatus();
  });
  EXPECT_TRUE(builder.OnRelation(Items(kItems, identity)).ok());
  uint64_t lsn = 100;
  for (const auto& step : steps) {
    pgo::BeginMessage begin;
    begin.final_lsn = Lsn(lsn);
    EXPECT_TRUE(builder.OnBegin(begin).ok());
    absl::Status s = step(builder);
    EXPECT_TRUE(s.ok()) << s;
    pgo::CommitMessage commit;
    commit.commit_lsn = Lsn(lsn);
    commit.end_lsn = Lsn(lsn + 8);
    EXPECT_TRUE(builder.OnCommit(commit).ok());
    lsn += 100;
  }
  EXPECT_TRUE(builder.Flush().ok());
  if (filled != nullptr) *filled = builder.toast_filled();
  return out;
}

TEST(ToastCacheTest, BuilderFillsTheAfterImageOnlyWhenAsked) {
  const std::string big(5000, 'B');
  std::vector<std::function<absl::Status(BatchBuilder&)>> steps = {
      [&](BatchBuilder& b) { return b.OnInsert(Insert(kItems, "1", big)); },
      [&](BatchBuilder& b) { return b.OnUpdate(UpdateN(kItems, "1", "2")); },
      [&](BatchBuilder& b) { return b.OnUpdate(UpdateN(kItems, "7", "2")); },  // miss
      [&](BatchBuilder& b) { return b.OnDelete(Delete(kItems, "1")); },
      [&](BatchBuilder& b) { return b.OnUpdate(UpdateN(kItems, "1", "3")); },  // evicted
  };
  Built none = BuildBatches(BuilderOptions{}, pgo::ReplicaIdentity::kDefault, steps);
  EXPECT_EQ(none.big, (std::vector<std::string>{big, "<null>", "<null>", "<null>", "<null>"}));
  EXPECT_EQ(none.unchanged, (std::vector<std::string>{"", "big,doc", "big,doc", "", "big,doc"}));

  BuilderOptions cached;
  cached.toast_cache_bytes = 1 << 20;
  cached.toast_fill_from_before = true;
  int64_t filled = 0;
  Built cache = BuildBatches(cached, pgo::ReplicaIdentity::kDefault, steps, &filled);
  EXPECT_EQ(cache.big, (std::vector<std::string>{big, big, "<null>", "<null>", "<null>"}));
  EXPECT_EQ(cache.unchanged, (std::vector<std::string>{"", "", "big,doc", "", "big,doc"}));
  EXPECT_EQ(filled, 2);
}

TEST(ToastCacheTest, BuilderFillsFromTheFullBeforeImage) {
  pgo::UpdateMessage m = UpdateN(kItems, "1", "2");
  m.old_kind = pgo::OldTupleKind::kOld;
  m.old_tuple = {Text("1"), Text("1"), Text("old-big"), Text("{}")};
  BuilderOptions options;
  options.toast_fill_from_before = true;
  Built full = BuildBatches(options, pgo::ReplicaIdentity::kFull,
                            {[&](BatchBuilder& b) { return b.OnUpdate(m); }});
  EXPECT_EQ(full.big, (std::vector<std::string>{"old-big"}));
  EXPECT_EQ(full.unchanged, (std::vector<std::string>{""}));
}

TEST(ToastCacheTest, BuilderForgetsTheCacheWhenATransactionIsDropped) {
  BuilderOptions options;
  options.toast_cache_bytes = 1 << 20;
  BatchBuilder builder(options, nullptr, [](ChangeBatch) { return absl::OkStatus(); });
  ASSERT_TRUE(builder.OnRelation(Items()).ok());
  pgo::BeginMessage begin;
  begin.final_lsn = Lsn(100);
  ASSERT_TRUE(builder.OnBegin(begin).ok());
  ASSERT_TRUE(builder.OnInsert(Insert(kItems, "1", "x")).ok());
  EXPECT_EQ(builder.toast_cache()->rows(), 1);
  builder.DiscardOpenTransaction();
  EXPECT_EQ(builder.toast_cache()->rows(), 0);
}

}  // namespace
}  // namespace ductstream::cdc
