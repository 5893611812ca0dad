#pragma once

// PostgreSQL value codec: decodes column values, in either the binary send/recv format (pgoutput
// with `binary 'true'`, COPY BINARY) or the text output format, into Apache Arrow builders, so a
// value looks identical whichever path delivered it.
//
// Type mapping (product requirements; see docs in MakeColumnDecoder below):
//   bool→boolean, int2→int16, int4→int32, int8→int64, oid→uint32, float4→float32,
//   float8→float64 (NaN and ±Infinity kept), numeric(p,s) with 0 ≤ s ≤ p ≤ 38 → decimal128(p,s),
//   other numeric → utf8 (PostgreSQL's exact text), money → decimal128(19,2),
//   text/varchar/bpchar/name/json/jsonb/jsonpath/xml/"char" → utf8, bytea → binary,
//   uuid → utf8 (lowercase 8-4-4-4-12), date → date32, time → time64[us], timestamp →
//   timestamp[us], timestamptz → timestamp[us, "UTC"], interval → month_day_nano_interval,
//   one-dimensional arrays → list<element>, enums/composites/ranges/multiranges/network/
//   geometric/bit strings/tsvector/pg_lsn/snapshots/timetz and anything unknown → utf8.
//   Domains decode as their base type.
//
// Infinity: PostgreSQL's ±infinity dates and timestamps are kept as the raw extremes, NOT shifted
// to the Unix epoch: date ±infinity → INT32_MAX / INT32_MIN days; timestamp(tz) ±infinity →
// INT64_MAX / INT64_MIN microseconds. Finite values are shifted from PostgreSQL's 2000-01-01
// epoch to 1970-01-01.
//
// Values the Arrow type cannot hold ("unrepresentable"): numeric NaN/±Infinity in a
// decimal128 column (legal even in numeric(p,s)), numeric values outside the column's (p,s),
// multi-dimensional arrays or arrays with lower bounds other than 1 in a list column (an array
// column's type does not fix its dimensions, so the Arrow type is chosen from the catalog as
// list<element>, and such values keep their exact text here), arrays with an unrepresentable
// element, intervals whose microseconds overflow int64
// nanoseconds, timestamps within ~11 days of PostgreSQL's upper limit (they overflow after the
// epoch shift), time '24:00:00' (Arrow's time64 ends before midnight). Such a cell is NULL in the
// Arrow array and ColumnDecoder::unrepresentable() lists (row index in the batch, PostgreSQL's text
// output of the whole value). Nothing is lost silently: a consumer that needs exact values checks
// that list (it is empty in the common case).
//
// Binary values rendered as text (utf8 columns, and the text of unrepresentable values) match
// what PostgreSQL prints in a session with TimeZone 'UTC', DateStyle ISO, IntervalStyle
// postgres, extra_float_digits ≥ 1 (the default: shortest exact floats) and lc_monetary C
// ("$1,234.56", "-$1.00"); timestamptz renders as "2020-01-01 00:00:00+00". Sessions whose text
// output feeds AppendText should use those settings so both paths agree. Text input of
// timestamptz accepts any UTC offset.

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <arrow/api.h>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ductstream/base/ids.h"

namespace ductstream::postgres {

class Connection;

/// Catalog facts about one PostgreSQL type (from pg_type/pg_namespace).
struct TypeInfo {
  Oid oid;
  std::string schema;   // nspname
  std::string name;     // typname, e.g. "int4", "_int4", "mood"
  char typtype = 'b';   // b base, c composite, d domain, e enum, p pseudo, r range, m multirange
  char category = 'U';  // typcategory ('A' = array)
  Oid element_oid;      // typelem for arrays, else 0
  Oid base_oid;         // typbasetype for domains, else 0
  int32_t typmod = -1;  // typtypmod: a domain's typmod of its base type (numeric(10,2)), else -1
  Oid range_subtype;    // pg_range.rngsubtype for ranges and multiranges, else 0
};

/// Resolves non-builtin type oids (enums, domains, composites, arrays of them...).
using TypeLookup = std::function<absl::StatusOr<TypeInfo>(Oid)>;

/// A TypeLookup backed by pg_type (joined with pg_namespace and pg_range) through `conn`,
/// caching every answer for the life of the resolver.
/// Lifecycle: Create → Lookup* (or AsLookup()) while `conn` is alive.
/// Thread-compatible: the cache and the connection are used without locking.
class TypeResolver {
 public:
  static std::unique_ptr<TypeResolver> Create(Connection& conn);
  absl::StatusOr<TypeInfo> Lookup(Oid oid);
  /// A TypeLookup that calls Lookup(); it borrows this resolver, which must outlive it and
  /// every decoder built with it (composite decoders resolve field types lazily).
  TypeLookup AsLookup();

 private:
  explicit TypeResolver(Connection& conn) : conn_(conn) {}
  Connection& conn_;
  absl::flat_hash_map<uint32_t, TypeInfo> cache_;
};

/// A cell whose value the column's Arrow type cannot hold (see the header comment): the Arrow
/// cell is NULL and `text` is PostgreSQL's text output of the value.
struct UnrepresentableValue {
  int64_t row;  // index within the batch being built (0 = first Append* since Finish)
  std::string text;
  friend bool operator==(const UnrepresentableValue&, const UnrepresentableValue&) = default;
  friend std::ostream& operator<<(std::ostream& os, const UnrepresentableValue& v) {
    return os << "{row " << v.row << ": \"" << v.text << "\"}";
  }
};

/// Decodes the values of one column into one Arrow builder. The type dispatch happens once, in
/// MakeColumnDecoder; Append* are the per-cell hot path.
/// Lifecycle: Make → Append* → Finish (returns the array and resets for the next batch).
/// An error from Append* describes the bad input; for list columns the batch under
/// construction may then hold a partial value, so discard the decoder after an error.
/// Thread-compatible.
class ColumnDecoder {
 public:
  virtual ~ColumnDecoder() = default;
  virtual const std::shared_ptr<arrow::DataType>& type() const = 0;
  /// One value in the type's binary send/recv format.
  virtual absl::Status AppendBinary(absl::string_view bytes) = 0;
  /// One value in the type's text output format (DateStyle ISO, IntervalStyle postgres).
  virtual absl::Status AppendText(absl::string_view text) = 0;
  virtual absl::Status AppendNull() = 0;
  virtual int64_t length() const = 0;
  /// Cells appended since the last Finish() that the Arrow type cannot hold, in row order.
  /// Read it before Finish(), which clears it. Not virtual: the batch builder checks it for
  /// every column of every row.
  const std::vector<UnrepresentableValue>& unrepresentable() const { return unrepresentable_; }
  virtual absl::StatusOr<std::shared_ptr<arrow::Array>> Finish() = 0;
  /// Called before a batch's first value: reserves room for as many values (and value bytes) as
  /// the last finished batch held, and a little more. A flow's batches are of similar size, and
  /// growing the buffers value by value instead copies them at every doubling into fresh memory
  /// the kernel must zero (docs/benchmarks.md, seventh session). Only an optimisation: a
  /// reservation that fails leaves the buffers to grow as they would have.
  virtual void ReserveLikeLastBatch() {}

 protected:
  std::vector<UnrepresentableValue> unrepresentable_;
};

/// Builds the decoder for a column of type `type_oid` with modifier `typmod` (atttypmod, or
/// PQfmod; -1 when unknown). Builtin types need no lookup; others (enums, domains, composites,
/// user ranges, arrays of them) are resolved through `lookup`, which may be empty when only
/// builtin types occur. Unknown types decode as utf8: text passes through, binary is an
/// UnimplementedError naming the type.
absl::StatusOr<std::unique_ptr<ColumnDecoder>> MakeColumnDecoder(
    Oid type_oid, int32_t typmod, const TypeLookup& lookup,
    arrow::MemoryPool* pool = arrow::default_memory_pool());

/// Renders one value of type `type_oid` given in binary format as PostgreSQL's text output
/// (the same renderer the utf8-mapped decoders use).
absl::StatusOr<std::string> BinaryToText(Oid type_oid, absl::string_view bytes,
                                         const TypeLookup& lookup);

}  // namespace ductstream::postgres
