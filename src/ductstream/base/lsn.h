#pragma once

// Log sequence number: a byte position in PostgreSQL's write-ahead log. Printed and parsed in
// Postgres' `X/Y` form (upper 32 bits / lower 32 bits, hexadecimal).

#include <compare>
#include <cstdint>
#include <ostream>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace ductstream {

class Lsn {
 public:
  constexpr Lsn() = default;
  constexpr explicit Lsn(uint64_t value) : value_(value) {}

  /// Parses "16/B374D848" (either case; each half 1-8 hex digits, as pg_lsn accepts it).
  static absl::StatusOr<Lsn> Parse(absl::string_view text);

  /// 0/0 is InvalidXLogRecPtr in Postgres: "no position".
  static constexpr Lsn Invalid() { return Lsn(); }
  constexpr bool valid() const { return value_ != 0; }
  constexpr uint64_t value() const { return value_; }

  /// Upper-case `X/Y` without zero padding, byte-identical to pg_lsn output up to PostgreSQL 17.
  std::string ToString() const;

  friend constexpr auto operator<=>(Lsn, Lsn) = default;

  template <typename Sink>
  friend void AbslStringify(Sink& sink, Lsn lsn) {
    sink.Append(lsn.ToString());
  }
  friend std::ostream& operator<<(std::ostream& os, Lsn lsn) { return os << lsn.ToString(); }

 private:
  uint64_t value_ = 0;
};

}  // namespace ductstream
