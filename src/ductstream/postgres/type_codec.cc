#include "ductstream/postgres/type_codec.h"

#include <arrow/buffer_builder.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <type_traits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ductstream/base/status.h"
#include "ductstream/postgres/connection.h"

namespace ductstream::postgres {
namespace {

// ---------------------------------------------------------------------------------------------
// Basics

absl::Status FromArrowError(const arrow::Status& status);

// Called for every cell: the OK path is inlined, the error path is not.
inline absl::Status FromArrow(const arrow::Status& status) {
  if (status.ok()) [[likely]]
    return absl::OkStatus();
  return FromArrowError(status);
}

[[gnu::noinline]] absl::Status FromArrowError(const arrow::Status& status) {
  std::string message = absl::StrCat("arrow: ", status.ToString());
  if (status.IsCapacityError() || status.IsOutOfMemory()) {
    return absl::ResourceExhaustedError(message);  // e.g. a batch over 2 GiB of strings
  }
  return absl::InternalError(message);
}

absl::Status Malformed(absl::string_view type, absl::string_view bytes) {
  return absl::InvalidArgumentError(
      absl::StrCat("malformed binary ", type, " value (", bytes.size(), " bytes)"));
}

absl::Status BadText(absl::string_view type, absl::string_view text) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid text ", type, " value \"", text.substr(0, 64), "\""));
}

// Big-endian reader over a binary value; every read checks the bounds.
class Reader {
 public:
  explicit Reader(absl::string_view bytes) : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  bool done() const { return p_ == end_; }
  template <typename T>
  bool Read(T* out) {
    static_assert(std::is_integral_v<T>);
    if (remaining() < sizeof(T)) return false;
    std::make_unsigned_t<T> v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) {
      v = static_cast<std::make_unsigned_t<T>>((v << 8) | static_cast<uint8_t>(p_[i]));
    }
    p_ += sizeof(T);
    *out = static_cast<T>(v);
    return true;
  }
  bool ReadDouble(double* out) {
    uint64_t bits;
    if (!Read(&bits)) return false;
    std::memcpy(out, &bits, sizeof(bits));
    return true;
  }
  bool ReadBytes(size_t n, absl::string_view* out) {
    if (remaining() < n) return false;
    *out = absl::string_view(p_, n);
    p_ += n;
    return true;
  }
  // A length-prefixed value: int32 length (-1 = NULL, reported as nullopt) then the bytes.
  bool ReadValue(std::optional<absl::string_view>* out) {
    int32_t len;
    if (!Read(&len)) return false;
    if (len == -1) {
      *out = std::nullopt;
      return true;
    }
    absl::string_view v;
    if (len < 0 || !ReadBytes(static_cast<size_t>(len), &v)) return false;
    *out = v;
    return true;
  }
  // A NUL-terminated string.
  bool ReadCString(absl::string_view* out) {
    const void* nul = std::memchr(p_, '\0', remaining());
    if (nul == nullptr) return false;
    size_t n = static_cast<size_t>(static_cast<const char*>(nul) - p_);
    *out = absl::string_view(p_, n);
    p_ += n + 1;
    return true;
  }

 private:
  const char* p_;
  const char* end_;
};

template <typename T>
bool ReadExact(absl::string_view bytes, T* out) {
  Reader r(bytes);
  return r.Read(out) && r.done();
}

void AppendPadded(int64_t v, int width, std::string* out) {
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  int n = static_cast<int>(res.ptr - buf);
  if (n < width) out->append(static_cast<size_t>(width - n), '0');
  out->append(buf, res.ptr);
}

constexpr char kHex[] = "0123456789abcdef";

void AppendHexByte(uint8_t b, std::string* out) {
  out->push_back(kHex[b >> 4]);
  out->push_back(kHex[b & 15]);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsPgSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// Parses an unsigned decimal run starting at *pos; at least one digit.
bool ParseDigits(absl::string_view s, size_t* pos, int64_t* out, int max_digits = 18) {
  size_t start = *pos;
  int64_t v = 0;
  while (*pos < s.size() && s[*pos] >= '0' && s[*pos] <= '9' &&
         static_cast<int>(*pos - start) < max_digits) {
    v = v * 10 + (s[*pos] - '0');
    ++*pos;
  }
  *out = v;
  return *pos > start;
}

// ---------------------------------------------------------------------------------------------
// Calendar (proleptic Gregorian, astronomical years: 1 BC = year 0), as PostgreSQL computes it.

constexpr int64_t kUsecPerSec = 1000000;
constexpr int64_t kUsecPerDay = 86400 * kUsecPerSec;
constexpr int64_t kPgEpochDays = 10957;  // 2000-01-01 - 1970-01-01
constexpr int64_t kPgEpochUsec = kPgEpochDays * kUsecPerDay;

int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, int64_t* m, int64_t* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = yoe + era * 400 + (*m <= 2);
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// "YYYY-MM-DD" (year of era; the caller appends " BC").
void AppendDateIso(int64_t unix_days, std::string* out, bool* bc) {
  int64_t y, m, d;
  CivilFromDays(unix_days, &y, &m, &d);
  *bc = y <= 0;
  AppendPadded(y > 0 ? y : 1 - y, 4, out);
  out->push_back('-');
  AppendPadded(m, 2, out);
  out->push_back('-');
  AppendPadded(d, 2, out);
}

// Seconds with the fraction trimmed of trailing zeros ("05", "05.5", "05.000001").
void AppendSecondsFrac(int64_t sec, int64_t usec, std::string* out) {
  AppendPadded(sec, 2, out);
  if (usec == 0) return;
  char frac[7];
  for (int i = 5; i >= 0; --i) {
    frac[i] = static_cast<char>('0' + usec % 10);
    usec /= 10;
  }
  int n = 6;
  while (n > 0 && frac[n - 1] == '0') --n;
  out->push_back('.');
  out->append(frac, static_cast<size_t>(n));
}

void AppendTimeOfDay(int64_t usec, std::string* out) {
  int64_t h = usec / (3600 * kUsecPerSec);
  usec -= h * 3600 * kUsecPerSec;
  int64_t mi = usec / (60 * kUsecPerSec);
  usec -= mi * 60 * kUsecPerSec;
  int64_t s = usec / kUsecPerSec;
  usec -= s * kUsecPerSec;
  AppendPadded(h, 2, out);
  out->push_back(':');
  AppendPadded(mi, 2, out);
  out->push_back(':');
  AppendSecondsFrac(s, usec, out);
}

// PostgreSQL's EncodeTimezone: `tz` is seconds WEST of UTC (PostgreSQL's internal sign).
void AppendTimezone(int32_t tz, std::string* out) {
  int64_t sec = tz < 0 ? -static_cast<int64_t>(tz) : tz;
  int64_t min = sec / 60;
  sec -= min * 60;
  int64_t hour = min / 60;
  min -= hour * 60;
  out->push_back(tz <= 0 ? '+' : '-');
  AppendPadded(hour, 2, out);
  if (sec != 0) {
    out->push_back(':');
    AppendPadded(min, 2, out);
    out->push_back(':');
    AppendPadded(sec, 2, out);
  } else if (min != 0) {
    out->push_back(':');
    AppendPadded(min, 2, out);
  }
}

// Timestamp in PostgreSQL's microseconds since 2000-01-01, ISO DateStyle; timestamptz in UTC.
void AppendTimestamp(int64_t pg_usec, bool with_tz, std::string* out) {
  if (pg_usec == std::numeric_limits<int64_t>::max()) {
    out->append("infinity");
    return;
  }
  if (pg_usec == std::numeric_limits<int64_t>::min()) {
    out->append("-infinity");
    return;
  }
  int64_t days = FloorDiv(pg_usec, kUsecPerDay);
  int64_t tod = pg_usec - days * kUsecPerDay;
  bool bc;
  AppendDateIso(days + kPgEpochDays, out, &bc);
  out->push_back(' ');
  AppendTimeOfDay(tod, out);
  if (with_tz) out->append("+00");
  if (bc) out->append(" BC");
}

void AppendDate(int32_t pg_days, std::string* out) {
  if (pg_days == std::numeric_limits<int32_t>::max()) {
    out->append("infinity");
    return;
  }
  if (pg_days == std::numeric_limits<int32_t>::min()) {
    out->append("-infinity");
    return;
  }
  bool bc;
  AppendDateIso(int64_t{pg_days} + kPgEpochDays, out, &bc);
  if (bc) out->append(" BC");
}

// Text parsing of ISO dates and times ----------------------------------------------------------

// "YYYY-MM-DD" at *pos; returns astronomical days since 1970 before applying BC (caller).
bool ParseDatePart(absl::string_view s, size_t* pos, int64_t* y, int64_t* m, int64_t* d) {
  if (!ParseDigits(s, pos, y, 9) || *pos >= s.size() || s[*pos] != '-') return false;
  ++*pos;
  if (!ParseDigits(s, pos, m, 2) || *pos >= s.size() || s[*pos] != '-') return false;
  ++*pos;
  if (!ParseDigits(s, pos, d, 2)) return false;
  return *m >= 1 && *m <= 12 && *d >= 1 && *d <= 31;
}

// "HH:MM:SS[.ffffff]" at *pos → microseconds (hours unbounded for intervals).
bool ParseTimePart(absl::string_view s, size_t* pos, int64_t* usec, int max_hour_digits = 2) {
  int64_t h, mi, sec;
  if (!ParseDigits(s, pos, &h, max_hour_digits) || *pos >= s.size() || s[*pos] != ':') {
    return false;
  }
  ++*pos;
  if (!ParseDigits(s, pos, &mi, 2) || *pos >= s.size() || s[*pos] != ':') return false;
  ++*pos;
  if (!ParseDigits(s, pos, &sec, 2)) return false;
  int64_t frac = 0;
  if (*pos < s.size() && s[*pos] == '.') {
    ++*pos;
    int digits = 0;
    while (*pos < s.size() && s[*pos] >= '0' && s[*pos] <= '9') {
      if (digits < 6) {
        frac = frac * 10 + (s[*pos] - '0');
        ++digits;
      }
      ++*pos;
    }
    if (digits == 0) return false;
    for (; digits < 6; ++digits) frac *= 10;
  }
  // Hours are unbounded for intervals: guard the arithmetic against absurd input.
  int64_t total;
  if (__builtin_mul_overflow(h * 3600 + mi * 60 + sec, kUsecPerSec, &total) ||
      __builtin_add_overflow(total, frac, usec)) {
    return false;
  }
  return true;
}

// "+HH[:MM[:SS]]" at *pos → seconds EAST of UTC.
bool ParseOffset(absl::string_view s, size_t* pos, int64_t* east_sec) {
  if (*pos >= s.size() || (s[*pos] != '+' && s[*pos] != '-')) return false;
  bool neg = s[*pos] == '-';
  ++*pos;
  int64_t h, mi = 0, sec = 0;
  if (!ParseDigits(s, pos, &h, 2)) return false;
  if (*pos < s.size() && s[*pos] == ':') {
    ++*pos;
    if (!ParseDigits(s, pos, &mi, 2)) return false;
    if (*pos < s.size() && s[*pos] == ':') {
      ++*pos;
      if (!ParseDigits(s, pos, &sec, 2)) return false;
    }
  }
  *east_sec = (neg ? -1 : 1) * (h * 3600 + mi * 60 + sec);
  return true;
}

bool ParseBc(absl::string_view s, size_t* pos) {
  if (s.substr(*pos) == " BC") {
    *pos = s.size();
    return true;
  }
  return false;
}

// date text → PostgreSQL days since 2000-01-01.
bool ParseDateText(absl::string_view s, int32_t* pg_days) {
  if (s == "infinity") {
    *pg_days = std::numeric_limits<int32_t>::max();
    return true;
  }
  if (s == "-infinity") {
    *pg_days = std::numeric_limits<int32_t>::min();
    return true;
  }
  size_t pos = 0;
  int64_t y, m, d;
  if (!ParseDatePart(s, &pos, &y, &m, &d)) return false;
  if (ParseBc(s, &pos)) y = 1 - y;
  if (pos != s.size()) return false;
  const int64_t days = DaysFromCivil(y, m, d) - kPgEpochDays;
  if (days <= std::numeric_limits<int32_t>::min() || days >= std::numeric_limits<int32_t>::max()) {
    return false;
  }
  *pg_days = static_cast<int32_t>(days);
  return true;
}

// timestamp[tz] text → PostgreSQL microseconds since 2000-01-01 (UTC for timestamptz).
bool ParseTimestampText(absl::string_view s, bool with_tz, int64_t* pg_usec) {
  if (s == "infinity") {
    *pg_usec = std::numeric_limits<int64_t>::max();
    return true;
  }
  if (s == "-infinity") {
    *pg_usec = std::numeric_limits<int64_t>::min();
    return true;
  }
  size_t pos = 0;
  int64_t y, m, d, tod;
  if (!ParseDatePart(s, &pos, &y, &m, &d)) return false;
  if (pos >= s.size() || (s[pos] != ' ' && s[pos] != 'T')) return false;
  ++pos;
  if (!ParseTimePart(s, &pos, &tod)) return false;
  int64_t east = 0;
  if (with_tz && !ParseOffset(s, &pos, &east)) return false;
  if (ParseBc(s, &pos)) y = 1 - y;
  if (pos != s.size()) return false;
  int64_t day_usec;
  return !__builtin_mul_overflow(DaysFromCivil(y, m, d) - kPgEpochDays, kUsecPerDay, &day_usec) &&
         !__builtin_add_overflow(day_usec, tod - east * kUsecPerSec, pg_usec);
}

// ---------------------------------------------------------------------------------------------
// Floats: PostgreSQL's shortest-exact output (extra_float_digits > 0, the default since PG 12).

void AppendFloatShortest(absl::string_view sci, int fixed_max_exp, std::string* out) {
  // `sci` is std::to_chars scientific output: [-]d[.ddd]e[+-]XX.
  bool neg = !sci.empty() && sci[0] == '-';
  if (neg) sci.remove_prefix(1);
  size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e)) {
    if (c != '.') digits.push_back(c);
  }
  int exp = 0;
  absl::string_view es = sci.substr(e + 1);
  bool eneg = es[0] == '-';
  for (char c : es.substr(1)) exp = exp * 10 + (c - '0');
  if (eneg) exp = -exp;
  if (neg) out->push_back('-');
  const int n = static_cast<int>(digits.size());
  if (exp >= -4 && exp < fixed_max_exp) {
    if (exp < 0) {
      out->append("0.");
      out->append(static_cast<size_t>(-exp - 1), '0');
      out->append(digits);
    } else if (n <= exp + 1) {
      out->append(digits);
      out->append(static_cast<size_t>(exp + 1 - n), '0');
    } else {
      out->append(digits, 0, static_cast<size_t>(exp + 1));
      out->push_back('.');
      out->append(digits, static_cast<size_t>(exp + 1));
    }
    return;
  }
  out->push_back(digits[0]);
  if (n > 1) {
    out->push_back('.');
    out->append(digits, 1);
  }
  out->push_back('e');
  out->push_back(exp < 0 ? '-' : '+');
  AppendPadded(exp < 0 ? -exp : exp, 2, out);
}

template <typename F>
void AppendFloat(F v, std::string* out) {
  if (std::isnan(v)) {
    out->append("NaN");
    return;
  }
  if (std::isinf(v)) {
    out->append(v < 0 ? "-Infinity" : "Infinity");
    return;
  }
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  AppendFloatShortest(absl::string_view(buf, static_cast<size_t>(res.ptr - buf)),
                      std::is_same_v<F, float> ? 6 : 15, out);
}

template <typename F>
bool ParseFloatText(absl::string_view s, F* out) {
  if (s == "NaN") {
    *out = std::numeric_limits<F>::quiet_NaN();
    return true;
  }
  if (s == "Infinity") {
    *out = std::numeric_limits<F>::infinity();
    return true;
  }
  if (s == "-Infinity") {
    *out = -std::numeric_limits<F>::infinity();
    return true;
  }
  auto res = std::from_chars(s.data(), s.data() + s.size(), *out);
  return res.ec == std::errc() && res.ptr == s.data() + s.size();
}

// ---------------------------------------------------------------------------------------------
// numeric

constexpr uint16_t kNumericPos = 0x0000;
constexpr uint16_t kNumericNeg = 0x4000;
constexpr uint16_t kNumericNaN = 0xC000;
constexpr uint16_t kNumericPInf = 0xD000;
constexpr uint16_t kNumericNInf = 0xF000;

struct NumericView {
  int16_t ndigits = 0;
  int16_t weight = 0;
  uint16_t sign = 0;
  uint16_t dscale = 0;
  absl::string_view digits;  // ndigits big-endian int16 base-10000 digits
  int16_t digit(int i) const {
    if (i < 0 || i >= ndigits) return 0;
    return static_cast<int16_t>((static_cast<uint8_t>(digits[2 * i]) << 8) |
                                static_cast<uint8_t>(digits[2 * i + 1]));
  }
  bool special() const {
    return sign == kNumericNaN || sign == kNumericPInf || sign == kNumericNInf;
  }
};

bool ParseNumericBinary(absl::string_view bytes, NumericView* v) {
  Reader r(bytes);
  if (!r.Read(&v->ndigits) || !r.Read(&v->weight) || !r.Read(&v->sign) || !r.Read(&v->dscale)) {
    return false;
  }
  if (v->ndigits < 0 || !r.ReadBytes(2 * static_cast<size_t>(v->ndigits), &v->digits) ||
      !r.done()) {
    return false;
  }
  if (v->sign != kNumericPos && v->sign != kNumericNeg && !v->special()) return false;
  for (int i = 0; i < v->ndigits; ++i) {
    if (v->digit(i) < 0 || v->digit(i) > 9999) return false;
  }
  return true;
}

// PostgreSQL's get_str_from_var.
void AppendNumericText(const NumericView& v, std::string* out) {
  if (v.sign == kNumericNaN) {
    out->append("NaN");
    return;
  }
  if (v.sign == kNumericPInf) {
    out->append("Infinity");
    return;
  }
  if (v.sign == kNumericNInf) {
    out->append("-Infinity");
    return;
  }
  if (v.sign == kNumericNeg && v.ndigits > 0) out->push_back('-');
  if (v.weight < 0) {
    out->push_back('0');
  } else {
    for (int w = v.weight; w >= 0; --w) {
      int16_t d = v.digit(v.weight - w);
      if (w == v.weight) {
        absl::StrAppend(out, d);
      } else {
        AppendPadded(d, 4, out);
      }
    }
  }
  if (v.dscale > 0) {
    out->push_back('.');
    int remaining = v.dscale;
    for (int w = -1; remaining > 0; --w) {
      int16_t d = v.digit(v.weight - w);
      char group[4];
      for (int k = 3; k >= 0; --k) {
        group[k] = static_cast<char>('0' + d % 10);
        d = static_cast<int16_t>(d / 10);
      }
      int take = remaining < 4 ? remaining : 4;
      out->append(group, static_cast<size_t>(take));
      remaining -= take;
    }
  }
}

// numeric value × 10^scale as a Decimal128; false if it does not fit in `precision` digits or
// would lose nonzero fractional digits.
bool NumericToDecimal(const NumericView& v, int32_t precision, int32_t scale,
                      arrow::Decimal128* out) {
  // Digit i is worth digit(i) * 10^(4 * (weight - i)); scaled by 10^scale its last decimal
  // digit has exponent e = 4 * (weight - i) + scale.
  int first = 0;
  while (first < v.ndigits && v.digit(first) == 0) ++first;
  if (first < v.ndigits) {
    // Bound the number of digits first, so the accumulation below cannot overflow.
    int lead = 1;
    for (int d = v.digit(first); d >= 10; d /= 10) ++lead;
    if (4 * (int64_t{v.weight} - first) + scale + lead > precision) return false;
  }
  arrow::Decimal128 acc(0);
  int64_t last_e = 0;
  int i = first;
  for (; i < v.ndigits; ++i) {
    const int64_t e = 4 * (int64_t{v.weight} - i) + scale;
    const int16_t d = v.digit(i);
    if (e >= 0) {
      acc = acc * arrow::Decimal128(10000) + arrow::Decimal128(d);
      last_e = e;
    } else if (e > -4) {
      // A group straddling the scale: its low -e digits must be zero.
      int64_t div = 1;
      for (int64_t k = 0; k < -e; ++k) div *= 10;
      if (d % div != 0) return false;
      acc = acc * arrow::Decimal128(10000 / div) + arrow::Decimal128(d / div);
      last_e = 0;
      ++i;
      break;
    } else {
      break;
    }
  }
  for (; i < v.ndigits; ++i) {
    if (v.digit(i) != 0) return false;  // nonzero digits beyond the column's scale
  }
  if (last_e > 0) acc *= arrow::Decimal128::GetScaleMultiplier(static_cast<int32_t>(last_e));
  if (!acc.FitsInPrecision(precision)) return false;
  if (v.sign == kNumericNeg) acc.Negate();
  *out = acc;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Interval

struct Interval {
  int64_t usec = 0;
  int32_t days = 0;
  int32_t months = 0;
};

void AppendPgIntPart(int64_t value, absl::string_view unit, bool* is_zero, bool* is_before,
                     std::string* out) {
  if (value == 0) return;
  if (!*is_zero) out->push_back(' ');
  if (*is_before && value > 0) out->push_back('+');
  absl::StrAppend(out, value, " ", unit, value != 1 ? "s" : "");
  *is_before = value < 0;
  *is_zero = false;
}

// IntervalStyle postgres (EncodeInterval, INTSTYLE_POSTGRES).
void AppendInterval(const Interval& iv, std::string* out) {
  int64_t year = iv.months / 12;
  int64_t mon = iv.months % 12;
  int64_t time = iv.usec;
  int64_t hour = time / (3600 * kUsecPerSec);
  time -= hour * 3600 * kUsecPerSec;
  int64_t min = time / (60 * kUsecPerSec);
  time -= min * 60 * kUsecPerSec;
  int64_t sec = time / kUsecPerSec;
  int64_t fsec = time - sec * kUsecPerSec;
  bool is_zero = true, is_before = false;
  AppendPgIntPart(year, "year", &is_zero, &is_before, out);
  AppendPgIntPart(mon, "mon", &is_zero, &is_before, out);
  AppendPgIntPart(iv.days, "day", &is_zero, &is_before, out);
  if (is_zero || hour != 0 || min != 0 || sec != 0 || fsec != 0) {
    bool minus = hour < 0 || min < 0 || sec < 0 || fsec < 0;
    if (!is_zero) out->push_back(' ');
    if (minus) {
      out->push_back('-');
    } else if (is_before) {
      out->push_back('+');
    }
    auto abs64 = [](int64_t x) { return x < 0 ? -x : x; };
    AppendPadded(abs64(hour), 2, out);
    out->push_back(':');
    AppendPadded(abs64(min), 2, out);
    out->push_back(':');
    AppendSecondsFrac(abs64(sec), abs64(fsec), out);
  }
}

bool ParseIntervalText(absl::string_view s, Interval* iv) {
  *iv = Interval{};
  size_t pos = 0;
  bool any = false;
  while (pos < s.size()) {
    while (pos < s.size() && s[pos] == ' ') ++pos;
    if (pos >= s.size()) break;
    bool neg = false;
    if (s[pos] == '+' || s[pos] == '-') {
      neg = s[pos] == '-';
      ++pos;
    }
    size_t colon = s.find(':', pos);
    size_t space = s.find(' ', pos);
    if (colon != absl::string_view::npos && (space == absl::string_view::npos || colon < space)) {
      int64_t usec;
      if (!ParseTimePart(s, &pos, &usec, 12)) return false;
      iv->usec = neg ? -usec : usec;
      any = true;
      continue;
    }
    int64_t n;
    if (!ParseDigits(s, &pos, &n, 12)) return false;
    if (neg) n = -n;
    if (pos >= s.size() || s[pos] != ' ') return false;
    ++pos;
    size_t end = s.find(' ', pos);
    absl::string_view unit = s.substr(pos, end == absl::string_view::npos ? end : end - pos);
    pos = end == absl::string_view::npos ? s.size() : end;
    if (unit == "year" || unit == "years") {
      iv->months = static_cast<int32_t>(iv->months + n * 12);
    } else if (unit == "mon" || unit == "mons") {
      iv->months = static_cast<int32_t>(iv->months + n);
    } else if (unit == "day" || unit == "days") {
      iv->days = static_cast<int32_t>(iv->days + n);
    } else {
      return false;
    }
    any = true;
  }
  return any;
}

// ---------------------------------------------------------------------------------------------
// Binary → text renderers for the scalar types.

using RenderFn = absl::Status (*)(absl::string_view bytes, std::string* out);

absl::Status RenderIdentity(absl::string_view b, std::string* out) {
  out->append(b.data(), b.size());
  return absl::OkStatus();
}

absl::Status RenderVersioned(absl::string_view b, std::string* out) {
  if (b.empty() || b[0] != 1) return Malformed("jsonb/jsonpath", b);
  b.remove_prefix(1);
  out->append(b.data(), b.size());
  return absl::OkStatus();
}

absl::Status RenderBool(absl::string_view b, std::string* out) {
  if (b.size() != 1) return Malformed("bool", b);
  out->push_back(b[0] ? 't' : 'f');
  return absl::OkStatus();
}

template <typename T>
absl::Status RenderInt(absl::string_view b, std::string* out) {
  T v;
  if (!ReadExact(b, &v)) return Malformed("integer", b);
  absl::StrAppend(out, v);
  return absl::OkStatus();
}

absl::Status RenderFloat4(absl::string_view b, std::string* out) {
  uint32_t bits;
  if (!ReadExact(b, &bits)) return Malformed("float4", b);
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  AppendFloat(f, out);
  return absl::OkStatus();
}

absl::Status RenderFloat8(absl::string_view b, std::string* out) {
  uint64_t bits;
  if (!ReadExact(b, &bits)) return Malformed("float8", b);
  double f;
  std::memcpy(&f, &bits, sizeof(f));
  AppendFloat(f, out);
  return absl::OkStatus();
}

absl::Status RenderNumeric(absl::string_view b, std::string* out) {
  NumericView v;
  if (!ParseNumericBinary(b, &v)) return Malformed("numeric", b);
  AppendNumericText(v, out);
  return absl::OkStatus();
}

// money in the C locale: "$1,234.56", "-$1,234.56".
absl::Status RenderMoney(absl::string_view b, std::string* out) {
  int64_t cents;
  if (!ReadExact(b, &cents)) return Malformed("money", b);
  uint64_t mag =
      cents < 0 ? uint64_t{0} - static_cast<uint64_t>(cents) : static_cast<uint64_t>(cents);
  if (cents < 0) out->push_back('-');
  out->push_back('$');
  std::string whole = absl::StrCat(mag / 100);
  for (size_t i = 0; i < whole.size(); ++i) {
    if (i > 0 && (whole.size() - i) % 3 == 0) out->push_back(',');
    out->push_back(whole[i]);
  }
  out->push_back('.');
  AppendPadded(static_cast<int64_t>(mag % 100), 2, out);
  return absl::OkStatus();
}

// "char": one byte; high-bit bytes print as \ooo (PostgreSQL 15 charout), NUL as "".
absl::Status RenderChar(absl::string_view b, std::string* out) {
  if (b.size() > 1) return Malformed("\"char\"", b);
  if (b.empty() || b[0] == '\0') return absl::OkStatus();
  uint8_t c = static_cast<uint8_t>(b[0]);
  if (c & 0x80) {
    out->push_back('\\');
    out->push_back(static_cast<char>('0' + ((c >> 6) & 7)));
    out->push_back(static_cast<char>('0' + ((c >> 3) & 7)));
    out->push_back(static_cast<char>('0' + (c & 7)));
  } else {
    out->push_back(static_cast<char>(c));
  }
  return absl::OkStatus();
}

absl::Status RenderBytea(absl::string_view b, std::string* out) {
  out->append("\\x");
  for (char c : b) AppendHexByte(static_cast<uint8_t>(c), out);
  return absl::OkStatus();
}

absl::Status RenderUuid(absl::string_view b, std::string* out) {
  if (b.size() != 16) return Malformed("uuid", b);
  // Written in place: one resize instead of 36 push_backs (uuid keys are common and hot).
  static constexpr char kHex[] = "0123456789abcdef";
  const size_t at = out->size();
  out->resize(at + 36);
  char* p = out->data() + at;
  for (size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
    const auto v = static_cast<uint8_t>(b[i]);
    *p++ = kHex[v >> 4];
    *p++ = kHex[v & 15];
  }
  return absl::OkStatus();
}

absl::Status RenderDate(absl::string_view b, std::string* out) {
  int32_t days;
  if (!ReadExact(b, &days)) return Malformed("date", b);
  AppendDate(days, out);
  return absl::OkStatus();
}

absl::Status RenderTime(absl::string_view b, std::string* out) {
  int64_t usec;
  if (!ReadExact(b, &usec) || usec < 0 || usec > kUsecPerDay) return Malformed("time", b);
  AppendTimeOfDay(usec, out);
  return absl::OkStatus();
}

absl::Status RenderTimetz(absl::string_view b, std::string* out) {
  Reader r(b);
  int64_t usec;
  int32_t zone;
  if (!r.Read(&usec) || !r.Read(&zone) || !r.done() || usec < 0 || usec > kUsecPerDay) {
    return Malformed("timetz", b);
  }
  AppendTimeOfDay(usec, out);
  AppendTimezone(zone, out);
  return absl::OkStatus();
}

absl::Status RenderTimestamp(absl::string_view b, std::string* out) {
  int64_t usec;
  if (!ReadExact(b, &usec)) return Malformed("timestamp", b);
  AppendTimestamp(usec, /*with_tz=*/false, out);
  return absl::OkStatus();
}

absl::Status RenderTimestamptz(absl::string_view b, std::string* out) {
  int64_t usec;
  if (!ReadExact(b, &usec)) return Malformed("timestamptz", b);
  AppendTimestamp(usec, /*with_tz=*/true, out);
  return absl::OkStatus();
}

bool ParseIntervalBinary(absl::string_view b, Interval* iv) {
  Reader r(b);
  return r.Read(&iv->usec) && r.Read(&iv->days) && r.Read(&iv->months) && r.done();
}

absl::Status RenderInterval(absl::string_view b, std::string* out) {
  Interval iv;
  if (!ParseIntervalBinary(b, &iv)) return Malformed("interval", b);
  AppendInterval(iv, out);
  return absl::OkStatus();
}

// inet/cidr: family (2 = IPv4, 3 = IPv6), bits, is_cidr, address length, address.
absl::Status RenderInetImpl(absl::string_view b, bool cidr_type, std::string* out) {
  Reader r(b);
  uint8_t family, bits, is_cidr, nb;
  absl::string_view addr;
  if (!r.Read(&family) || !r.Read(&bits) || !r.Read(&is_cidr) || !r.Read(&nb) ||
      !r.ReadBytes(nb, &addr) || !r.done()) {
    return Malformed("inet", b);
  }
  const auto* a = reinterpret_cast<const uint8_t*>(addr.data());
  if (family == 2) {
    if (nb != 4 || bits > 32) return Malformed("inet", b);
    absl::StrAppend(out, a[0], ".", a[1], ".", a[2], ".", a[3]);
    if (bits != 32 || cidr_type) absl::StrAppend(out, "/", bits);
    return absl::OkStatus();
  }
  if (family != 3 || nb != 16 || bits > 128) return Malformed("inet", b);
  uint16_t words[8];
  for (int i = 0; i < 8; ++i) words[i] = static_cast<uint16_t>((a[2 * i] << 8) | a[2 * i + 1]);
  int best_base = -1, best_len = 0, cur_base = -1, cur_len = 0;
  for (int i = 0; i < 8; ++i) {
    if (words[i] == 0) {
      if (cur_base == -1) {
        cur_base = i;
        cur_len = 1;
      } else {
        ++cur_len;
      }
    } else if (cur_base != -1) {
      if (best_base == -1 || cur_len > best_len) {
        best_base = cur_base;
        best_len = cur_len;
      }
      cur_base = -1;
    }
  }
  if (cur_base != -1 && (best_base == -1 || cur_len > best_len)) {
    best_base = cur_base;
    best_len = cur_len;
  }
  if (best_base != -1 && best_len < 2) best_base = -1;
  for (int i = 0; i < 8; ++i) {
    if (best_base != -1 && i >= best_base && i < best_base + best_len) {
      if (i == best_base) out->push_back(':');
      continue;
    }
    if (i != 0) out->push_back(':');
    if (i == 6 && best_base == 0 &&
        (best_len == 6 || (best_len == 7 && words[7] != 0x0001) ||
         (best_len == 5 && words[5] == 0xffff))) {
      absl::StrAppend(out, a[12], ".", a[13], ".", a[14], ".", a[15]);
      break;
    }
    char buf[8];
    auto res = std::to_chars(buf, buf + sizeof(buf), words[i], 16);
    out->append(buf, res.ptr);
  }
  if (best_base != -1 && best_base + best_len == 8) out->push_back(':');
  if (bits != 128 || cidr_type) absl::StrAppend(out, "/", bits);
  return absl::OkStatus();
}

absl::Status RenderInet(absl::string_view b, std::string* out) {
  return RenderInetImpl(b, false, out);
}
absl::Status RenderCidr(absl::string_view b, std::string* out) {
  return RenderInetImpl(b, true, out);
}

absl::Status RenderMacaddr(absl::string_view b, std::string* out) {
  if (b.size() != 6 && b.size() != 8) return Malformed("macaddr", b);
  for (size_t i = 0; i < b.size(); ++i) {
    if (i > 0) out->push_back(':');
    AppendHexByte(static_cast<uint8_t>(b[i]), out);
  }
  return absl::OkStatus();
}

absl::Status RenderBit(absl::string_view b, std::string* out) {
  Reader r(b);
  int32_t nbits;
  if (!r.Read(&nbits) || nbits < 0 || r.remaining() != (static_cast<size_t>(nbits) + 7) / 8) {
    return Malformed("bit", b);
  }
  absl::string_view data;
  r.ReadBytes(r.remaining(), &data);
  for (int32_t i = 0; i < nbits; ++i) {
    uint8_t byte = static_cast<uint8_t>(data[static_cast<size_t>(i / 8)]);
    out->push_back((byte >> (7 - i % 8)) & 1 ? '1' : '0');
  }
  return absl::OkStatus();
}

absl::Status RenderPgLsn(absl::string_view b, std::string* out) {
  uint64_t lsn;
  if (!ReadExact(b, &lsn)) return Malformed("pg_lsn", b);
  char buf[40];
  auto r1 = std::to_chars(buf, buf + 20, static_cast<uint32_t>(lsn >> 32), 16);
  *r1.ptr++ = '/';
  auto r2 = std::to_chars(r1.ptr, buf + sizeof(buf), static_cast<uint32_t>(lsn), 16);
  for (char* p = buf; p < r2.ptr; ++p) *p = absl::ascii_toupper(static_cast<unsigned char>(*p));
  out->append(buf, r2.ptr);
  return absl::OkStatus();
}

bool AppendPoints(Reader& r, int64_t n, std::string* out) {
  for (int64_t i = 0; i < n; ++i) {
    double x, y;
    if (!r.ReadDouble(&x) || !r.ReadDouble(&y)) return false;
    if (i > 0) out->push_back(',');
    out->push_back('(');
    AppendFloat(x, out);
    out->push_back(',');
    AppendFloat(y, out);
    out->push_back(')');
  }
  return true;
}

absl::Status RenderPoint(absl::string_view b, std::string* out) {
  Reader r(b);
  if (!AppendPoints(r, 1, out) || !r.done()) return Malformed("point", b);
  return absl::OkStatus();
}

absl::Status RenderLine(absl::string_view b, std::string* out) {
  Reader r(b);
  double v[3];
  for (double& d : v) {
    if (!r.ReadDouble(&d)) return Malformed("line", b);
  }
  if (!r.done()) return Malformed("line", b);
  out->push_back('{');
  for (int i = 0; i < 3; ++i) {
    if (i > 0) out->push_back(',');
    AppendFloat(v[i], out);
  }
  out->push_back('}');
  return absl::OkStatus();
}

absl::Status RenderLseg(absl::string_view b, std::string* out) {
  Reader r(b);
  out->push_back('[');
  if (!AppendPoints(r, 2, out) || !r.done()) return Malformed("lseg", b);
  out->push_back(']');
  return absl::OkStatus();
}

absl::Status RenderBox(absl::string_view b, std::string* out) {
  Reader r(b);
  if (!AppendPoints(r, 2, out) || !r.done()) return Malformed("box", b);
  return absl::OkStatus();
}

absl::Status RenderPath(absl::string_view b, std::string* out) {
  Reader r(b);
  uint8_t closed;
  int32_t n;
  if (!r.Read(&closed) || !r.Read(&n) || n < 0 || r.remaining() != 16 * static_cast<size_t>(n)) {
    return Malformed("path", b);
  }
  out->push_back(closed ? '(' : '[');
  AppendPoints(r, n, out);
  out->push_back(closed ? ')' : ']');
  return absl::OkStatus();
}

absl::Status RenderPolygon(absl::string_view b, std::string* out) {
  Reader r(b);
  int32_t n;
  if (!r.Read(&n) || n < 0 || r.remaining() != 16 * static_cast<size_t>(n)) {
    return Malformed("polygon", b);
  }
  out->push_back('(');
  AppendPoints(r, n, out);
  out->push_back(')');
  return absl::OkStatus();
}

absl::Status RenderCircle(absl::string_view b, std::string* out) {
  Reader r(b);
  out->push_back('<');
  double radius;
  if (!AppendPoints(r, 1, out) || !r.ReadDouble(&radius) || !r.done()) {
    return Malformed("circle", b);
  }
  out->push_back(',');
  AppendFloat(radius, out);
  out->push_back('>');
  return absl::OkStatus();
}

absl::Status RenderTsvector(absl::string_view b, std::string* out) {
  Reader r(b);
  int32_t n;
  if (!r.Read(&n) || n < 0) return Malformed("tsvector", b);
  for (int32_t i = 0; i < n; ++i) {
    absl::string_view lexeme;
    uint16_t npos;
    if (!r.ReadCString(&lexeme) || !r.Read(&npos)) return Malformed("tsvector", b);
    if (i > 0) out->push_back(' ');
    out->push_back('\'');
    for (char c : lexeme) {
      if (c == '\'' || c == '\\') out->push_back(c);
      out->push_back(c);
    }
    out->push_back('\'');
    for (uint16_t k = 0; k < npos; ++k) {
      uint16_t pos;
      if (!r.Read(&pos)) return Malformed("tsvector", b);
      out->push_back(k == 0 ? ':' : ',');
      absl::StrAppend(out, pos & 0x3fff);
      switch (pos >> 14) {
        case 3:
          out->push_back('A');
          break;
        case 2:
          out->push_back('B');
          break;
        case 1:
          out->push_back('C');
          break;
        default:
          break;
      }
    }
  }
  if (!r.done()) return Malformed("tsvector", b);
  return absl::OkStatus();
}

// tsquery_send: int32 item count, then the items in stored order (an operator, its right
// operand, then its left operand): int8 type (1 operand, 2 operator); an operand is int8 weight
// bits, int8 prefix flag, NUL-terminated text; an operator is int8 oper (1 NOT, 2 AND, 3 OR,
// 4 PHRASE) plus int16 distance for PHRASE. Rendered like tsqueryout's infix().
struct TsQueryItem {
  uint8_t type = 0;
  uint8_t weight = 0;
  uint8_t prefix = 0;
  uint8_t oper = 0;
  int16_t distance = 0;
  absl::string_view operand;
};

int TsQueryPriority(uint8_t oper) {
  switch (oper) {
    case 1:
      return 4;  // NOT
    case 2:
      return 2;  // AND
    case 3:
      return 1;  // OR
    default:
      return 3;  // PHRASE
  }
}

bool TsQueryInfix(const std::vector<TsQueryItem>& items, size_t* cur, int parent_priority,
                  bool right_phrase, int depth, std::string* out) {
  if (*cur >= items.size() || depth > 1000) return false;
  const TsQueryItem& item = items[(*cur)++];
  if (item.type == 1) {
    out->push_back('\'');
    for (char c : item.operand) {
      if (c == '\'' || c == '\\') out->push_back(c);
      out->push_back(c);
    }
    out->push_back('\'');
    if (item.weight != 0 || item.prefix != 0) {
      out->push_back(':');
      if (item.prefix) out->push_back('*');
      if (item.weight & 8) out->push_back('A');
      if (item.weight & 4) out->push_back('B');
      if (item.weight & 2) out->push_back('C');
      if (item.weight & 1) out->push_back('D');
    }
    return true;
  }
  const int priority = TsQueryPriority(item.oper);
  if (item.oper == 1) {
    if (priority < parent_priority) out->append("( ");
    out->push_back('!');
    if (!TsQueryInfix(items, cur, priority, false, depth + 1, out)) return false;
    if (priority < parent_priority) out->append(" )");
    return true;
  }
  const bool paren = priority < parent_priority || (item.oper == 4 && right_phrase);
  if (paren) out->append("( ");
  std::string right;
  if (!TsQueryInfix(items, cur, priority, item.oper == 4, depth + 1, &right)) return false;
  if (!TsQueryInfix(items, cur, priority, false, depth + 1, out)) return false;
  switch (item.oper) {
    case 3:
      out->append(" | ");
      break;
    case 2:
      out->append(" & ");
      break;
    default:
      if (item.distance != 1) {
        absl::StrAppend(out, " <", item.distance, "> ");
      } else {
        out->append(" <-> ");
      }
  }
  out->append(right);
  if (paren) out->append(" )");
  return true;
}

absl::Status RenderTsquery(absl::string_view b, std::string* out) {
  Reader r(b);
  int32_t n;
  if (!r.Read(&n) || n < 0 || static_cast<size_t>(n) > b.size()) return Malformed("tsquery", b);
  std::vector<TsQueryItem> items(static_cast<size_t>(n));
  for (TsQueryItem& item : items) {
    if (!r.Read(&item.type)) return Malformed("tsquery", b);
    if (item.type == 1) {
      if (!r.Read(&item.weight) || !r.Read(&item.prefix) || !r.ReadCString(&item.operand)) {
        return Malformed("tsquery", b);
      }
    } else if (item.type == 2) {
      if (!r.Read(&item.oper) || item.oper < 1 || item.oper > 4) return Malformed("tsquery", b);
      if (item.oper == 4 && !r.Read(&item.distance)) return Malformed("tsquery", b);
    } else {
      return Malformed("tsquery", b);
    }
  }
  if (!r.done()) return Malformed("tsquery", b);
  if (items.empty()) return absl::OkStatus();
  size_t cur = 0;
  if (!TsQueryInfix(items, &cur, -1, false, 0, out) || cur != items.size()) {
    return Malformed("tsquery", b);
  }
  return absl::OkStatus();
}

// tid: int32 block, int16 offset → "(0,1)".
absl::Status RenderTid(absl::string_view b, std::string* out) {
  Reader r(b);
  uint32_t block;
  uint16_t offset;
  if (!r.Read(&block) || !r.Read(&offset) || !r.done()) return Malformed("tid", b);
  absl::StrAppend(out, "(", block, ",", offset, ")");
  return absl::OkStatus();
}

// int2vector / oidvector: array_send format, printed space-separated without braces.
template <typename T>
absl::Status RenderVector(absl::string_view b, std::string* out) {
  Reader r(b);
  int32_t ndim, flags, size, lbound;
  uint32_t elem;
  if (!r.Read(&ndim) || !r.Read(&flags) || !r.Read(&elem) || ndim < 0 || ndim > 1) {
    return Malformed("vector", b);
  }
  if (ndim == 0) return r.done() ? absl::OkStatus() : Malformed("vector", b);
  if (!r.Read(&size) || !r.Read(&lbound) || size < 0) return Malformed("vector", b);
  for (int32_t i = 0; i < size; ++i) {
    int32_t len;
    T v;
    if (!r.Read(&len) || len != static_cast<int32_t>(sizeof(T)) || !r.Read(&v)) {
      return Malformed("vector", b);
    }
    if (i > 0) out->push_back(' ');
    absl::StrAppend(out, v);
  }
  if (!r.done()) return Malformed("vector", b);
  return absl::OkStatus();
}

absl::Status RenderSnapshot(absl::string_view b, std::string* out) {
  Reader r(b);
  int32_t nxip;
  int64_t xmin, xmax;
  if (!r.Read(&nxip) || !r.Read(&xmin) || !r.Read(&xmax) || nxip < 0) {
    return Malformed("txid_snapshot", b);
  }
  absl::StrAppend(out, xmin, ":", xmax, ":");
  for (int32_t i = 0; i < nxip; ++i) {
    int64_t xip;
    if (!r.Read(&xip)) return Malformed("txid_snapshot", b);
    if (i > 0) out->push_back(',');
    absl::StrAppend(out, xip);
  }
  if (!r.done()) return Malformed("txid_snapshot", b);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Builtin type table

enum class Kind {
  kBool,
  kInt2,
  kInt4,
  kInt8,
  kOid,
  kFloat4,
  kFloat8,
  kNumeric,
  kMoney,
  kText,       // utf8, binary = text bytes
  kVersioned,  // utf8, binary = version byte 1 + text (jsonb, jsonpath)
  kBytea,
  kDate,
  kTime,
  kTimestamp,
  kTimestamptz,
  kInterval,
  kRendered,  // utf8 rendered from binary by `render`
  kRange,
  kMultirange,
  kRecord,
};

struct Builtin {
  uint32_t oid;
  uint32_t array_oid;
  const char* name;
  Kind kind;
  RenderFn render;
  uint32_t subtype = 0;  // ranges and multiranges
};

constexpr Builtin kBuiltins[] = {
    {16, 1000, "bool", Kind::kBool, RenderBool},
    {17, 1001, "bytea", Kind::kBytea, RenderBytea},
    {18, 1002, "char", Kind::kRendered, RenderChar},
    {19, 1003, "name", Kind::kText, RenderIdentity},
    {20, 1016, "int8", Kind::kInt8, RenderInt<int64_t>},
    {21, 1005, "int2", Kind::kInt2, RenderInt<int16_t>},
    {23, 1007, "int4", Kind::kInt4, RenderInt<int32_t>},
    {25, 1009, "text", Kind::kText, RenderIdentity},
    {26, 1028, "oid", Kind::kOid, RenderInt<uint32_t>},
    {22, 1006, "int2vector", Kind::kRendered, RenderVector<int16_t>},
    {27, 1010, "tid", Kind::kRendered, RenderTid},
    {28, 1011, "xid", Kind::kRendered, RenderInt<uint32_t>},
    {29, 1012, "cid", Kind::kRendered, RenderInt<uint32_t>},
    {30, 1013, "oidvector", Kind::kRendered, RenderVector<uint32_t>},
    {1790, 2201, "refcursor", Kind::kText, RenderIdentity},
    {2275, 1263, "cstring", Kind::kText, RenderIdentity},
    {5069, 271, "xid8", Kind::kRendered, RenderInt<uint64_t>},
    {114, 199, "json", Kind::kText, RenderIdentity},
    {142, 143, "xml", Kind::kText, RenderIdentity},
    {600, 1017, "point", Kind::kRendered, RenderPoint},
    {601, 1018, "lseg", Kind::kRendered, RenderLseg},
    {602, 1019, "path", Kind::kRendered, RenderPath},
    {603, 1020, "box", Kind::kRendered, RenderBox},
    {604, 1027, "polygon", Kind::kRendered, RenderPolygon},
    {628, 629, "line", Kind::kRendered, RenderLine},
    {650, 651, "cidr", Kind::kRendered, RenderCidr},
    {700, 1021, "float4", Kind::kFloat4, RenderFloat4},
    {701, 1022, "float8", Kind::kFloat8, RenderFloat8},
    {705, 0, "unknown", Kind::kText, RenderIdentity},
    {718, 719, "circle", Kind::kRendered, RenderCircle},
    {774, 775, "macaddr8", Kind::kRendered, RenderMacaddr},
    {790, 791, "money", Kind::kMoney, RenderMoney},
    {829, 1040, "macaddr", Kind::kRendered, RenderMacaddr},
    {869, 1041, "inet", Kind::kRendered, RenderInet},
    {1042, 1014, "bpchar", Kind::kText, RenderIdentity},
    {1043, 1015, "varchar", Kind::kText, RenderIdentity},
    {1082, 1182, "date", Kind::kDate, RenderDate},
    {1083, 1183, "time", Kind::kTime, RenderTime},
    {1114, 1115, "timestamp", Kind::kTimestamp, RenderTimestamp},
    {1184, 1185, "timestamptz", Kind::kTimestamptz, RenderTimestamptz},
    {1186, 1187, "interval", Kind::kInterval, RenderInterval},
    {1266, 1270, "timetz", Kind::kRendered, RenderTimetz},
    {1560, 1561, "bit", Kind::kRendered, RenderBit},
    {1562, 1563, "varbit", Kind::kRendered, RenderBit},
    {1700, 1231, "numeric", Kind::kNumeric, RenderNumeric},
    {2249, 2287, "record", Kind::kRecord, nullptr},
    {2950, 2951, "uuid", Kind::kRendered, RenderUuid},
    {2970, 2949, "txid_snapshot", Kind::kRendered, RenderSnapshot},
    {3220, 3221, "pg_lsn", Kind::kRendered, RenderPgLsn},
    {3614, 3643, "tsvector", Kind::kRendered, RenderTsvector},
    {3615, 3645, "tsquery", Kind::kRendered, RenderTsquery},
    {3802, 3807, "jsonb", Kind::kVersioned, RenderVersioned},
    {4072, 4073, "jsonpath", Kind::kVersioned, RenderVersioned},
    {5038, 5039, "pg_snapshot", Kind::kRendered, RenderSnapshot},
    {3904, 3905, "int4range", Kind::kRange, nullptr, 23},
    {3906, 3907, "numrange", Kind::kRange, nullptr, 1700},
    {3908, 3909, "tsrange", Kind::kRange, nullptr, 1114},
    {3910, 3911, "tstzrange", Kind::kRange, nullptr, 1184},
    {3912, 3913, "daterange", Kind::kRange, nullptr, 1082},
    {3926, 3927, "int8range", Kind::kRange, nullptr, 20},
    {4451, 6150, "int4multirange", Kind::kMultirange, nullptr, 23},
    {4532, 6151, "nummultirange", Kind::kMultirange, nullptr, 1700},
    {4533, 6152, "tsmultirange", Kind::kMultirange, nullptr, 1114},
    {4534, 6153, "tstzmultirange", Kind::kMultirange, nullptr, 1184},
    {4535, 6155, "datemultirange", Kind::kMultirange, nullptr, 1082},
    {4536, 6157, "int8multirange", Kind::kMultirange, nullptr, 20},
};

const Builtin* FindBuiltin(uint32_t oid) {
  for (const Builtin& b : kBuiltins) {
    if (b.oid == oid) return &b;
  }
  return nullptr;
}

const Builtin* FindBuiltinArray(uint32_t array_oid) {
  for (const Builtin& b : kBuiltins) {
    if (b.array_oid == array_oid && array_oid != 0) return &b;
  }
  return nullptr;
}

// What a type oid turned out to be.
struct Resolved {
  enum class Category { kBuiltin, kArray, kDomain, kEnum, kComposite, kRange, kMultirange, kOther };
  Category category = Category::kOther;
  const Builtin* builtin = nullptr;
  uint32_t related = 0;  // element (array), base (domain), subtype (range, multirange)
  int32_t base_typmod = -1;
  std::string name;
};

absl::StatusOr<Resolved> Resolve(uint32_t oid, const TypeLookup& lookup) {
  Resolved r;
  if (const Builtin* b = FindBuiltin(oid)) {
    r.category = Resolved::Category::kBuiltin;
    r.builtin = b;
    r.name = b->name;
    return r;
  }
  if (const Builtin* b = FindBuiltinArray(oid)) {
    r.category = Resolved::Category::kArray;
    r.related = b->oid;
    r.name = absl::StrCat("_", b->name);
    return r;
  }
  if (!lookup) {
    return absl::NotFoundError(absl::StrCat("type oid ", oid, " is not builtin and no lookup"));
  }
  auto info = lookup(Oid(oid));
  if (!info.ok()) {
    return base::Annotate(info.status(), absl::StrCat("resolving type oid ", oid));
  }
  r.name = absl::StrCat(info->schema, ".", info->name);
  switch (info->typtype) {
    case 'd':
      r.category = Resolved::Category::kDomain;
      r.related = info->base_oid.value();
      r.base_typmod = info->typmod;
      return r;
    case 'e':
      r.category = Resolved::Category::kEnum;
      return r;
    case 'c':
      r.category = Resolved::Category::kComposite;
      return r;
    case 'r':
      r.category = Resolved::Category::kRange;
      r.related = info->range_subtype.value();
      return r;
    case 'm':
      r.category = Resolved::Category::kMultirange;
      r.related = info->range_subtype.value();
      return r;
    default:
      break;
  }
  if (info->category == 'A' && info->element_oid.value() != 0) {
    r.category = Resolved::Category::kArray;
    r.related = info->element_oid.value();
    return r;
  }
  r.category = Resolved::Category::kOther;
  return r;
}

// ---------------------------------------------------------------------------------------------
// Composite text renderers (arrays, ranges, multiranges, records) built once per type.

class TextRenderer {
 public:
  virtual ~TextRenderer() = default;
  /// Appends the text output of one binary value to `out`.
  virtual absl::Status Render(absl::string_view bytes, std::string* out) = 0;
};
using RendererPtr = std::shared_ptr<TextRenderer>;

absl::StatusOr<RendererPtr> MakeRenderer(uint32_t oid, const TypeLookup& lookup, int depth);

class FnRenderer final : public TextRenderer {
 public:
  explicit FnRenderer(RenderFn fn) : fn_(fn) {}
  absl::Status Render(absl::string_view bytes, std::string* out) override {
    return fn_(bytes, out);
  }

 private:
  RenderFn fn_;
};

class UnsupportedRenderer final : public TextRenderer {
 public:
  explicit UnsupportedRenderer(std::string name) : name_(std::move(name)) {}
  absl::Status Render(absl::string_view, std::string*) override {
    return absl::UnimplementedError(
        absl::StrCat("binary format of type ", name_, " is not supported; use the text format"));
  }

 private:
  std::string name_;
};

// array_out's quoting of one element.
void AppendArrayElement(absl::string_view v, char delim, std::string* out) {
  bool quote = v.empty() || absl::EqualsIgnoreCase(v, "NULL");
  for (char c : v) {
    if (quote) break;
    if (c == '"' || c == '\\' || c == '{' || c == '}' || c == delim || IsPgSpace(c)) quote = true;
  }
  if (!quote) {
    out->append(v.data(), v.size());
    return;
  }
  out->push_back('"');
  for (char c : v) {
    if (c == '"' || c == '\\') out->push_back('\\');
    out->push_back(c);
  }
  out->push_back('"');
}

struct ArrayHeader {
  int32_t ndim = 0;
  int32_t flags = 0;
  uint32_t elem_oid = 0;
  int32_t dims[6] = {};
  int32_t lbounds[6] = {};
  int64_t count = 0;
};

bool ParseArrayHeader(Reader& r, ArrayHeader* h) {
  if (!r.Read(&h->ndim) || !r.Read(&h->flags) || !r.Read(&h->elem_oid)) return false;
  if (h->ndim < 0 || h->ndim > 6) return false;
  h->count = h->ndim == 0 ? 0 : 1;
  for (int i = 0; i < h->ndim; ++i) {
    if (!r.Read(&h->dims[i]) || !r.Read(&h->lbounds[i]) || h->dims[i] < 0) return false;
    h->count *= h->dims[i];
    if (h->count > (int64_t{1} << 31)) return false;
  }
  return true;
}

class ArrayRenderer final : public TextRenderer {
 public:
  ArrayRenderer(RendererPtr element, char delim) : element_(std::move(element)), delim_(delim) {}

  absl::Status Render(absl::string_view bytes, std::string* out) override {
    Reader r(bytes);
    ArrayHeader h;
    if (!ParseArrayHeader(r, &h)) return Malformed("array", bytes);
    if (h.ndim == 0 || h.count == 0) {
      out->append("{}");
      return absl::OkStatus();
    }
    bool decorate = false;
    for (int i = 0; i < h.ndim; ++i) decorate |= h.lbounds[i] != 1;
    if (decorate) {
      for (int i = 0; i < h.ndim; ++i) {
        absl::StrAppend(out, "[", h.lbounds[i], ":", int64_t{h.lbounds[i]} + h.dims[i] - 1, "]");
      }
      out->push_back('=');
    }
    int32_t index[6] = {};
    std::string& elem = scratch_;
    for (int i = 0; i < h.ndim; ++i) out->push_back('{');
    for (int64_t n = 0; n < h.count; ++n) {
      std::optional<absl::string_view> v;
      if (!r.ReadValue(&v)) return Malformed("array", bytes);
      if (!v) {
        out->append("NULL");
      } else {
        elem.clear();
        DS_RETURN_IF_ERROR(element_->Render(*v, &elem));
        AppendArrayElement(elem, delim_, out);
      }
      // Advance the odometer: close finished dimensions, open the next ones.
      int d = h.ndim - 1;
      while (d >= 0 && ++index[d] == h.dims[d]) {
        index[d] = 0;
        out->push_back('}');
        --d;
      }
      if (d >= 0) {
        out->push_back(delim_);
        for (int k = d + 1; k < h.ndim; ++k) out->push_back('{');
      }
    }
    if (!r.done()) return Malformed("array", bytes);
    return absl::OkStatus();
  }

 private:
  RendererPtr element_;
  char delim_;
  std::string scratch_;  // renderers are never re-entered: each nesting level has its own
};

// range_bound_escape
void AppendRangeBound(absl::string_view v, std::string* out) {
  bool quote = v.empty();
  for (char c : v) {
    if (c == '"' || c == '\\' || c == '(' || c == ')' || c == '[' || c == ']' || c == ',' ||
        IsPgSpace(c)) {
      quote = true;
      break;
    }
  }
  if (quote) out->push_back('"');
  for (char c : v) {
    if (c == '"' || c == '\\') out->push_back(c);
    out->push_back(c);
  }
  if (quote) out->push_back('"');
}

class RangeRenderer final : public TextRenderer {
 public:
  explicit RangeRenderer(RendererPtr subtype) : subtype_(std::move(subtype)) {}

  absl::Status Render(absl::string_view bytes, std::string* out) override {
    constexpr uint8_t kEmpty = 0x01, kLbInc = 0x02, kUbInc = 0x04, kLbInf = 0x08, kUbInf = 0x10;
    Reader r(bytes);
    uint8_t flags;
    if (!r.Read(&flags)) return Malformed("range", bytes);
    if (flags & kEmpty) {
      if (!r.done()) return Malformed("range", bytes);
      out->append("empty");
      return absl::OkStatus();
    }
    out->push_back(flags & kLbInc ? '[' : '(');
    std::string& bound = scratch_;
    bound.clear();
    if (!(flags & kLbInf)) {
      std::optional<absl::string_view> v;
      if (!r.ReadValue(&v) || !v) return Malformed("range", bytes);
      DS_RETURN_IF_ERROR(subtype_->Render(*v, &bound));
      AppendRangeBound(bound, out);
    }
    out->push_back(',');
    if (!(flags & kUbInf)) {
      std::optional<absl::string_view> v;
      if (!r.ReadValue(&v) || !v) return Malformed("range", bytes);
      bound.clear();
      DS_RETURN_IF_ERROR(subtype_->Render(*v, &bound));
      AppendRangeBound(bound, out);
    }
    out->push_back(flags & kUbInc ? ']' : ')');
    if (!r.done()) return Malformed("range", bytes);
    return absl::OkStatus();
  }

 private:
  RendererPtr subtype_;
  std::string scratch_;
};

class MultirangeRenderer final : public TextRenderer {
 public:
  explicit MultirangeRenderer(RendererPtr range) : range_(std::move(range)) {}

  absl::Status Render(absl::string_view bytes, std::string* out) override {
    Reader r(bytes);
    int32_t n;
    if (!r.Read(&n) || n < 0) return Malformed("multirange", bytes);
    out->push_back('{');
    for (int32_t i = 0; i < n; ++i) {
      std::optional<absl::string_view> v;
      if (!r.ReadValue(&v) || !v) return Malformed("multirange", bytes);
      if (i > 0) out->push_back(',');
      DS_RETURN_IF_ERROR(range_->Render(*v, out));
    }
    out->push_back('}');
    if (!r.done()) return Malformed("multirange", bytes);
    return absl::OkStatus();
  }

 private:
  RendererPtr range_;
};

// record_send: int32 field count, then per field: oid, int32 length (-1 NULL), bytes. Field
// renderers are built on first sight of each field type oid.
class RecordRenderer final : public TextRenderer {
 public:
  RecordRenderer(TypeLookup lookup, int depth) : lookup_(std::move(lookup)), depth_(depth) {}

  absl::Status Render(absl::string_view bytes, std::string* out) override {
    Reader r(bytes);
    int32_t n;
    if (!r.Read(&n) || n < 0) return Malformed("record", bytes);
    out->push_back('(');
    std::string& field = scratch_;
    for (int32_t i = 0; i < n; ++i) {
      uint32_t oid;
      std::optional<absl::string_view> v;
      if (!r.Read(&oid) || !r.ReadValue(&v)) return Malformed("record", bytes);
      if (i > 0) out->push_back(',');
      if (!v) continue;
      auto it = fields_.find(oid);
      if (it == fields_.end()) {
        DS_ASSIGN_OR_RETURN(RendererPtr renderer, MakeRenderer(oid, lookup_, depth_ + 1));
        it = fields_.emplace(oid, std::move(renderer)).first;
      }
      field.clear();
      DS_RETURN_IF_ERROR(it->second->Render(*v, &field));
      bool quote = field.empty();
      for (char c : field) {
        if (c == '"' || c == '\\' || c == '(' || c == ')' || c == ',' || IsPgSpace(c)) {
          quote = true;
          break;
        }
      }
      if (quote) out->push_back('"');
      for (char c : field) {
        if (c == '"' || c == '\\') out->push_back(c);
        out->push_back(c);
      }
      if (quote) out->push_back('"');
    }
    out->push_back(')');
    if (!r.done()) return Malformed("record", bytes);
    return absl::OkStatus();
  }

 private:
  TypeLookup lookup_;
  int depth_;
  absl::flat_hash_map<uint32_t, RendererPtr> fields_;
  std::string scratch_;
};

constexpr int kMaxDepth = 32;

char ArrayDelimiter(uint32_t elem_oid) { return elem_oid == 603 ? ';' : ','; }

absl::StatusOr<RendererPtr> MakeRenderer(uint32_t oid, const TypeLookup& lookup, int depth) {
  if (depth > kMaxDepth) {
    return absl::InvalidArgumentError(absl::StrCat("type oid ", oid, " nests too deeply"));
  }
  DS_ASSIGN_OR_RETURN(Resolved r, Resolve(oid, lookup));
  switch (r.category) {
    case Resolved::Category::kBuiltin: {
      const Builtin& b = *r.builtin;
      switch (b.kind) {
        case Kind::kRange: {
          DS_ASSIGN_OR_RETURN(RendererPtr sub, MakeRenderer(b.subtype, lookup, depth + 1));
          return std::make_shared<RangeRenderer>(std::move(sub));
        }
        case Kind::kMultirange: {
          DS_ASSIGN_OR_RETURN(RendererPtr sub, MakeRenderer(b.subtype, lookup, depth + 1));
          return std::make_shared<MultirangeRenderer>(
              std::make_shared<RangeRenderer>(std::move(sub)));
        }
        case Kind::kRecord:
          return std::make_shared<RecordRenderer>(lookup, depth);
        default:
          return std::make_shared<FnRenderer>(b.render);
      }
    }
    case Resolved::Category::kArray: {
      DS_ASSIGN_OR_RETURN(RendererPtr elem, MakeRenderer(r.related, lookup, depth + 1));
      return std::make_shared<ArrayRenderer>(std::move(elem), ArrayDelimiter(r.related));
    }
    case Resolved::Category::kDomain:
      return MakeRenderer(r.related, lookup, depth + 1);
    case Resolved::Category::kEnum:
      return std::make_shared<FnRenderer>(RenderIdentity);
    case Resolved::Category::kComposite:
      return std::make_shared<RecordRenderer>(lookup, depth);
    case Resolved::Category::kRange: {
      DS_ASSIGN_OR_RETURN(RendererPtr sub, MakeRenderer(r.related, lookup, depth + 1));
      return std::make_shared<RangeRenderer>(std::move(sub));
    }
    case Resolved::Category::kMultirange: {
      DS_ASSIGN_OR_RETURN(RendererPtr sub, MakeRenderer(r.related, lookup, depth + 1));
      return std::make_shared<MultirangeRenderer>(std::make_shared<RangeRenderer>(std::move(sub)));
    }
    case Resolved::Category::kOther:
      break;
  }
  return std::make_shared<UnsupportedRenderer>(absl::StrCat(r.name, " (oid ", oid, ")"));
}

// ---------------------------------------------------------------------------------------------
// Decoders

// Builders with a value-data buffer besides their values (utf8, binary): ReserveData applies.
template <typename Builder>
constexpr bool kHasValueData =
    std::is_base_of_v<arrow::BaseBinaryBuilder<arrow::StringType>, Builder> ||
    std::is_base_of_v<arrow::BaseBinaryBuilder<arrow::BinaryType>, Builder>;

class DecoderBase : public ColumnDecoder {
 public:
  explicit DecoderBase(std::shared_ptr<arrow::DataType> type) : type_(std::move(type)) {}
  const std::shared_ptr<arrow::DataType>& type() const final { return type_; }

 protected:
  void AddUnrepresentable(std::string text) {
    unrepresentable_.push_back({length(), std::move(text)});
  }
  /// The last finished batch's values and value bytes, plus an eighth: what
  /// ReserveLikeLastBatch reserves. Recorded by Finish.
  template <typename Builder>
  void RememberBatchSize(const Builder& builder) {
    last_length_ = builder.length();
    if constexpr (kHasValueData<Builder>) {
      last_data_bytes_ = builder.value_data_length();
    }
  }
  template <typename Builder>
  void ReserveLikeLast(Builder& builder) {
    // Binary offsets are 32-bit: never ask for more value bytes than they can address.
    constexpr int64_t kMaxData = std::numeric_limits<int32_t>::max() - 1;
    if (last_length_ > 0) (void)builder.Reserve(last_length_ + last_length_ / 8);
    if constexpr (kHasValueData<Builder>) {
      if (last_data_bytes_ > 0) {
        (void)builder.ReserveData(std::min(kMaxData, last_data_bytes_ + last_data_bytes_ / 8));
      }
    }
  }

  std::shared_ptr<arrow::DataType> type_;
  int64_t last_length_ = 0;
  int64_t last_data_bytes_ = 0;
};

// Traits for fixed-width Arrow types: Binary/Text parse one value; `*fits = false` marks a
// value the Arrow type cannot hold (it then goes to the unrepresentable list).
struct BoolTraits {
  using Builder = arrow::BooleanBuilder;
  using Value = bool;
  static constexpr RenderFn kRender = RenderBool;
  absl::Status Binary(absl::string_view b, Value* v, bool*) const {
    if (b.size() != 1) return Malformed("bool", b);
    *v = b[0] != 0;
    return absl::OkStatus();
  }
  absl::Status Text(absl::string_view s, Value* v, bool*) const {
    if (s == "t" || s == "true") {
      *v = true;
    } else if (s == "f" || s == "false") {
      *v = false;
    } else {
      return BadText("bool", s);
    }
    return absl::OkStatus();
  }
};

template <typename ArrowType, typename Wire>
struct IntTraits {
  using Builder = arrow::NumericBuilder<ArrowType>;
  using Value = typename ArrowType::c_type;
  static constexpr RenderFn kRender = RenderInt<Wire>;
  absl::Status Binary(absl::string_view b, Value* v, bool*) const {
    Wire w;
    if (!ReadExact(b, &w)) return Malformed("integer", b);
    *v = w;
    return absl::OkStatus();
  }
  absl::Status Text(absl::string_view s, Value* v, bool*) const {
    if constexpr (sizeof(Value) < 4) {
      int32_t w;
      if (!absl::SimpleAtoi(s, &w) || w < std::numeric_limits<Value>::min() ||
          w > std::numeric_limits<Value>::max()) {
        return BadText("integer", s);
      }
      *v = static_cast<Value>(w);
    } else if (!absl::SimpleAtoi(s, v)) {
      return BadText("integer", s);
    }
    return absl::OkStatus();
  }
};

template <typename ArrowType>
struct FloatTraits {
  using Builder = arrow::NumericBuilder<ArrowType>;
  using Value = typename ArrowType::c_type;
  using Bits = std::conditional_t<sizeof(Value) == 4, uint32_t, uint64_t>;
  static constexpr RenderFn kRender = sizeof(Value) == 4 ? RenderFloat4 : RenderFloat8;
  absl::Status Binary(absl::string_view b, Value* v, bool*) const {
    Bits bits;
    if (!ReadExact(b, &bits)) return Malformed("float", b);
    std::memcpy(v, &bits, sizeof(bits));
    return absl::OkStatus();
  }
  absl::Status Text(absl::string_view s, Value* v, bool*) const {
    if (!ParseFloatText(s, v)) return BadText("float", s);
    return absl::OkStatus();
  }
};

struct DecimalTraits {
  using Builder = arrow::Decimal128Builder;
  using Value = arrow::Decimal128;
  static constexpr RenderFn kRender = RenderNumeric;
  int32_t precision;
  int32_t scale;
  absl::Status Binary(absl::string_view b, Value* v, bool* fits) const {
    NumericView n;
    if (!ParseNumericBinary(b, &n)) return Malformed("numeric", b);
    *fits = !n.special() && NumericToDecimal(n, precision, scale, v);
    return absl::OkStatus();
  }
  absl::Status Text(absl::string_view s, Value* v, bool* fits) const {
    if (s == "NaN" || s == "Infinity" || s == "-Infinity") {
      *fits = false;
      return absl::OkStatus();
    }
    int32_t p, sc;
    if (!arrow::Decimal128::FromString(std::string_view(s.data(), s.size()), v, &p, &sc).ok()) {
      return BadText("numeric", s);
    }
    if (sc < scale) {
      if (p - sc + scale > 38) {
        *fits = false;
        return absl::OkStatus();
      }
      *v = v->IncreaseScaleBy(scale - sc);
    } else if (sc > scale) {
      auto rescaled = v->Rescale(sc, scale);  // fails when digits would be lost
      if (!rescaled.ok()) {
        *fits = false;
        return absl::OkStatus();
      }
      *v = *rescaled;
    }
    *fits = v->FitsInPrecision(precision);
    return absl::OkStatus();
  }
};

struct MoneyTraits {
  using Builder = arrow::Decimal128Builder;
  using Value = arrow::Decimal128;
  static constexpr RenderFn kRender = RenderMoney;
  absl::Status Binary(absl::string_view b, Value* v, bool*) const {
    int64_t cents;
    if (!ReadExact(b, &cents)) return Malformed("money", b);
    *v = arrow::Decimal128(cents);
    return absl::OkStatus();
  }
  // Locale-tolerant: digits and one decimal point count; '-' or parentheses make it negative;
  // currency symbols and group separators are skipped.
  absl::Status Text(absl::string_view s, Value* v, bool*) const {
    bool neg = false, point = false, any = false;
    int frac_digits = 0, digits = 0;
    arrow::Decimal128 acc(0);
    for (char c : s) {
      if (c >= '0' && c <= '9') {
        if ((point && frac_digits == 2) || ++digits > 19) return BadText("money", s);
        acc = acc * arrow::Decimal128(10) + arrow::Decimal128(c - '0');
        any = true;
        if (point) ++frac_digits;
      } else if (c == '.') {
        if (point) return BadText("money", s);
        point = true;
      } else if (c == '-' || c == '(') {
        neg = true;
      }
    }
    if (!any) return BadText("money", s);
    for (; frac_digits < 2; ++frac_digits) acc *= arrow::Decimal128(10);
    if (neg) acc.Negate();
    *v = acc;
    return absl::OkStatus();
  }
};

struct DateTraits {
  using Builder = arrow::Date32Builder;
  using Value = int32_t;
  static constexpr RenderFn kRender = RenderDate;
  // False for a finite date that would land on (or past) the infinity sentinels; PostgreSQL's
  // own range ends well before.
  static bool Shift(int32_t pg, int32_t* out) {
    if (pg == std::numeric_limits<int32_t>::max() || pg == std::numeric_limits<int32_t>::min()) {
      *out = pg;
      return true;
    }
    int64_t shifted = int64_t{pg} + kPgEpochDays;
    *out = static_cast<int32_t>(shifted);
    return shifted < std::numeric_limits<int32_t>::max();
  }
  absl::Status Binary(absl::string_view b, Value* v, bool* fits) const {
    int32_t pg;
    if (!ReadExact(b, &pg)) return Malformed("date", b);
    *fits = Shift(pg, v);
    return absl::OkStatus();
  }
  absl::Status Text(absl::string_view s, Value* v, bool* fits) const {
    int32_t pg;
    if (!ParseDateText(s, &pg)) return BadText("date", s);
    *fits = Shift(pg, v);
    return absl::OkStatus();
  }
};

struct TimeTraits {
  using Builder = arrow::Time64Builder;
  using Value = int64_t;
  static constexpr RenderFn kRender = RenderTime;
  absl::Status Binary(absl::string_view b, Value* v, bool* fits) const {
    if (!ReadExact(b, v) || *v < 0 || *v > kUsecPerDay) return Malformed("time", b);
    *fits = *v < kUsecPerDay;  // Arrow's time64 stops before 24:00:00
    return absl::OkStatus();
  }
  absl::Status Text(absl::string_view s, Value* v, bool* fits) const {
    size_t pos = 0;
    if (!ParseTimePart(s, &pos, v) || pos != s.size() || *v > kUsecPerDay) {
      return BadText("time", s);
    }
    *fits = *v < kUsecPerDay;
    return absl::OkStatus();
  }
};

template <bool kWithTz>
struct TimestampTraits {
  using Builder = arrow::TimestampBuilder;
  using Value = int64_t;
  static constexpr RenderFn kRender = kWithTz ? RenderTimestamptz : RenderTimestamp;
  static bool Shift(int64_t pg, int64_t* out) {
    if (pg == std::numeric_limits<int64_t>::max() || pg == std::numeric_limits<int64_t>::min()) {
      *out = pg;
      return true;
    }
    // A finite value must not land on the infinity sentinels.
    return !__builtin_add_overflow(pg, kPgEpochUsec, out) &&
           *out != std::numeric_limits<int64_t>::max();
  }
  absl::Status Binary(absl::string_view b, Value* v, bool* fits) const {
    int64_t pg;
    if (!ReadExact(b, &pg)) return Malformed("timestamp", b);
    *fits = Shift(pg, v);
    return absl::OkStatus();
  }
  absl::Status Text(absl::string_view s, Value* v, bool* fits) const {
    int64_t pg;
    if (!ParseTimestampText(s, kWithTz, &pg)) return BadText("timestamp", s);
    *fits = Shift(pg, v);
    return absl::OkStatus();
  }
};

struct IntervalTraits {
  using Builder = arrow::MonthDayNanoIntervalBuilder;
  using Value = arrow::MonthDayNanoIntervalType::MonthDayNanos;
  static constexpr RenderFn kRender = RenderInterval;
  static bool Convert(const Interval& iv, Value* v) {
    v->months = iv.months;
    v->days = iv.days;
    return !__builtin_mul_overflow(iv.usec, int64_t{1000}, &v->nanoseconds);
  }
  absl::Status Binary(absl::string_view b, Value* v, bool* fits) const {
    Interval iv;
    if (!ParseIntervalBinary(b, &iv)) return Malformed("interval", b);
    *fits = Convert(iv, v);
    return absl::OkStatus();
  }
  absl::Status Text(absl::string_view s, Value* v, bool* fits) const {
    Interval iv;
    if (!ParseIntervalText(s, &iv)) return BadText("interval", s);
    *fits = Convert(iv, v);
    return absl::OkStatus();
  }
};

template <typename Traits>
class ScalarDecoder final : public DecoderBase {
 public:
  ScalarDecoder(std::shared_ptr<arrow::DataType> type, Traits traits, arrow::MemoryPool* pool)
      : DecoderBase(type), traits_(traits), builder_(type, pool) {}

  absl::Status AppendBinary(absl::string_view bytes) override {
    typename Traits::Value v{};
    bool fits = true;
    DS_RETURN_IF_ERROR(traits_.Binary(bytes, &v, &fits));
    if (fits) [[likely]]
      return FromArrow(builder_.Append(v));
    std::string text;
    DS_RETURN_IF_ERROR(Traits::kRender(bytes, &text));
    AddUnrepresentable(std::move(text));
    return AppendNull();
  }
  absl::Status AppendText(absl::string_view text) override {
    typename Traits::Value v{};
    bool fits = true;
    DS_RETURN_IF_ERROR(traits_.Text(text, &v, &fits));
    if (fits) [[likely]]
      return FromArrow(builder_.Append(v));
    AddUnrepresentable(std::string(text));
    return AppendNull();
  }
  absl::Status AppendNull() override { return FromArrow(builder_.AppendNull()); }
  int64_t length() const override { return builder_.length(); }
  absl::StatusOr<std::shared_ptr<arrow::Array>> Finish() override {
    RememberBatchSize(builder_);
    std::shared_ptr<arrow::Array> out;
    DS_RETURN_IF_ERROR(FromArrow(builder_.Finish(&out)));
    unrepresentable_.clear();
    return out;
  }
  void ReserveLikeLastBatch() override { ReserveLikeLast(builder_); }

 private:
  Traits traits_;
  typename Traits::Builder builder_;
};

// utf8 column: text passes through; binary is rendered (or copied, for text-like types).
class Utf8Decoder final : public DecoderBase {
 public:
  Utf8Decoder(RenderFn fn, RendererPtr renderer, arrow::MemoryPool* pool)
      : DecoderBase(arrow::utf8()), fn_(fn), renderer_(std::move(renderer)), builder_(pool) {}

  absl::Status AppendBinary(absl::string_view bytes) override {
    if (fn_ == RenderIdentity) return FromArrow(builder_.Append(bytes.data(), Len(bytes)));
    scratch_.clear();
    if (fn_ != nullptr) {
      DS_RETURN_IF_ERROR(fn_(bytes, &scratch_));
    } else {
      DS_RETURN_IF_ERROR(renderer_->Render(bytes, &scratch_));
    }
    return FromArrow(builder_.Append(scratch_.data(), Len(scratch_)));
  }
  absl::Status AppendText(absl::string_view text) override {
    return FromArrow(builder_.Append(text.data(), Len(text)));
  }
  absl::Status AppendNull() override { return FromArrow(builder_.AppendNull()); }
  int64_t length() const override { return builder_.length(); }
  absl::StatusOr<std::shared_ptr<arrow::Array>> Finish() override {
    RememberBatchSize(builder_);
    std::shared_ptr<arrow::Array> out;
    DS_RETURN_IF_ERROR(FromArrow(builder_.Finish(&out)));
    unrepresentable_.clear();
    return out;
  }
  void ReserveLikeLastBatch() override { ReserveLikeLast(builder_); }

 private:
  static int32_t Len(absl::string_view s) { return static_cast<int32_t>(s.size()); }
  RenderFn fn_;
  RendererPtr renderer_;
  arrow::StringBuilder builder_;
  std::string scratch_;
};

// bytea → binary. Text input is the hex format ("\x0102") or the legacy escape format.
class ByteaDecoder final : public DecoderBase {
 public:
  explicit ByteaDecoder(arrow::MemoryPool* pool) : DecoderBase(arrow::binary()), builder_(pool) {}

  absl::Status AppendBinary(absl::string_view bytes) override {
    return FromArrow(builder_.Append(bytes.data(), static_cast<int32_t>(bytes.size())));
  }
  absl::Status AppendText(absl::string_view text) override {
    scratch_.clear();
    if (absl::StartsWith(text, "\\x")) {
      absl::string_view hex = text.substr(2);
      for (size_t i = 0; i < hex.size();) {
        if (IsPgSpace(hex[i])) {
          ++i;
          continue;
        }
        int hi = HexValue(hex[i]);
        int lo = i + 1 < hex.size() ? HexValue(hex[i + 1]) : -1;
        if (hi < 0 || lo < 0) return BadText("bytea", text);
        scratch_.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
      }
    } else {
      for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '\\') {
          scratch_.push_back(text[i]);
        } else if (i + 1 < text.size() && text[i + 1] == '\\') {
          scratch_.push_back('\\');
          ++i;
        } else if (i + 3 < text.size() && text[i + 1] >= '0' && text[i + 1] <= '3') {
          int v = 0;
          for (int k = 1; k <= 3; ++k) {
            char c = text[i + static_cast<size_t>(k)];
            if (c < '0' || c > '7') return BadText("bytea", text);
            v = v * 8 + (c - '0');
          }
          scratch_.push_back(static_cast<char>(v));
          i += 3;
        } else {
          return BadText("bytea", text);
        }
      }
    }
    return FromArrow(builder_.Append(scratch_.data(), static_cast<int32_t>(scratch_.size())));
  }
  absl::Status AppendNull() override { return FromArrow(builder_.AppendNull()); }
  int64_t length() const override { return builder_.length(); }
  absl::StatusOr<std::shared_ptr<arrow::Array>> Finish() override {
    RememberBatchSize(builder_);
    std::shared_ptr<arrow::Array> out;
    DS_RETURN_IF_ERROR(FromArrow(builder_.Finish(&out)));
    unrepresentable_.clear();
    return out;
  }
  void ReserveLikeLastBatch() override { ReserveLikeLast(builder_); }

 private:
  arrow::BinaryBuilder builder_;
  std::string scratch_;
};

// Splits a one-dimensional array literal "{a,"b c",NULL}" into unescaped elements. Returns
// false (no error) for literals a list cannot hold: nested braces or a "[lo:hi]=" decoration.
absl::StatusOr<bool> SplitArrayText(absl::string_view s, char delim,
                                    std::vector<std::string>* elems, std::vector<bool>* nulls,
                                    size_t* count) {
  *count = 0;
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < s.size() && IsPgSpace(s[i])) ++i;
  };
  skip_ws();
  if (i < s.size() && s[i] == '[') return false;
  if (i >= s.size() || s[i] != '{') return BadText("array", s);
  ++i;
  skip_ws();
  if (i < s.size() && s[i] == '}') {
    ++i;
    skip_ws();
    if (i != s.size()) return BadText("array", s);
    return true;
  }
  while (true) {
    skip_ws();
    if (i >= s.size()) return BadText("array", s);
    if (s[i] == '{') return false;
    if (*count == elems->size()) elems->emplace_back();
    if (*count == nulls->size()) nulls->push_back(false);
    std::string& e = (*elems)[*count];
    e.clear();
    bool quoted_or_escaped = false;
    if (s[i] == '"') {
      quoted_or_escaped = true;
      ++i;
      while (true) {
        if (i >= s.size()) return BadText("array", s);
        char c = s[i++];
        if (c == '"') break;
        if (c == '\\') {
          if (i >= s.size()) return BadText("array", s);
          c = s[i++];
        }
        e.push_back(c);
      }
      skip_ws();
    } else {
      size_t trim_to = 0;  // keep escaped trailing characters
      while (i < s.size() && s[i] != delim && s[i] != '}') {
        char c = s[i++];
        if (c == '"' || c == '{') return BadText("array", s);
        if (c == '\\') {
          if (i >= s.size()) return BadText("array", s);
          e.push_back(s[i++]);
          quoted_or_escaped = true;
          trim_to = e.size();
          continue;
        }
        e.push_back(c);
        if (!IsPgSpace(c)) trim_to = e.size();
      }
      e.resize(trim_to);
      if (e.empty() && !quoted_or_escaped) return BadText("array", s);
    }
    (*nulls)[*count] = !quoted_or_escaped && absl::EqualsIgnoreCase(e, "NULL");
    ++*count;
    if (i >= s.size()) return BadText("array", s);
    if (s[i] == delim) {
      ++i;
      continue;
    }
    if (s[i] == '}') {
      ++i;
      skip_ws();
      if (i != s.size()) return BadText("array", s);
      return true;
    }
    return BadText("array", s);
  }
}

// One-dimensional arrays → list<element>. Elements go through the element type's decoder.
class ListDecoder final : public DecoderBase {
 public:
  ListDecoder(std::unique_ptr<ColumnDecoder> element, RendererPtr array_renderer, char delim,
              arrow::MemoryPool* pool)
      : DecoderBase(arrow::list(element->type())),
        element_(std::move(element)),
        array_renderer_(std::move(array_renderer)),
        delim_(delim),
        offsets_(pool),
        validity_(pool) {}

  absl::Status Init() { return FromArrow(offsets_.Append(0)); }

  absl::Status AppendBinary(absl::string_view bytes) override {
    Reader r(bytes);
    ArrayHeader h;
    if (!ParseArrayHeader(r, &h)) return Malformed("array", bytes);
    if (h.ndim > 1 || (h.ndim == 1 && h.lbounds[0] != 1)) return AppendBinaryUnrepresentable(bytes);
    // Validate the framing before appending anything.
    Reader check = r;
    for (int64_t i = 0; i < h.count; ++i) {
      std::optional<absl::string_view> v;
      if (!check.ReadValue(&v)) return Malformed("array", bytes);
    }
    if (!check.done()) return Malformed("array", bytes);
    size_t before = element_->unrepresentable().size();
    for (int64_t i = 0; i < h.count; ++i) {
      std::optional<absl::string_view> v;
      r.ReadValue(&v);
      DS_RETURN_IF_ERROR(v ? element_->AppendBinary(*v) : element_->AppendNull());
    }
    if (element_->unrepresentable().size() != before) {
      std::string text;
      DS_RETURN_IF_ERROR(array_renderer_->Render(bytes, &text));
      AddUnrepresentable(std::move(text));
      return EndList(false);
    }
    return EndList(true);
  }

  absl::Status AppendText(absl::string_view text) override {
    size_t count;
    DS_ASSIGN_OR_RETURN(bool one_dim, SplitArrayText(text, delim_, &elems_, &nulls_, &count));
    if (!one_dim) {
      AddUnrepresentable(std::string(text));
      return EndList(false);
    }
    size_t before = element_->unrepresentable().size();
    for (size_t i = 0; i < count; ++i) {
      DS_RETURN_IF_ERROR(nulls_[i] ? element_->AppendNull() : element_->AppendText(elems_[i]));
    }
    if (element_->unrepresentable().size() != before) {
      AddUnrepresentable(std::string(text));
      return EndList(false);
    }
    return EndList(true);
  }

  absl::Status AppendNull() override { return EndList(false); }
  int64_t length() const override { return length_; }

  absl::StatusOr<std::shared_ptr<arrow::Array>> Finish() override {
    DS_ASSIGN_OR_RETURN(std::shared_ptr<arrow::Array> values, element_->Finish());
    std::shared_ptr<arrow::Buffer> offsets, validity;
    DS_RETURN_IF_ERROR(FromArrow(offsets_.Finish(&offsets)));
    DS_RETURN_IF_ERROR(FromArrow(validity_.Finish(&validity)));
    auto data =
        arrow::ArrayData::Make(type_, length_, {null_count_ > 0 ? validity : nullptr, offsets},
                               {values->data()}, null_count_);
    length_ = 0;
    null_count_ = 0;
    unrepresentable_.clear();
    DS_RETURN_IF_ERROR(Init());
    return arrow::MakeArray(data);
  }

 private:
  absl::Status AppendBinaryUnrepresentable(absl::string_view bytes) {
    std::string text;
    DS_RETURN_IF_ERROR(array_renderer_->Render(bytes, &text));
    AddUnrepresentable(std::move(text));
    return EndList(false);
  }
  absl::Status EndList(bool valid) {
    int64_t end = element_->length();
    if (end > std::numeric_limits<int32_t>::max()) {
      return absl::ResourceExhaustedError("list column batch exceeds 2^31 elements");
    }
    DS_RETURN_IF_ERROR(FromArrow(offsets_.Append(static_cast<int32_t>(end))));
    DS_RETURN_IF_ERROR(FromArrow(validity_.Append(valid)));
    ++length_;
    if (!valid) ++null_count_;
    return absl::OkStatus();
  }

  std::unique_ptr<ColumnDecoder> element_;
  RendererPtr array_renderer_;
  char delim_;
  arrow::TypedBufferBuilder<int32_t> offsets_;
  arrow::TypedBufferBuilder<bool> validity_;
  int64_t length_ = 0;
  int64_t null_count_ = 0;
  std::vector<std::string> elems_;
  std::vector<bool> nulls_;
};

template <typename Traits>
std::unique_ptr<ColumnDecoder> Scalar(std::shared_ptr<arrow::DataType> type, Traits traits,
                                      arrow::MemoryPool* pool) {
  return std::make_unique<ScalarDecoder<Traits>>(std::move(type), traits, pool);
}

absl::StatusOr<std::unique_ptr<ColumnDecoder>> MakeDecoder(uint32_t oid, int32_t typmod,
                                                           const TypeLookup& lookup,
                                                           arrow::MemoryPool* pool, int depth);

absl::StatusOr<std::unique_ptr<ColumnDecoder>> MakeRenderedUtf8(uint32_t oid,
                                                                const TypeLookup& lookup,
                                                                arrow::MemoryPool* pool,
                                                                int depth) {
  DS_ASSIGN_OR_RETURN(RendererPtr renderer, MakeRenderer(oid, lookup, depth));
  return std::make_unique<Utf8Decoder>(nullptr, std::move(renderer), pool);
}

absl::StatusOr<std::unique_ptr<ColumnDecoder>> MakeBuiltinDecoder(const Builtin& b, int32_t typmod,
                                                                  const TypeLookup& lookup,
                                                                  arrow::MemoryPool* pool,
                                                                  int depth) {
  switch (b.kind) {
    case Kind::kBool:
      return Scalar(arrow::boolean(), BoolTraits{}, pool);
    case Kind::kInt2:
      return Scalar(arrow::int16(), IntTraits<arrow::Int16Type, int16_t>{}, pool);
    case Kind::kInt4:
      return Scalar(arrow::int32(), IntTraits<arrow::Int32Type, int32_t>{}, pool);
    case Kind::kInt8:
      return Scalar(arrow::int64(), IntTraits<arrow::Int64Type, int64_t>{}, pool);
    case Kind::kOid:
      return Scalar(arrow::uint32(), IntTraits<arrow::UInt32Type, uint32_t>{}, pool);
    case Kind::kFloat4:
      return Scalar(arrow::float32(), FloatTraits<arrow::FloatType>{}, pool);
    case Kind::kFloat8:
      return Scalar(arrow::float64(), FloatTraits<arrow::DoubleType>{}, pool);
    case Kind::kNumeric: {
      if (typmod >= 4) {
        int32_t precision = ((typmod - 4) >> 16) & 0xffff;
        int32_t scale = (((typmod - 4) & 0x7ff) ^ 1024) - 1024;
        if (precision >= 1 && precision <= 38 && scale >= 0 && scale <= precision) {
          return Scalar(arrow::decimal128(precision, scale), DecimalTraits{precision, scale}, pool);
        }
      }
      return std::make_unique<Utf8Decoder>(RenderNumeric, nullptr, pool);
    }
    case Kind::kMoney:
      return Scalar(arrow::decimal128(19, 2), MoneyTraits{}, pool);
    case Kind::kText:
      return std::make_unique<Utf8Decoder>(RenderIdentity, nullptr, pool);
    case Kind::kVersioned:
    case Kind::kRendered:
      return std::make_unique<Utf8Decoder>(b.render, nullptr, pool);
    case Kind::kBytea:
      return std::make_unique<ByteaDecoder>(pool);
    case Kind::kDate:
      return Scalar(arrow::date32(), DateTraits{}, pool);
    case Kind::kTime:
      return Scalar(arrow::time64(arrow::TimeUnit::MICRO), TimeTraits{}, pool);
    case Kind::kTimestamp:
      return Scalar(arrow::timestamp(arrow::TimeUnit::MICRO), TimestampTraits<false>{}, pool);
    case Kind::kTimestamptz:
      return Scalar(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), TimestampTraits<true>{}, pool);
    case Kind::kInterval:
      return Scalar(arrow::month_day_nano_interval(), IntervalTraits{}, pool);
    case Kind::kRange:
    case Kind::kMultirange:
    case Kind::kRecord:
      return MakeRenderedUtf8(b.oid, lookup, pool, depth);
  }
  return absl::InternalError("unhandled builtin kind");
}

absl::StatusOr<std::unique_ptr<ColumnDecoder>> MakeDecoder(uint32_t oid, int32_t typmod,
                                                           const TypeLookup& lookup,
                                                           arrow::MemoryPool* pool, int depth) {
  if (depth > kMaxDepth) {
    return absl::InvalidArgumentError(absl::StrCat("type oid ", oid, " nests too deeply"));
  }
  DS_ASSIGN_OR_RETURN(Resolved r, Resolve(oid, lookup));
  switch (r.category) {
    case Resolved::Category::kBuiltin:
      return MakeBuiltinDecoder(*r.builtin, typmod, lookup, pool, depth);
    case Resolved::Category::kArray: {
      // An array column's typmod applies to its elements (numeric(10,2)[]).
      DS_ASSIGN_OR_RETURN(std::unique_ptr<ColumnDecoder> element,
                          MakeDecoder(r.related, typmod, lookup, pool, depth + 1));
      DS_ASSIGN_OR_RETURN(RendererPtr renderer, MakeRenderer(oid, lookup, depth));
      auto list = std::make_unique<ListDecoder>(std::move(element), std::move(renderer),
                                                ArrayDelimiter(r.related), pool);
      DS_RETURN_IF_ERROR(list->Init());
      return list;
    }
    case Resolved::Category::kDomain:
      return MakeDecoder(r.related, typmod >= 0 ? typmod : r.base_typmod, lookup, pool, depth + 1);
    case Resolved::Category::kEnum:
      return std::make_unique<Utf8Decoder>(RenderIdentity, nullptr, pool);
    default:
      return MakeRenderedUtf8(oid, lookup, pool, depth);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// TypeResolver

std::unique_ptr<TypeResolver> TypeResolver::Create(Connection& conn) {
  return std::unique_ptr<TypeResolver>(new TypeResolver(conn));
}

absl::StatusOr<TypeInfo> TypeResolver::Lookup(Oid oid) {
  auto it = cache_.find(oid.value());
  if (it != cache_.end()) return it->second;
  const bool has_multirange = conn_.server_version() >= 140000;
  std::string sql = absl::StrCat(
      "SELECT t.oid, n.nspname, t.typname, t.typtype, t.typcategory, t.typelem, t.typbasetype, "
      "t.typtypmod, COALESCE(r.rngsubtype, ",
      has_multirange ? "mr.rngsubtype, " : "", "0) FROM pg_catalog.pg_type t ",
      "JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace ",
      "LEFT JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid ",
      has_multirange ? "LEFT JOIN pg_catalog.pg_range mr ON mr.rngmultitypid = t.oid " : "",
      "WHERE t.oid = $1::pg_catalog.oid");
  std::optional<std::string> params[] = {absl::StrCat(oid.value())};
  DS_ASSIGN_OR_RETURN(Result result, conn_.ExecParams(sql, params));
  if (RowCount(result) != 1) {
    return absl::NotFoundError(absl::StrCat("type oid ", oid.value(), " not found in pg_type"));
  }
  auto text = [&](int col) { return std::string(GetValue(result, 0, col).value_or("")); };
  auto number = [&](int col) -> int64_t {
    int64_t v = 0;
    (void)absl::SimpleAtoi(GetValue(result, 0, col).value_or("0"), &v);
    return v;
  };
  TypeInfo info;
  info.oid = oid;
  info.schema = text(1);
  info.name = text(2);
  std::string typtype = text(3), category = text(4);
  info.typtype = typtype.empty() ? 'b' : typtype[0];
  info.category = category.empty() ? 'U' : category[0];
  info.element_oid = Oid(static_cast<uint32_t>(number(5)));
  info.base_oid = Oid(static_cast<uint32_t>(number(6)));
  info.typmod = static_cast<int32_t>(number(7));
  info.range_subtype = Oid(static_cast<uint32_t>(number(8)));
  cache_.emplace(oid.value(), info);
  return info;
}

TypeLookup TypeResolver::AsLookup() {
  return [this](Oid oid) { return Lookup(oid); };
}

absl::StatusOr<std::unique_ptr<ColumnDecoder>> MakeColumnDecoder(Oid type_oid, int32_t typmod,
                                                                 const TypeLookup& lookup,
                                                                 arrow::MemoryPool* pool) {
  auto decoder = MakeDecoder(type_oid.value(), typmod, lookup, pool, 0);
  if (!decoder.ok()) {
    return base::Annotate(decoder.status(),
                          absl::StrCat("building decoder for type oid ", type_oid.value()));
  }
  return decoder;
}

absl::StatusOr<std::string> BinaryToText(Oid type_oid, absl::string_view bytes,
                                         const TypeLookup& lookup) {
  DS_ASSIGN_OR_RETURN(RendererPtr renderer, MakeRenderer(type_oid.value(), lookup, 0));
  std::string out;
  DS_RETURN_IF_ERROR(renderer->Render(bytes, &out));
  return out;
}

}  // namespace ductstream::postgres
