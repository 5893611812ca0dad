#include "ductstream/base/lsn.h"

#include <charconv>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ductstream {
namespace {

// One half of "X/Y": 1 to 8 hex digits, nothing else (no sign, no spaces, no 0x).
bool ParseHalf(absl::string_view text, uint32_t& out) {
  if (text.empty() || text.size() > 8) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out, 16);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

absl::StatusOr<Lsn> Lsn::Parse(absl::string_view text) {
  const size_t slash = text.find('/');
  uint32_t hi = 0;
  uint32_t lo = 0;
  if (slash == absl::string_view::npos || !ParseHalf(text.substr(0, slash), hi) ||
      !ParseHalf(text.substr(slash + 1), lo)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid LSN '", text, "': expected X/Y with hexadecimal X and Y, e.g. 0/16B3748"));
  }
  return Lsn((static_cast<uint64_t>(hi) << 32) | lo);
}

std::string Lsn::ToString() const {
  return absl::StrFormat("%X/%X", static_cast<uint32_t>(value_ >> 32),
                         static_cast<uint32_t>(value_));
}

}  // namespace ductstream
