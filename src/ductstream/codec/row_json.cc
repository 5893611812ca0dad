#include "ductstream/codec/row_json.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include <arrow/util/bit_util.h>
#include <arrow/util/decimal.h>
#include <arrow/util/key_value_metadata.h>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace ductstream::codec {

namespace row_json_internal {

// What the renderer writes into: a std::string, appended to through a raw pointer. The string is
// grown ahead in steps (resize, which zero-fills the new tail once) and trimmed to the bytes
// written when the Out goes away. Why not the string's own push_back/append: libstdc++ compiles
// basic_string<char> out of line (an extern template), so each of the ~40 small writes of a row
// cost a call, a capacity check and, for append, a call to memmove; here the common case is an
// inline store. One Out per string at a time: the string's size is meaningless while it lives.
class Out {
 public:
  explicit Out(std::string* s) : s_(s), data_(s->data()), size_(s->size()), end_(s->size()) {}
  ~Out() { s_->resize(size_); }
  Out(const Out&) = delete;
  Out& operator=(const Out&) = delete;

  ABSL_ATTRIBUTE_ALWAYS_INLINE void push_back(char c) {
    Reserve(1);
    data_[size_++] = c;
  }
  ABSL_ATTRIBUTE_ALWAYS_INLINE void append(const char* p, size_t n) {
    Reserve(n);
    std::memcpy(data_ + size_, p, n);
    size_ += n;
  }
  // Literals become fixed-size copies once inlined.
  ABSL_ATTRIBUTE_ALWAYS_INLINE void append(absl::string_view text) {
    append(text.data(), text.size());
  }
  void append(const char* begin, const char* end) {
    append(begin, static_cast<size_t>(end - begin));
  }
  void append(size_t count, char c) {
    Reserve(count);
    std::memset(data_ + size_, c, count);
    size_ += count;
  }
  /// Room for `n` more bytes at the end, returned; advance() by what was written there.
  ABSL_ATTRIBUTE_ALWAYS_INLINE char* Reserve(size_t n) {
    if (ABSL_PREDICT_FALSE(end_ - size_ < n)) Grow(n);
    return data_ + size_;
  }
  void advance(size_t n) { size_ += n; }

 private:
  // Ahead by at least a typical row, so that a row's cells need one resize at most; the
  // std::string doubles its capacity when the size passes it (amortised O(1) per byte).
  ABSL_ATTRIBUTE_NOINLINE void Grow(size_t n) {
    end_ = size_ + std::max<size_t>(n, 1024);
    s_->resize(end_);
    data_ = s_->data();
  }

  std::string* s_;
  char* data_;
  size_t size_;  // bytes written
  size_t end_;   // s_->size(): writable up to here
};

}  // namespace row_json_internal

namespace {

using row_json_internal::Out;

// PostgreSQL type oids whose text is JSON (json, jsonb) and their array types (json[], jsonb[]).
constexpr int64_t kJsonOid = 114;
constexpr int64_t kJsonbOid = 3802;
constexpr int64_t kJsonArrayOid = 199;
constexpr int64_t kJsonbArrayOid = 3807;

template <typename T>
void AppendInt(T value, Out& out) {
  char* p = out.Reserve(24);
  auto [end, ec] = std::to_chars(p, p + 24, value);
  out.advance(static_cast<size_t>(end - p));
}

// Two decimal digits of 0 <= v < 100.
char* Put2(int64_t v, char* p) {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
  return p + 2;
}

// Appends `value` zero-padded to `width` digits (value >= 0).
void AppendPadded(int64_t value, int width, Out& out) {
  if (width == 2 && value < 100) {
    char* const p = out.Reserve(2);
    out.advance(static_cast<size_t>(Put2(value, p) - p));
    return;
  }
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  const int n = static_cast<int>(end - buf);
  if (n < width) out.append(static_cast<size_t>(width - n), '0');
  out.append(buf, end);
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// Proleptic Gregorian date of `days` since 1970-01-01 (Howard Hinnant's civil_from_days; exact
// over the whole int64 range we feed it, no time zone database involved).
void AppendCivilDate(int64_t days, Out& out) {
  if (days >= -719468 && days <= 2932896) {
    // 0000-03-01 to 9999-12-31, nearly every value: the same algorithm in unsigned 32-bit
    // arithmetic, where every division by a constant compiles to a multiplication.
    const uint32_t z = static_cast<uint32_t>(days + 719468);
    const uint32_t era = z / 146097;
    const uint32_t doe = z - era * 146097;
    const uint32_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const uint32_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const uint32_t mp = (5 * doy + 2) / 153;
    const uint32_t day = doy - (153 * mp + 2) / 5 + 1;
    const uint32_t month = mp < 10 ? mp + 3 : mp - 9;
    const uint32_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
    char* const start = out.Reserve(10);
    char* p = Put2(year / 100, start);
    p = Put2(year % 100, p);
    *p++ = '-';
    p = Put2(month, p);
    *p++ = '-';
    p = Put2(day, p);
    out.advance(static_cast<size_t>(p - start));
    return;
  }
  days += 719468;
  const int64_t era = FloorDiv(days, 146097);
  const int64_t doe = days - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t year = yoe + era * 400;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  if (month <= 2) ++year;
  if (year < 0) {
    out.push_back('-');
    AppendPadded(-year, 4, out);
  } else {
    AppendPadded(year, 4, out);
  }
  out.push_back('-');
  AppendPadded(month, 2, out);
  out.push_back('-');
  AppendPadded(day, 2, out);
}

void AppendFraction(int64_t fraction, int digits, Out& out) {
  if (digits == 0) return;
  out.push_back('.');
  AppendPadded(fraction, digits, out);
}

// Units per second and fractional digits of an Arrow time unit.
std::pair<int64_t, int> UnitScale(arrow::TimeUnit::type unit) {
  switch (unit) {
    case arrow::TimeUnit::SECOND:
      return {1, 0};
    case arrow::TimeUnit::MILLI:
      return {1000, 3};
    case arrow::TimeUnit::MICRO:
      return {1000000, 6};
    case arrow::TimeUnit::NANO:
      return {1000000000, 9};
  }
  return {1, 0};
}

// "HH:MM:SS" of 0 <= second_of_day < 86400.
void AppendClock(int64_t second_of_day, Out& out) {
  char* const start = out.Reserve(8);
  char* p = Put2(second_of_day / 3600, start);
  *p++ = ':';
  p = Put2(second_of_day / 60 % 60, p);
  *p++ = ':';
  p = Put2(second_of_day % 60, p);
  out.advance(static_cast<size_t>(p - start));
}

void AppendTimestamp(int64_t value, arrow::TimeUnit::type unit, bool utc, Out& out) {
  if (value == std::numeric_limits<int64_t>::max()) {
    out.append("\"infinity\"");
    return;
  }
  if (value == std::numeric_limits<int64_t>::min()) {
    out.append("\"-infinity\"");
    return;
  }
  const auto [per_second, digits] = UnitScale(unit);
  const int64_t seconds = FloorDiv(value, per_second);
  const int64_t fraction = value - seconds * per_second;
  const int64_t days = FloorDiv(seconds, 86400);
  const int64_t second_of_day = seconds - days * 86400;
  out.push_back('"');
  AppendCivilDate(days, out);
  out.push_back('T');
  AppendClock(second_of_day, out);
  AppendFraction(fraction, digits, out);
  if (utc) out.push_back('Z');
  out.push_back('"');
}

constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void AppendBase64String(absl::string_view bytes, Out& out) {
  char* const start = out.Reserve((bytes.size() + 2) / 3 * 4 + 2);
  char* q = start;
  *q++ = '"';
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size();
  for (; n >= 3; n -= 3, p += 3) {
    const uint32_t v = (uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | p[2];
    *q++ = kBase64Alphabet[v >> 18];
    *q++ = kBase64Alphabet[(v >> 12) & 63];
    *q++ = kBase64Alphabet[(v >> 6) & 63];
    *q++ = kBase64Alphabet[v & 63];
  }
  if (n > 0) {
    const uint32_t v = (uint32_t{p[0]} << 16) | (n == 2 ? uint32_t{p[1]} << 8 : 0);
    *q++ = kBase64Alphabet[v >> 18];
    *q++ = kBase64Alphabet[(v >> 12) & 63];
    *q++ = n == 2 ? kBase64Alphabet[(v >> 6) & 63] : '=';
    *q++ = '=';
  }
  *q++ = '"';
  out.advance(static_cast<size_t>(q - start));
}

// Raw JSON text from PostgreSQL, embedded as is. The json type keeps its input verbatim, so it
// may contain newlines; outside strings they are whitespace (inside strings they cannot occur
// unescaped in valid JSON), so they become spaces and a JSON Lines record stays on one line.
void AppendRawJson(absl::string_view text, Out& out) {
  if (text.empty()) {  // cannot come from PostgreSQL; never emit an invalid document
    out.append("\"\"");
    return;
  }
  char* const start = out.Reserve(text.size());
  std::memcpy(start, text.data(), text.size());
  for (char* p = start; p != start + text.size(); ++p) {
    if (*p == '\n' || *p == '\r') *p = ' ';
  }
  out.advance(text.size());
}

// Exact decimal text of a 128-bit unscaled value at `scale`.
void AppendDecimal128(const arrow::Decimal128& value, int32_t scale, Out& out) {
  const bool negative = value.IsNegative();
  unsigned __int128 magnitude =
      (static_cast<unsigned __int128>(static_cast<uint64_t>(value.high_bits())) << 64) |
      value.low_bits();
  if (negative) magnitude = ~magnitude + 1;  // two's complement; also right for the minimum
  char digits[48];
  int n = 0;
  if (magnitude >> 64 == 0) {  // 64-bit division is several times cheaper than 128-bit
    uint64_t m = static_cast<uint64_t>(magnitude);
    do {
      digits[n++] = static_cast<char>('0' + static_cast<int>(m % 10));
      m /= 10;
    } while (m != 0);
  } else {
    do {
      digits[n++] = static_cast<char>('0' + static_cast<int>(magnitude % 10));
      magnitude /= 10;
    } while (magnitude != 0);
  }
  out.push_back('"');
  if (negative) out.push_back('-');
  if (scale <= 0) {
    for (int i = n - 1; i >= 0; --i) out.push_back(digits[i]);
    if (n != 1 || digits[0] != '0') out.append(static_cast<size_t>(-scale), '0');
  } else {
    if (n <= scale) {
      out.append("0.");
      out.append(static_cast<size_t>(scale - n), '0');
      for (int i = n - 1; i >= 0; --i) out.push_back(digits[i]);
    } else {
      for (int i = n - 1; i >= scale; --i) out.push_back(digits[i]);
      out.push_back('.');
      for (int i = scale - 1; i >= 0; --i) out.push_back(digits[i]);
    }
  }
  out.push_back('"');
}

template <typename T>
void AppendFloat(T value, Out& out) {
  if (std::isnan(value)) {
    out.append("\"NaN\"");
  } else if (std::isinf(value)) {
    out.append(value > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else {
    char* p = out.Reserve(40);
    auto [end, ec] = std::to_chars(p, p + 40, value);  // shortest round trip
    out.advance(static_cast<size_t>(end - p));
  }
}

// Appends `text` as a quoted, escaped JSON string (see the public AppendJsonString).
void JsonString(absl::string_view text, Out& out);

}  // namespace

namespace {

// Hand-written rather than nlohmann::json: nlohmann would need a json value (a heap copy) per
// string and throws on invalid UTF-8, while this copies runs of plain bytes straight into the
// output buffer. Only what RFC 8259 requires is escaped: '"', '\\' and bytes below 0x20.
constexpr std::array<bool, 256> kNeedsEscape = [] {
  std::array<bool, 256> table{};
  for (int c = 0; c < 0x20; ++c) table[c] = true;
  table['"'] = true;
  table['\\'] = true;
  return table;
}();

void JsonString(absl::string_view text, Out& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  const char* run = text.data();
  const char* const end = text.data() + text.size();
  for (const char* p = run; p != end; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (ABSL_PREDICT_TRUE(!kNeedsEscape[c])) continue;
    out.append(run, p);
    run = p + 1;
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      default: {
        const char escape[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        out.append(escape, sizeof(escape));
      }
    }
  }
  out.append(run, end);
  out.push_back('"');
}

// Upper-case hexadecimal of `v` without leading zeros ("0" for 0); returns the end.
char* PutHex(uint32_t v, char* p) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  int shift = 28;
  while (shift > 0 && (v >> shift) == 0) shift -= 4;
  for (; shift >= 0; shift -= 4) *p++ = kDigits[(v >> shift) & 15];
  return p;
}

}  // namespace

void AppendJsonString(absl::string_view text, std::string* out) {
  Out o(out);
  JsonString(text, o);
}

void AppendJsonTimestampMicros(int64_t micros, bool utc, std::string* out) {
  Out o(out);
  AppendTimestamp(micros, arrow::TimeUnit::MICRO, utc, o);
}

LsnText::LsnText(Lsn lsn) {
  // Lsn::ToString's "%X/%X", without absl::StrFormat's parsing and heap string: the per-change
  // paths print two or three LSNs per row.
  char* p = PutHex(static_cast<uint32_t>(lsn.value() >> 32), data_);
  *p++ = '/';
  p = PutHex(static_cast<uint32_t>(lsn.value()), p);
  size_ = static_cast<size_t>(p - data_);
}

namespace row_json_internal {

/// Renders the cells of one array; chosen once per column (per nested child) by MakeWriter.
class ValueWriter {
 public:
  explicit ValueWriter(std::shared_ptr<arrow::Array> array) : array_(std::move(array)) {
    // The validity bitmap, read directly: Array::IsNull is an out-of-line call per cell here.
    // Arrays without a bitmap have no nulls, except the all-null type (and unions, which have
    // no JSON rendering), for which IsNull answers.
    if (array_->null_bitmap_data() != nullptr) {
      validity_ = array_->null_bitmap_data();
      offset_ = array_->offset();
    } else {
      check_array_ = array_->type_id() == arrow::Type::NA;
    }
  }
  virtual ~ValueWriter() = default;

  void Write(int64_t i, Out& out) const {
    if (IsNull(i)) {
      out.append("null");
    } else {
      WriteValue(i, out);
    }
  }

 protected:
  bool IsNull(int64_t i) const {
    if (validity_ != nullptr) return !arrow::bit_util::GetBit(validity_, offset_ + i);
    return check_array_ && array_->IsNull(i);
  }
  virtual void WriteValue(int64_t i, Out& out) const = 0;
  std::shared_ptr<arrow::Array> array_;

 private:
  const uint8_t* validity_ = nullptr;
  int64_t offset_ = 0;
  bool check_array_ = false;
};

}  // namespace row_json_internal

namespace {

using row_json_internal::ValueWriter;

template <typename ArrayT>
const ArrayT& As(const std::shared_ptr<arrow::Array>& array) {
  return static_cast<const ArrayT&>(*array);
}

class NullWriter final : public ValueWriter {
 public:
  using ValueWriter::ValueWriter;

 protected:
  void WriteValue(int64_t, Out& out) const override { out.append("null"); }
};

class BoolWriter final : public ValueWriter {
 public:
  using ValueWriter::ValueWriter;

 protected:
  void WriteValue(int64_t i, Out& out) const override {
    out.append(As<arrow::BooleanArray>(array_).Value(i) ? "true" : "false");
  }
};

template <typename ArrayT>
class IntWriter final : public ValueWriter {
 public:
  using ValueWriter::ValueWriter;

 protected:
  void WriteValue(int64_t i, Out& out) const override {
    AppendInt(As<ArrayT>(array_).Value(i), out);
  }
};

template <typename ArrayT>
class FloatWriter final : public ValueWriter {
 public:
  using ValueWriter::ValueWriter;

 protected:
  void WriteValue(int64_t i, Out& out) const override {
    AppendFloat(As<ArrayT>(array_).Value(i), out);
  }
};

class Decimal128Writer final : public ValueWriter {
 public:
  Decimal128Writer(std::shared_ptr<arrow::Array> array, int32_t scale)
      : ValueWriter(std::move(array)), scale_(scale) {}

 protected:
  void WriteValue(int64_t i, Out& out) const override {
    AppendDecimal128(arrow::Decimal128(As<arrow::Decimal128Array>(array_).GetValue(i)), scale_,
                     out);
  }

 private:
  int32_t scale_;
};

// Wider than anything PostgreSQL's numeric maps to; formatted by Arrow (allocates, but rare).
class Decimal256Writer final : public ValueWriter {
 public:
  using ValueWriter::ValueWriter;

 protected:
  void WriteValue(int64_t i, Out& out) const override {
    JsonString(As<arrow::Decimal256Array>(array_).FormatValue(i), out);
  }
};

template <typename ArrayT>
class StringWriter final : public ValueWriter {
 public:
  StringWriter(std::shared_ptr<arrow::Array> array, bool raw_json)
      : ValueWriter(std::move(array)), raw_json_(raw_json) {}

 protected:
  void WriteValue(int64_t i, Out& out) const override {
    const auto view = As<ArrayT>(array_).GetView(i);
    const absl::string_view text(view.data(), view.size());
    if (raw_json_) {
      AppendRawJson(text, out);
    } else {
      JsonString(text, out);
    }
  }

 private:
  bool raw_json_;
};

template <typename ArrayT>
class BinaryWriter final : public ValueWriter {
 public:
  using ValueWriter::ValueWriter;

 protected:
  void WriteValue(int64_t i, Out& out) const override {
    const auto view = As<ArrayT>(array_).GetView(i);
    AppendBase64String(absl::string_view(view.data(), view.size()), out);
  }
};

class Date32Writer final : public ValueWriter {
 public:
  using ValueWriter::ValueWriter;

 protected:
  void WriteValue(int64_t i, Out& out) const override {
    const int32_t days = As<arrow::Date32Array>(array_).Value(i);
    if (days == std::numeric_limits<int32_t>::max()) {
      out.append("\"infinity\"");
    } else if (days == std::numeric_limits<int32_t>::min()) {
      out.append("\"-infinity\"");
    } else {
      out.push_back('"');
      AppendCivilDate(days, out);
      out.push_back('"');
    }
  }
};

class Date64Writer final : public ValueWriter {
 public:
  using ValueWriter::ValueWriter;

 protected:
  void WriteValue(int64_t i, Out& out) const override {
    out.push_back('"');
    AppendCivilDate(FloorDiv(As<arrow::Date64Array>(array_).Value(i), 86400000), out);
    out.push_back('"');
  }
};

class TimestampWriter final : public ValueWriter {
 public:
  TimestampWriter(std::shared_ptr<arrow::Array> array, arrow::TimeUnit::type unit, bool utc)
      : ValueWriter(std::move(array)), unit_(unit), utc_(utc) {}

 protected:
  void WriteValue(int64_t i, Out& out) const override {
    AppendTimestamp(As<arrow::TimestampArray>(array_).Value(i), unit_, utc_, out);
  }

 private:
  arrow::TimeUnit::type unit_;
  bool utc_;
};

template <typename ArrayT>
class TimeWriter final : public ValueWriter {
 public:
  TimeWriter(std::shared_ptr<arrow::Array> array, arrow::TimeUnit::type unit)
      : ValueWriter(std::move(array)), unit_(unit) {}

 protected:
  void WriteValue(int64_t i, Out& out) const override {
    const int64_t value = As<ArrayT>(array_).Value(i);
    const auto [per_second, digits] = UnitScale(unit_);
    const int64_t seconds = FloorDiv(value, per_second);
    out.push_back('"');
    AppendPadded(seconds / 3600, 2, out);
    out.push_back(':');
    AppendPadded(seconds / 60 % 60, 2, out);
    out.push_back(':');
    AppendPadded(seconds % 60, 2, out);
    AppendFraction(value - seconds * per_second, digits, out);
    out.push_back('"');
  }

 private:
  arrow::TimeUnit::type unit_;
};

class MonthDayNanoWriter final : public ValueWriter {
 public:
  using ValueWriter::ValueWriter;

 protected:
  void WriteValue(int64_t i, Out& out) const override {
    const auto v = As<arrow::MonthDayNanoIntervalArray>(array_).GetValue(i);
    out.append("{\"months\":");
    AppendInt(v.months, out);
    out.append(",\"days\":");
    AppendInt(v.days, out);
    out.append(",\"nanoseconds\":");
    AppendInt(v.nanoseconds, out);
    out.push_back('}');
  }
};

template <typename ArrayT>
class ListWriter final : public ValueWriter {
 public:
  ListWriter(std::shared_ptr<arrow::Array> array, std::unique_ptr<ValueWriter> values)
      : ValueWriter(std::move(array)), values_(std::move(values)) {}

 protected:
  void WriteValue(int64_t i, Out& out) const override {
    const auto& list = As<ArrayT>(array_);
    // Offsets index the unsliced child array, which is what values_ renders.
    const int64_t begin = list.value_offset(i);
    const int64_t end = begin + list.value_length(i);
    out.push_back('[');
    for (int64_t j = begin; j < end; ++j) {
      if (j != begin) out.push_back(',');
      values_->Write(j, out);
    }
    out.push_back(']');
  }

 private:
  std::unique_ptr<ValueWriter> values_;
};

class StructWriter final : public ValueWriter {
 public:
  StructWriter(std::shared_ptr<arrow::Array> array, std::vector<std::string> quoted_names,
               std::vector<std::unique_ptr<ValueWriter>> fields)
      : ValueWriter(std::move(array)),
        quoted_names_(std::move(quoted_names)),
        fields_(std::move(fields)) {}

 protected:
  void WriteValue(int64_t i, Out& out) const override {
    out.push_back('{');
    for (size_t f = 0; f < fields_.size(); ++f) {
      if (f != 0) out.push_back(',');
      out.append(quoted_names_[f]);
      out.push_back(':');
      fields_[f]->Write(i, out);
    }
    out.push_back('}');
  }

 private:
  std::vector<std::string> quoted_names_;  // "name" already escaped
  std::vector<std::unique_ptr<ValueWriter>> fields_;
};

class MapWriter final : public ValueWriter {
 public:
  MapWriter(std::shared_ptr<arrow::Array> array, std::unique_ptr<ValueWriter> keys,
            bool string_keys, std::unique_ptr<ValueWriter> items)
      : ValueWriter(std::move(array)),
        keys_(std::move(keys)),
        string_keys_(string_keys),
        items_(std::move(items)) {}

 protected:
  void WriteValue(int64_t i, Out& out) const override {
    const auto& map = As<arrow::MapArray>(array_);
    const int64_t begin = map.value_offset(i);
    const int64_t end = begin + map.value_length(i);
    out.push_back('{');
    std::string key;
    for (int64_t j = begin; j < end; ++j) {
      if (j != begin) out.push_back(',');
      if (string_keys_) {
        keys_->Write(j, out);
      } else {
        // JSON object keys are strings: a key rendered as a string (dates, decimals...) is used
        // as is, any other (numbers, booleans) is quoted.
        key.clear();
        {
          Out key_out(&key);
          keys_->Write(j, key_out);
        }
        if (!key.empty() && key.front() == '"') {
          out.append(key);
        } else {
          JsonString(key, out);
        }
      }
      out.push_back(':');
      items_->Write(j, out);
    }
    out.push_back('}');
  }

 private:
  std::unique_ptr<ValueWriter> keys_;
  bool string_keys_;
  std::unique_ptr<ValueWriter> items_;
};

bool IsJsonOid(const std::shared_ptr<const arrow::KeyValueMetadata>& metadata, bool* array) {
  *array = false;
  if (metadata == nullptr) return false;
  const int index = metadata->FindKey(cdc::kMetaPgTypeOid);
  if (index < 0) return false;
  int64_t oid = 0;
  if (!absl::SimpleAtoi(metadata->value(index), &oid)) return false;
  *array = oid == kJsonArrayOid || oid == kJsonbArrayOid;
  return oid == kJsonOid || oid == kJsonbOid || *array;
}

// `raw_json`: utf8 leaves (at any list depth) hold JSON text to embed as is.
absl::StatusOr<std::unique_ptr<ValueWriter>> MakeWriter(std::shared_ptr<arrow::Array> array,
                                                        bool raw_json) {
  const auto& type = *array->type();
  switch (type.id()) {
    case arrow::Type::NA:
      return std::make_unique<NullWriter>(std::move(array));
    case arrow::Type::BOOL:
      return std::make_unique<BoolWriter>(std::move(array));
    case arrow::Type::INT8:
      return std::make_unique<IntWriter<arrow::Int8Array>>(std::move(array));
    case arrow::Type::INT16:
      return std::make_unique<IntWriter<arrow::Int16Array>>(std::move(array));
    case arrow::Type::INT32:
      return std::make_unique<IntWriter<arrow::Int32Array>>(std::move(array));
    case arrow::Type::INT64:
      return std::make_unique<IntWriter<arrow::Int64Array>>(std::move(array));
    case arrow::Type::UINT8:
      return std::make_unique<IntWriter<arrow::UInt8Array>>(std::move(array));
    case arrow::Type::UINT16:
      return std::make_unique<IntWriter<arrow::UInt16Array>>(std::move(array));
    case arrow::Type::UINT32:
      return std::make_unique<IntWriter<arrow::UInt32Array>>(std::move(array));
    case arrow::Type::UINT64:
      return std::make_unique<IntWriter<arrow::UInt64Array>>(std::move(array));
    case arrow::Type::FLOAT:
      return std::make_unique<FloatWriter<arrow::FloatArray>>(std::move(array));
    case arrow::Type::DOUBLE:
      return std::make_unique<FloatWriter<arrow::DoubleArray>>(std::move(array));
    case arrow::Type::DECIMAL128: {
      const int32_t scale = static_cast<const arrow::Decimal128Type&>(type).scale();
      return std::make_unique<Decimal128Writer>(std::move(array), scale);
    }
    case arrow::Type::DECIMAL256:
      return std::make_unique<Decimal256Writer>(std::move(array));
    case arrow::Type::STRING:
      return std::make_unique<StringWriter<arrow::StringArray>>(std::move(array), raw_json);
    case arrow::Type::LARGE_STRING:
      return std::make_unique<StringWriter<arrow::LargeStringArray>>(std::move(array), raw_json);
    case arrow::Type::STRING_VIEW:
      return std::make_unique<StringWriter<arrow::StringViewArray>>(std::move(array), raw_json);
    case arrow::Type::BINARY:
      return std::make_unique<BinaryWriter<arrow::BinaryArray>>(std::move(array));
    case arrow::Type::LARGE_BINARY:
      return std::make_unique<BinaryWriter<arrow::LargeBinaryArray>>(std::move(array));
    case arrow::Type::BINARY_VIEW:
      return std::make_unique<BinaryWriter<arrow::BinaryViewArray>>(std::move(array));
    case arrow::Type::FIXED_SIZE_BINARY:
      return std::make_unique<BinaryWriter<arrow::FixedSizeBinaryArray>>(std::move(array));
    case arrow::Type::DATE32:
      return std::make_unique<Date32Writer>(std::move(array));
    case arrow::Type::DATE64:
      return std::make_unique<Date64Writer>(std::move(array));
    case arrow::Type::TIMESTAMP: {
      const auto& ts = static_cast<const arrow::TimestampType&>(type);
      // Arrow stores zoned timestamps as UTC instants whatever the zone's name.
      return std::make_unique<TimestampWriter>(std::move(array), ts.unit(), !ts.timezone().empty());
    }
    case arrow::Type::TIME32: {
      const auto unit = static_cast<const arrow::Time32Type&>(type).unit();
      return std::make_unique<TimeWriter<arrow::Time32Array>>(std::move(array), unit);
    }
    case arrow::Type::TIME64: {
      const auto unit = static_cast<const arrow::Time64Type&>(type).unit();
      return std::make_unique<TimeWriter<arrow::Time64Array>>(std::move(array), unit);
    }
    case arrow::Type::INTERVAL_MONTH_DAY_NANO:
      return std::make_unique<MonthDayNanoWriter>(std::move(array));
    case arrow::Type::LIST: {
      auto values = MakeWriter(As<arrow::ListArray>(array).values(), raw_json);
      if (!values.ok()) return values.status();
      return std::make_unique<ListWriter<arrow::ListArray>>(std::move(array), *std::move(values));
    }
    case arrow::Type::LARGE_LIST: {
      auto values = MakeWriter(As<arrow::LargeListArray>(array).values(), raw_json);
      if (!values.ok()) return values.status();
      return std::make_unique<ListWriter<arrow::LargeListArray>>(std::move(array),
                                                                 *std::move(values));
    }
    case arrow::Type::FIXED_SIZE_LIST: {
      auto values = MakeWriter(As<arrow::FixedSizeListArray>(array).values(), raw_json);
      if (!values.ok()) return values.status();
      return std::make_unique<ListWriter<arrow::FixedSizeListArray>>(std::move(array),
                                                                     *std::move(values));
    }
    case arrow::Type::STRUCT: {
      const auto& st = As<arrow::StructArray>(array);
      std::vector<std::string> names;
      std::vector<std::unique_ptr<ValueWriter>> fields;
      for (int f = 0; f < st.num_fields(); ++f) {
        const auto& field = st.struct_type()->field(f);
        bool unused;
        auto child = MakeWriter(st.field(f), IsJsonOid(field->metadata(), &unused));
        if (!child.ok()) return child.status();
        std::string quoted;
        AppendJsonString(field->name(), &quoted);
        names.push_back(std::move(quoted));
        fields.push_back(*std::move(child));
      }
      return std::make_unique<StructWriter>(std::move(array), std::move(names), std::move(fields));
    }
    case arrow::Type::MAP: {
      const auto& map = As<arrow::MapArray>(array);
      auto keys = MakeWriter(map.keys(), false);
      if (!keys.ok()) return keys.status();
      auto items = MakeWriter(map.items(), false);
      if (!items.ok()) return items.status();
      const auto key_type = map.keys()->type_id();
      const bool string_keys = key_type == arrow::Type::STRING ||
                               key_type == arrow::Type::LARGE_STRING ||
                               key_type == arrow::Type::STRING_VIEW;
      return std::make_unique<MapWriter>(std::move(array), *std::move(keys), string_keys,
                                         *std::move(items));
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("no JSON rendering for Arrow type ", type.ToString()));
  }
}

absl::StatusOr<std::unique_ptr<ValueWriter>> MakeColumnWriter(
    const std::shared_ptr<arrow::Field>& field, std::shared_ptr<arrow::Array> array) {
  bool json_array = false;
  const bool json = IsJsonOid(field->metadata(), &json_array);
  // A json[] column renders its elements raw; a json column whose Arrow type is not utf8 has
  // nothing raw to embed (MakeWriter only honours raw_json for string leaves).
  auto writer = MakeWriter(std::move(array), json);
  if (!writer.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("column \"", field->name(), "\" (",
                                                   field->type()->ToString(),
                                                   "): ", writer.status().message()));
  }
  return writer;
}

template <typename ArrayT>
absl::StatusOr<const ArrayT*> MetadataColumn(const arrow::RecordBatch& batch, const char* name,
                                             arrow::Type::type type) {
  const auto array = batch.GetColumnByName(name);
  if (array == nullptr || array->type_id() != type) {
    return absl::InvalidArgumentError(
        absl::StrCat("change records lack metadata column ", name, " of the expected type"));
  }
  return static_cast<const ArrayT*>(array.get());
}

}  // namespace

struct RowJsonRenderer::Column {
  std::string name;
  std::string quoted_name;  // "name": escaped, quoted
  std::unique_ptr<ValueWriter> after;
  std::unique_ptr<ValueWriter> before;  // null when __before has no such field
};

RowJsonRenderer::~RowJsonRenderer() = default;

absl::StatusOr<std::unique_ptr<RowJsonRenderer>> RowJsonRenderer::Create(
    const cdc::RelationChanges& changes) {
  if (changes.records == nullptr) {
    return absl::InvalidArgumentError("change records are missing");
  }
  std::unique_ptr<RowJsonRenderer> r(new RowJsonRenderer());
  r->records_ = changes.records;
  const arrow::RecordBatch& batch = *r->records_;
  const auto& schema = *batch.schema();
  r->schema_name_ = changes.schema;
  r->table_name_ = changes.table;

  const auto metadata = schema.metadata();
  if (metadata != nullptr) {
    if (r->schema_name_.empty()) r->schema_name_ = metadata->Get(cdc::kMetaSchema).ValueOr("");
    if (r->table_name_.empty()) r->table_name_ = metadata->Get(cdc::kMetaTable).ValueOr("");
    const auto key = metadata->Get(cdc::kMetaKey);
    if (key.ok()) {
      for (absl::string_view k : absl::StrSplit(*key, ',', absl::SkipEmpty())) {
        r->key_columns_.emplace_back(k);
      }
    }
    r->before_has_all_columns_ = metadata->Get(cdc::kMetaReplicaIdentity).ValueOr("") == "full";
  }
  if (r->key_columns_.empty()) r->key_columns_ = changes.key_columns;
  AppendJsonString(r->schema_name_, &r->quoted_schema_name_);
  AppendJsonString(r->table_name_, &r->quoted_table_name_);

  auto op = MetadataColumn<arrow::StringArray>(batch, cdc::kOpColumn, arrow::Type::STRING);
  auto lsn = MetadataColumn<arrow::UInt64Array>(batch, cdc::kLsnColumn, arrow::Type::UINT64);
  auto commit_lsn =
      MetadataColumn<arrow::UInt64Array>(batch, cdc::kCommitLsnColumn, arrow::Type::UINT64);
  auto commit_ts =
      MetadataColumn<arrow::TimestampArray>(batch, cdc::kCommitTsColumn, arrow::Type::TIMESTAMP);
  auto xid = MetadataColumn<arrow::Int64Array>(batch, cdc::kXidColumn, arrow::Type::INT64);
  auto seq = MetadataColumn<arrow::Int64Array>(batch, cdc::kSeqColumn, arrow::Type::INT64);
  auto unchanged =
      MetadataColumn<arrow::ListArray>(batch, cdc::kUnchangedColumn, arrow::Type::LIST);
  auto before = MetadataColumn<arrow::StructArray>(batch, cdc::kBeforeColumn, arrow::Type::STRUCT);
  auto exact = MetadataColumn<arrow::MapArray>(batch, cdc::kExactColumn, arrow::Type::MAP);
  for (const absl::Status& s :
       {op.status(), lsn.status(), commit_lsn.status(), commit_ts.status(), xid.status(),
        seq.status(), unchanged.status(), before.status(), exact.status()}) {
    if (!s.ok()) return s;
  }
  r->op_ = *op;
  r->lsn_ = *lsn;
  r->commit_lsn_ = *commit_lsn;
  r->commit_ts_ = *commit_ts;
  r->xid_ = *xid;
  r->seq_ = *seq;
  r->unchanged_ = *unchanged;
  r->before_ = *before;
  r->exact_ = *exact;
  if (r->unchanged_->values()->type_id() != arrow::Type::STRING ||
      r->exact_->keys()->type_id() != arrow::Type::STRING ||
      r->exact_->items()->type_id() != arrow::Type::STRING) {
    return absl::InvalidArgumentError("__unchanged and __exact must hold utf8 strings");
  }
  r->unchanged_values_ = static_cast<const arrow::StringArray*>(r->unchanged_->values().get());
  r->exact_keys_ = static_cast<const arrow::StringArray*>(r->exact_->keys().get());
  r->exact_items_ = static_cast<const arrow::StringArray*>(r->exact_->items().get());

  for (int c = 0; c < schema.num_fields(); ++c) {
    const auto& field = schema.field(c);
    if (cdc::IsMetadataColumn(field->name())) continue;
    Column column;
    column.name = field->name();
    AppendJsonString(column.name, &column.quoted_name);
    auto after = MakeColumnWriter(field, batch.column(c));
    if (!after.ok()) return after.status();
    column.after = *std::move(after);
    const int before_index = r->before_->struct_type()->GetFieldIndex(field->name());
    if (before_index >= 0) {
      auto before_writer = MakeColumnWriter(r->before_->struct_type()->field(before_index),
                                            r->before_->field(before_index));
      if (!before_writer.ok()) return before_writer.status();
      column.before = *std::move(before_writer);
    }
    r->columns_.push_back(std::move(column));
  }

  for (const std::string& key : r->key_columns_) {
    auto it = std::find_if(r->columns_.begin(), r->columns_.end(),
                           [&](const Column& c) { return c.name == key; });
    if (it == r->columns_.end()) {
      return absl::InvalidArgumentError(absl::StrCat("key column \"", key, "\" is not a column of ",
                                                     r->schema_name_, ".", r->table_name_));
    }
    r->key_by_name_.push_back(static_cast<size_t>(it - r->columns_.begin()));
  }
  std::sort(r->key_by_name_.begin(), r->key_by_name_.end(),
            [&](size_t a, size_t b) { return r->columns_[a].name < r->columns_[b].name; });
  for (size_t c = 0; c < r->columns_.size(); ++c) {
    if (r->columns_[c].before == nullptr) continue;
    const bool is_key = std::find(r->key_columns_.begin(), r->key_columns_.end(),
                                  r->columns_[c].name) != r->key_columns_.end();
    if (r->before_has_all_columns_ || is_key) r->before_columns_.push_back(c);
  }
  return r;
}

absl::string_view RowJsonRenderer::op(int64_t row) const {
  const auto v = op_->GetView(row);
  return absl::string_view(v.data(), v.size());
}
Lsn RowJsonRenderer::lsn(int64_t row) const { return Lsn(lsn_->Value(row)); }
Lsn RowJsonRenderer::commit_lsn(int64_t row) const { return Lsn(commit_lsn_->Value(row)); }
std::optional<int64_t> RowJsonRenderer::commit_ts_micros(int64_t row) const {
  if (commit_ts_->IsNull(row)) return std::nullopt;
  return commit_ts_->Value(row);
}
int64_t RowJsonRenderer::xid(int64_t row) const { return xid_->Value(row); }
int64_t RowJsonRenderer::seq(int64_t row) const { return seq_->Value(row); }

std::vector<absl::string_view> RowJsonRenderer::unchanged(int64_t row) const {
  std::vector<absl::string_view> out;
  if (unchanged_->IsNull(row)) return out;
  const int64_t begin = unchanged_->value_offset(row);
  const int64_t end = begin + unchanged_->value_length(row);
  for (int64_t j = begin; j < end; ++j) {
    const auto v = unchanged_values_->GetView(j);
    out.emplace_back(v.data(), v.size());
  }
  return out;
}

std::vector<std::pair<absl::string_view, absl::string_view>> RowJsonRenderer::exact(
    int64_t row) const {
  std::vector<std::pair<absl::string_view, absl::string_view>> out;
  if (exact_->IsNull(row)) return out;
  const int64_t begin = exact_->value_offset(row);
  const int64_t end = begin + exact_->value_length(row);
  for (int64_t j = begin; j < end; ++j) {
    const auto k = exact_keys_->GetView(j);
    absl::string_view value;
    if (!exact_items_->IsNull(j)) {
      const auto v = exact_items_->GetView(j);
      value = absl::string_view(v.data(), v.size());
    }
    out.emplace_back(absl::string_view(k.data(), k.size()), value);
  }
  return out;
}

bool RowJsonRenderer::IsUnchanged(int64_t row, absl::string_view column, bool before) const {
  if (unchanged_->IsNull(row)) return false;
  const int64_t begin = unchanged_->value_offset(row);
  const int64_t end = begin + unchanged_->value_length(row);
  constexpr absl::string_view kPrefix = "__before.";
  for (int64_t j = begin; j < end; ++j) {
    const auto v = unchanged_values_->GetView(j);
    absl::string_view entry(v.data(), v.size());
    if (before) {
      if (!absl::ConsumePrefix(&entry, kPrefix)) continue;
    }
    if (entry == column) return true;
  }
  return false;
}

void RowJsonRenderer::ImageTo(int64_t row, bool before, Out& out) const {
  if (before ? before_->IsNull(row) : (op(row) == "delete" || op(row) == "truncate")) {
    out.append("null");
    return;
  }
  // The common case has nothing unchanged: skip the per-column lookups.
  const bool any_unchanged = !unchanged_->IsNull(row) && unchanged_->value_length(row) > 0;
  out.push_back('{');
  bool first = true;
  auto emit = [&](const Column& column) {
    if (any_unchanged && IsUnchanged(row, column.name, before)) return;
    if (!first) out.push_back(',');
    first = false;
    out.append(column.quoted_name);
    out.push_back(':');
    (before ? column.before : column.after)->Write(row, out);
  };
  if (before) {
    for (size_t c : before_columns_) emit(columns_[c]);
  } else {
    for (const Column& column : columns_) emit(column);
  }
  out.push_back('}');
}

void RowJsonRenderer::AppendAfter(int64_t row, std::string* out) const {
  Out o(out);
  ImageTo(row, /*before=*/false, o);
}

void RowJsonRenderer::AppendBefore(int64_t row, std::string* out) const {
  Out o(out);
  ImageTo(row, /*before=*/true, o);
}

void RowJsonRenderer::AppendKey(int64_t row, std::string* out) const {
  Out o(out);
  KeyTo(row, o);
}

void RowJsonRenderer::AppendUnchanged(int64_t row, std::string* out) const {
  Out o(out);
  UnchangedTo(row, o);
}

void RowJsonRenderer::AppendExact(int64_t row, std::string* out) const {
  Out o(out);
  ExactTo(row, o);
}

void RowJsonRenderer::AppendChange(int64_t row, std::string* out) const {
  Out o(out);
  ChangeTo(row, o);
}

void RowJsonRenderer::KeyTo(int64_t row, Out& out) const {
  const absl::string_view operation = op(row);
  if (operation == "truncate") {
    out.append("null");
    return;
  }
  const bool has_before = !before_->IsNull(row);
  const bool from_before = operation == "delete" && has_before;
  const bool any_unchanged = !unchanged_->IsNull(row) && unchanged_->value_length(row) > 0;
  out.push_back('{');
  bool first = true;
  for (size_t c : key_by_name_) {
    const Column& column = columns_[c];
    const ValueWriter* writer = from_before ? column.before.get() : column.after.get();
    if (!from_before && any_unchanged && IsUnchanged(row, column.name, false)) {
      // An unchanged-TOAST key value was not sent; the old image has it when there is one.
      if (!has_before || column.before == nullptr || IsUnchanged(row, column.name, true)) continue;
      writer = column.before.get();
    }
    if (writer == nullptr) continue;
    if (!first) out.push_back(',');
    first = false;
    out.append(column.quoted_name);
    out.push_back(':');
    writer->Write(row, out);
  }
  out.push_back('}');
}

void RowJsonRenderer::UnchangedTo(int64_t row, Out& out) const {
  out.push_back('[');
  bool first = true;
  for (absl::string_view name : unchanged(row)) {
    if (!first) out.push_back(',');
    first = false;
    JsonString(name, out);
  }
  out.push_back(']');
}

void RowJsonRenderer::ExactTo(int64_t row, Out& out) const {
  out.push_back('{');
  bool first = true;
  for (const auto& [column, text] : exact(row)) {
    if (!first) out.push_back(',');
    first = false;
    JsonString(column, out);
    out.push_back(':');
    JsonString(text, out);
  }
  out.push_back('}');
}

void RowJsonRenderer::ChangeTo(int64_t row, Out& out) const {
  out.append("{\"op\":");
  JsonString(op(row), out);
  out.append(",\"schema\":");
  out.append(quoted_schema_name_);
  out.append(",\"table\":");
  out.append(quoted_table_name_);
  out.append(",\"lsn\":\"");
  out.append(LsnText(lsn(row)).view());
  out.append("\",\"commit_lsn\":\"");
  out.append(LsnText(commit_lsn(row)).view());
  out.append("\",\"commit_ts\":");
  const auto ts = commit_ts_micros(row);
  if (ts.has_value()) {
    AppendTimestamp(*ts, arrow::TimeUnit::MICRO, /*utc=*/true, out);
  } else {
    out.append("null");
  }
  out.append(",\"xid\":");
  AppendInt(xid(row), out);
  out.append(",\"seq\":");
  AppendInt(seq(row), out);
  out.append(",\"key\":");
  KeyTo(row, out);
  out.append(",\"before\":");
  ImageTo(row, /*before=*/true, out);
  out.append(",\"after\":");
  ImageTo(row, /*before=*/false, out);
  out.append(",\"unchanged\":");
  UnchangedTo(row, out);
  if (!exact_->IsNull(row) && exact_->value_length(row) > 0) {
    out.append(",\"exact\":");
    ExactTo(row, out);
  }
  out.push_back('}');
}

}  // namespace ductstream::codec
