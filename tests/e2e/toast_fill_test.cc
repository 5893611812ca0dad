// toast_fill end to end: ductstream-worker replicates UPDATEs that leave a TOASTed column
// untouched, and the after images written to Parquet (read back by pyarrow) hold the value, or
// report it unchanged, as each mode promises (docs/connectors.md, "Unchanged TOAST values").

#include <gtest/gtest.h>

#include <map>
#include <ostream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/e2e/worker_e2e.h"

namespace ductstream::e2e {
namespace {

struct Expected {
  const char* mode;
  // For the updates of rows 1 (inserted while the flow ran), 2 (inserted before the flow
  // existed) and 3 (deleted after its update): true = the after image holds the value.
  bool row1, row2, row3;
  bool binary = true;  // source option `binary` (the re-read then uses text results too)
  friend void PrintTo(const Expected& e, std::ostream* os) {
    *os << e.mode << (e.binary ? "" : " (text)");
  }
};

class ToastFillTest : public WorkerE2eTest, public ::testing::WithParamInterface<Expected> {};

TEST_P(ToastFillTest, UnchangedToastedColumnIsFilledAsTheModePromises) {
  const Expected expected = GetParam();
  // A composite key (the source re-read then matches row values, not one column), and a value
  // of 3 200 hexadecimal characters from md5 chains: pglz cannot shrink it by the 25 % it
  // requires, so it is stored out of line, uncompressed.
  Sql("CREATE TABLE t (id int, k text, n int, big text, PRIMARY KEY (id, k))");
  const auto big = [](int seed) {
    return absl::StrCat("(SELECT string_agg(md5(g::text || '-", seed,
                        "'), '') FROM generate_series(1, 100) g)");
  };
  Sql(absl::StrCat("INSERT INTO t VALUES (2, 'b', 0, ", big(2), "), (3, 'c', 0, ", big(3), ")"));
  const std::string flow =
      WriteFlow({{"toast_fill", expected.mode}, {"binary", expected.binary ? "true" : "false"}});
  ASSERT_EQ(RunWorker(flow, 1), 0) << ReadFile(Log());  // creates the slot: rows 2, 3 unseen
  Sql(absl::StrCat("INSERT INTO t VALUES (1, 'a', 0, ", big(1), ")"));
  std::map<int, std::string> values;
  for (int id : {1, 2, 3}) {
    values[id] = Value(absl::StrCat("SELECT big FROM t WHERE id = ", id));
    ASSERT_EQ(values[id].size(), 3200u);
  }
  Sql("UPDATE t SET n = 1");  // big stays as it is: pgoutput sends it as unchanged
  Sql("DELETE FROM t WHERE id = 3");
  ASSERT_EQ(RunWorker(flow), 0) << ReadFile(Log());

  std::map<int, nlohmann::json> updates;
  int inserts = 0;
  for (const auto& row : Changes("t")) {
    if (row["__op"] == "update") updates[row["id"].get<int>()] = row;
    if (row["__op"] == "insert") {
      ++inserts;
      EXPECT_EQ(row["big"], values[1]) << "the insert always carries the value";
    }
  }
  EXPECT_EQ(inserts, 1);
  ASSERT_EQ(updates.size(), 3u);
  const std::map<int, bool> filled = {{1, expected.row1}, {2, expected.row2}, {3, expected.row3}};
  for (const auto& [id, want] : filled) {
    const nlohmann::json& row = updates[id];
    EXPECT_EQ(row["n"], 1);
    if (want) {
      EXPECT_EQ(row["big"], values[id]) << "row " << id;
      EXPECT_EQ(row["__unchanged"], nlohmann::json::array()) << "row " << id;
    } else {
      // Unchanged, which is not NULL: the cell is null and the column is named.
      EXPECT_TRUE(row["big"].is_null()) << "row " << id;
      EXPECT_EQ(row["__unchanged"], nlohmann::json::array({"big"})) << "row " << id;
    }
  }
  const std::string log = ReadFile(Log());
  const int expected_filled = expected.row1 + expected.row2 + expected.row3;
  if (std::string(expected.mode) != "none") {
    EXPECT_TRUE(absl::StrContains(
        log, absl::StrCat("toast_fill=", expected.mode, " filled ", expected_filled, " unchanged")))
        << log;
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, ToastFillTest,
                         ::testing::Values(
                             // none: the wire as it is.
                             Expected{"none", false, false, false},
                             // cache: only what the flow saw (row 1's insert).
                             Expected{"cache", true, false, false},
                             // source: the current row, when it still exists.
                             Expected{"source", true, true, false},
                             Expected{"source", true, true, false, /*binary=*/false}),
                         [](const auto& info) {
                           return absl::StrCat(info.param.mode, info.param.binary ? "" : "_text");
                         });

// The re-read binds key values rendered as text from their Arrow form: every common key type
// must find its row again (±infinity, BC dates, NaN, bytea, ...).
TEST_F(WorkerE2eTest, ToastFillSourceFindsRowsByKeysOfCommonTypes) {
  Sql("CREATE TABLE k (ts timestamptz, d date, u uuid, num numeric(10,2), f float8, b bytea, "
      "flag bool, t time, lts timestamp, n int, big text, "
      "PRIMARY KEY (ts, d, u, num, f, b, flag, t, lts))");
  const std::string flow = WriteFlow({{"toast_fill", "source"}});
  ASSERT_EQ(RunWorker(flow, 1), 0) << ReadFile(Log());
  const std::string big =
      "(SELECT string_agg(md5(g::text || n::text), '') FROM generate_series(1, 100) g)";
  Sql("INSERT INTO k (ts, d, u, num, f, b, flag, t, lts, n) VALUES "
      "('2026-03-01 12:34:56.789012+02', '2026-03-01', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', "
      "  1234.50, 0.1, '\\x00ff10', true, '23:59:59.999999', '2026-03-01 00:00:00', 1), "
      "('infinity', '-infinity', '00000000-0000-0000-0000-000000000000', -0.01, 'NaN', '', "
      "  false, '00:00:00', '-infinity', 2), "
      "('0044-03-15 12:00:00+00 BC', '0044-03-15 BC', 'ffffffff-ffff-ffff-ffff-ffffffffffff', "
      "  0, '-Infinity', '\\x27', true, '12:00:00.5', '1999-12-31 23:59:59.000001', 3)");
  Sql(absl::StrCat("UPDATE k SET big = ", big));
  ASSERT_EQ(RunWorker(flow), 0) << ReadFile(Log());  // the slot sees rows with big already set
  Sql("UPDATE k SET n = n + 10");                    // big unchanged
  ASSERT_EQ(RunWorker(flow), 0) << ReadFile(Log());

  std::map<int, nlohmann::json> updates;
  for (const auto& row : Changes("k")) {
    if (row["__op"] == "update" && row["n"].get<int>() > 10) updates[row["n"].get<int>()] = row;
  }
  ASSERT_EQ(updates.size(), 3u);
  for (int n : {11, 12, 13}) {
    const std::string value = Value(absl::StrCat("SELECT big FROM k WHERE n = ", n));
    ASSERT_EQ(value.size(), 3200u);
    EXPECT_EQ(updates[n]["big"], value) << "row " << n << ": " << updates[n].dump();
    EXPECT_EQ(updates[n]["__unchanged"], nlohmann::json::array()) << "row " << n;
  }
}

TEST_F(WorkerE2eTest, ToastFillCacheFollowsNewValuesAndEvictsPastItsBudget) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, n int, big text)");
  const auto big = [](int seed) {
    return absl::StrCat("(SELECT string_agg(md5(g::text || '-", seed,
                        "'), '') FROM generate_series(1, 100) g)");
  };
  // A budget of about two rows: the third insert evicts the least recently used row.
  const std::string flow = WriteFlow({{"toast_fill", "cache"}, {"toast_cache_bytes", "8KiB"}});
  ASSERT_EQ(RunWorker(flow, 1), 0) << ReadFile(Log());
  Sql(absl::StrCat("INSERT INTO t VALUES (1, 0, ", big(1), ")"));
  Sql(absl::StrCat("UPDATE t SET big = ", big(10), " WHERE id = 1"));  // the cache follows
  Sql(absl::StrCat("INSERT INTO t VALUES (2, 0, ", big(2), ")"));
  Sql("UPDATE t SET n = 1 WHERE id = 1");  // row 1 is now the most recently used
  Sql(absl::StrCat("INSERT INTO t VALUES (3, 0, ", big(3), ")"));  // evicts row 2
  for (int id : {1, 2, 3}) Sql(absl::StrCat("UPDATE t SET n = 2 WHERE id = ", id));
  Sql("DELETE FROM t WHERE id = 3");
  Sql(absl::StrCat("INSERT INTO t VALUES (3, 0, ", big(30), ")"));
  Sql("UPDATE t SET n = 3 WHERE id = 3");
  const std::string v1 = Value("SELECT big FROM t WHERE id = 1");
  const std::string v3 = Value("SELECT big FROM t WHERE id = 3");
  ASSERT_EQ(RunWorker(flow), 0) << ReadFile(Log());

  std::vector<std::string> updates;
  for (const auto& row : Changes("t")) {
    if (row["__op"] != "update") continue;
    std::string big = row["big"].is_null() ? "null" : row["big"].get<std::string>();
    if (big == v1) big = "v1";
    if (big == v3) big = "v3";
    if (big.size() == 3200) big = "other";
    updates.push_back(absl::StrCat(row["id"].get<int>(), " n=", row["n"].dump(), " big=", big,
                                   " unchanged=", row["__unchanged"].dump()));
  }
  EXPECT_EQ(updates, (std::vector<std::string>{
                         "1 n=0 big=v1 unchanged=[]",  // SET big: sent, not unchanged
                         "1 n=1 big=v1 unchanged=[]",  // filled with the updated value
                         "1 n=2 big=v1 unchanged=[]",
                         "2 n=2 big=null unchanged=[\"big\"]",  // evicted: unchanged
                         "3 n=2 big=other unchanged=[]",        // the first row 3
                         "3 n=3 big=v3 unchanged=[]",           // the new row 3's value
                     }));
}

}  // namespace
}  // namespace ductstream::e2e
