#include "ductstream/base/redact.h"

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ductstream::base {
namespace {

constexpr absl::string_view kMask = "*****";

// key=value form: mask the value of every `password` key (quoted or not, with `\` escapes).
std::string RedactKeyValue(absl::string_view dsn) {
  std::string out;
  size_t i = 0;
  while (i < dsn.size()) {
    // Find the next key at a word boundary.
    size_t key_start = i;
    while (i < dsn.size() && std::isspace(static_cast<unsigned char>(dsn[i]))) out += dsn[i++];
    key_start = i;
    while (i < dsn.size() && dsn[i] != '=' && !std::isspace(static_cast<unsigned char>(dsn[i])))
      ++i;
    absl::string_view key = dsn.substr(key_start, i - key_start);
    absl::StrAppend(&out, key);
    while (i < dsn.size() && std::isspace(static_cast<unsigned char>(dsn[i]))) out += dsn[i++];
    if (i >= dsn.size() || dsn[i] != '=') continue;
    out += dsn[i++];
    while (i < dsn.size() && std::isspace(static_cast<unsigned char>(dsn[i]))) out += dsn[i++];
    const bool secret = absl::EqualsIgnoreCase(key, "password");
    size_t value_start = i;
    if (i < dsn.size() && dsn[i] == '\'') {
      ++i;
      while (i < dsn.size() && dsn[i] != '\'') i += (dsn[i] == '\\' && i + 1 < dsn.size()) ? 2 : 1;
      if (i < dsn.size()) ++i;  // closing quote
    } else {
      while (i < dsn.size() && !std::isspace(static_cast<unsigned char>(dsn[i]))) {
        i += (dsn[i] == '\\' && i + 1 < dsn.size()) ? 2 : 1;
      }
    }
    if (secret) {
      absl::StrAppend(&out, kMask);
    } else {
      absl::StrAppend(&out, dsn.substr(value_start, i - value_start));
    }
  }
  return out;
}

// user:password@host form (after an optional scheme://): mask between the first ':' of the
// userinfo and the last '@' before the host part.
std::string RedactUserInfo(absl::string_view dsn, size_t userinfo_start) {
  size_t end = dsn.find_first_of("/?#", userinfo_start);
  absl::string_view authority =
      dsn.substr(userinfo_start,
                 end == absl::string_view::npos ? absl::string_view::npos : end - userinfo_start);
  size_t at = authority.rfind('@');
  if (at == absl::string_view::npos) return std::string(dsn);
  size_t colon = authority.find(':');
  if (colon == absl::string_view::npos || colon > at) return std::string(dsn);
  std::string out(dsn.substr(0, userinfo_start + colon + 1));
  absl::StrAppend(&out, kMask);
  absl::StrAppend(&out, dsn.substr(userinfo_start + at));
  return out;
}

}  // namespace

std::string RedactDsn(absl::string_view dsn) {
  std::string redacted;
  if (size_t scheme = dsn.find("://"); scheme != absl::string_view::npos) {
    redacted = RedactUserInfo(dsn, scheme + 3);
    // URIs can carry the password as a query parameter too: ?password=secret&...
    size_t q = redacted.find('?');
    if (q != std::string::npos) {
      std::string query = redacted.substr(q + 1);
      std::string rebuilt;
      size_t pos = 0;
      while (pos <= query.size()) {
        size_t amp = query.find('&', pos);
        absl::string_view param(query.data() + pos,
                                (amp == std::string::npos ? query.size() : amp) - pos);
        if (!rebuilt.empty() || pos > 0) rebuilt += '&';
        if (absl::StartsWithIgnoreCase(param, "password=")) {
          absl::StrAppend(&rebuilt, "password=", kMask);
        } else {
          absl::StrAppend(&rebuilt, param);
        }
        if (amp == std::string::npos) break;
        pos = amp + 1;
      }
      redacted = redacted.substr(0, q + 1) + rebuilt;
    }
    return redacted;
  }
  // user:password@host/... (Snowflake's Go driver form) unless an '=' comes first, which
  // makes it a key=value string.
  const size_t at = dsn.find('@');
  const size_t eq = dsn.find('=');
  if (at != absl::string_view::npos && (eq == absl::string_view::npos || at < eq)) {
    return RedactUserInfo(dsn, 0);
  }
  return RedactKeyValue(dsn);
}

}  // namespace ductstream::base
