#pragma once

// Test-only sample change records for the encoder tests: one relation, public.widgets, with a row
// per operation and a data column per Arrow type the PostgreSQL decoder produces, including the
// edge values (NaN, ±Infinity, ±infinity dates and timestamps, unchanged TOAST vs NULL, an
// __exact entry). The plain C++ values are exposed so tests build their expectations from them
// without going through Arrow.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ductstream/cdc/change_batch.h"

namespace ductstream::codec::sample {

template <typename T>
using Column = std::vector<std::optional<T>>;

struct Interval {
  int32_t months;
  int32_t days;
  int64_t nanoseconds;
};

/// Row r of every vector is change r. Data columns hold the after image (null for delete and
/// truncate, and for the unchanged-TOAST cell).
struct SampleData {
  std::vector<std::string> op;
  std::vector<uint64_t> lsn;
  std::vector<uint64_t> commit_lsn;
  Column<int64_t> commit_ts;  // micros
  std::vector<int64_t> xid;
  std::vector<int64_t> seq;
  std::vector<std::vector<std::string>> unchanged;
  std::vector<std::vector<std::pair<std::string, std::string>>> exact;  // empty = null map
  /// The key-only before image (id, account), or none.
  std::vector<std::optional<std::pair<int32_t, int64_t>>> before_key;

  Column<int32_t> id;                                // int4, key
  Column<int16_t> small;                             // int2
  Column<int64_t> account;                           // int8, key
  Column<uint32_t> owner_oid;                        // oid
  Column<double> score;                              // float8
  Column<bool> flag;                                 // bool
  Column<std::string> price;                         // numeric(10,2), as decimal text
  Column<std::string> name;                          // text
  Column<std::string> doc;                           // jsonb text
  Column<std::string> blob;                          // bytea
  Column<int32_t> day;                               // date, days since 1970-01-01
  Column<int64_t> ts_tz;                             // timestamptz, micros
  Column<int64_t> ts;                                // timestamp, micros
  Column<int64_t> t;                                 // time, micros since midnight
  Column<Interval> span;                             // interval
  Column<std::vector<std::optional<int32_t>>> tags;  // int4[]
  Column<std::string> uid;                           // uuid
};

/// The sample rows (6: insert, insert, update, delete, truncate, load).
const SampleData& Data();

/// The data columns' fields, with pg_type_oid/pg_typmod metadata, in column order.
std::vector<std::shared_ptr<arrow::Field>> DataFields();

/// The sample rows as change records (replica identity default, key id,account).
cdc::RelationChanges MakeSampleChanges();

}  // namespace ductstream::codec::sample
