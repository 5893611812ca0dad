#pragma once

// Strong identifier types, so that an Oid can never be passed where an Xid is expected
// (Redpanda's named_type). Lsn has its own header because it parses and prints.

#include <compare>
#include <cstdint>
#include <ostream>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ductstream {

template <typename T, typename Tag>
class NamedType {
 public:
  using ValueType = T;
  constexpr NamedType() = default;
  constexpr explicit NamedType(T value) : value_(std::move(value)) {}
  constexpr const T& value() const { return value_; }
  friend constexpr auto operator<=>(const NamedType&, const NamedType&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const NamedType& v) {
    return H::combine(std::move(h), v.value_);
  }
  template <typename Sink>
  friend void AbslStringify(Sink& sink, const NamedType& v) {
    sink.Append(absl::StrCat(v.value_));
  }
  friend std::ostream& operator<<(std::ostream& os, const NamedType& v) { return os << v.value_; }

 private:
  T value_{};
};

/// PostgreSQL transaction id (32-bit, as sent by pgoutput).
using Xid = NamedType<uint32_t, struct XidTag>;
/// PostgreSQL object id: relations, types.
using Oid = NamedType<uint32_t, struct OidTag>;
/// DuctStream flow identifier (a UUID unless the user chose one).
using FlowId = NamedType<std::string, struct FlowIdTag>;

}  // namespace ductstream
