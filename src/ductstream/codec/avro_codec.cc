// Avro object container files (https://avro.apache.org/docs/1.11.1/specification/).
//
// Division of labour, and why:
//   - Values are encoded here, straight from the Arrow arrays, with one writer object per column
//     chosen once per batch. Avro C's generic values would cost a vtable call, a field lookup and
//     often an allocation and copy per cell (strings must even be NUL-terminated copies), and the
//     Avro binary encoding is small (zigzag varints, little-endian floats, length-prefixed bytes).
//     fastavro, not us, checks the result in the tests.
//   - Avro C's file writer frames the encoded records into blocks, compresses them (deflate,
//     snappy) and writes the sync markers: the parts where a second implementation would only add
//     risk.
//   - The header is written here. Avro C 1.11 models no logical types, field defaults or custom
//     properties, and its writer serializes the schema it models, so its header would turn
//     decimals into plain bytes and timestamps into plain longs for every reader. We therefore
//     give Avro C a stand-in schema and replace its header by ours (same sync marker). The real
//     schema is still parsed by Avro C once per Arrow schema, as a validity check.
#include <avro.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include <arrow/api.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "ductstream/base/status.h"
#include "ductstream/codec/encoders.h"

namespace ductstream::codec::internal {
namespace {

static_assert(std::endian::native == std::endian::little,
              "Avro floats and Arrow buffers are both little-endian; a big-endian port must swap");

using Json = nlohmann::ordered_json;

// Avro blocks hold at least this many bytes before Avro C flushes them (larger blocks compress
// better); a record larger than this gets a larger block size for its file, because Avro C
// cannot split a record across blocks.
constexpr size_t kMinBlockSize = 256 * 1024;

// --- Avro binary encoding -------------------------------------------------------------------

inline void PutLong(int64_t v, std::string* out) {
  uint64_t z = (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);  // zigzag
  char buf[10];
  size_t n = 0;
  while (z >= 0x80) {
    buf[n++] = static_cast<char>((z & 0x7F) | 0x80);
    z >>= 7;
  }
  buf[n++] = static_cast<char>(z);
  out->append(buf, n);
}

inline void PutBytes(std::string_view v, std::string* out) {
  PutLong(static_cast<int64_t>(v.size()), out);
  out->append(v.data(), v.size());
}

template <typename T>
inline void PutFixed(T v, std::string* out) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out->append(buf, sizeof(T));
}

// Avro's decimal: the unscaled value as big-endian two's complement, in as few bytes as keep
// the sign.
inline void PutDecimal128(const uint8_t* little_endian16, std::string* out) {
  char be[16];
  for (int i = 0; i < 16; ++i) be[i] = static_cast<char>(little_endian16[15 - i]);
  int start = 0;
  while (start < 15) {
    const auto b = static_cast<uint8_t>(be[start]);
    const auto next = static_cast<uint8_t>(be[start + 1]);
    if ((b == 0x00 && (next & 0x80) == 0) || (b == 0xFF && (next & 0x80) != 0)) {
      ++start;
    } else {
      break;
    }
  }
  PutBytes(std::string_view(be + start, 16 - start), out);
}

// --- Column writers: the type is resolved once per column per batch -------------------------

class ValueWriter {
 public:
  virtual ~ValueWriter() = default;
  /// Appends the encoding of element `i` (a union branch index first when nullable).
  virtual absl::Status Write(int64_t i, std::string* out) = 0;
};

// The null handling shared by every writer: a nullable field is the union ["null", T], whose
// branch index (zigzag varint 0 or 1) precedes the value.
template <typename Derived, typename ArrayT>
class TypedWriter : public ValueWriter {
 public:
  TypedWriter(const arrow::Array& array, bool nullable, std::string path)
      : array_(static_cast<const ArrayT&>(array)), nullable_(nullable), path_(std::move(path)) {}

  absl::Status Write(int64_t i, std::string* out) final {
    if (array_.IsNull(i)) {
      if (!nullable_) [[unlikely]] {
        return absl::InvalidArgumentError(
            absl::StrCat("column ", path_, " is not nullable but row ", i, " is null"));
      }
      out->push_back('\0');
      return absl::OkStatus();
    }
    if (nullable_) out->push_back('\2');
    return static_cast<Derived*>(this)->WriteValue(i, out);
  }

 protected:
  const ArrayT& array_;
  const bool nullable_;
  const std::string path_;
};

// int8/16/32, int64, uint32, date32, time64, timestamp: Avro int and long share one encoding.
template <typename ArrayT>
class IntegerWriter final : public TypedWriter<IntegerWriter<ArrayT>, ArrayT> {
 public:
  using TypedWriter<IntegerWriter<ArrayT>, ArrayT>::TypedWriter;
  absl::Status WriteValue(int64_t i, std::string* out) {
    PutLong(static_cast<int64_t>(this->array_.Value(i)), out);
    return absl::OkStatus();
  }
};

class UInt64Writer final : public TypedWriter<UInt64Writer, arrow::UInt64Array> {
 public:
  using TypedWriter::TypedWriter;
  absl::Status WriteValue(int64_t i, std::string* out) {
    const uint64_t v = array_.Value(i);
    // Avro has no unsigned long; LSNs fit, and anything that does not is refused, not wrapped.
    if (v > static_cast<uint64_t>(INT64_MAX)) [[unlikely]] {
      return absl::InvalidArgumentError(
          absl::StrCat("column ", path_, " row ", i, ": uint64 ", v, " does not fit an Avro long"));
    }
    PutLong(static_cast<int64_t>(v), out);
    return absl::OkStatus();
  }
};

class BoolWriter final : public TypedWriter<BoolWriter, arrow::BooleanArray> {
 public:
  using TypedWriter::TypedWriter;
  absl::Status WriteValue(int64_t i, std::string* out) {
    out->push_back(array_.Value(i) ? '\1' : '\0');
    return absl::OkStatus();
  }
};

// float and double: IEEE little-endian, so NaN payloads and ±Inf go through bit for bit.
template <typename ArrayT>
class FloatingWriter final : public TypedWriter<FloatingWriter<ArrayT>, ArrayT> {
 public:
  using TypedWriter<FloatingWriter<ArrayT>, ArrayT>::TypedWriter;
  absl::Status WriteValue(int64_t i, std::string* out) {
    PutFixed(this->array_.Value(i), out);
    return absl::OkStatus();
  }
};

// utf8 → string and binary → bytes: the same encoding.
template <typename ArrayT>
class BinaryWriter final : public TypedWriter<BinaryWriter<ArrayT>, ArrayT> {
 public:
  using TypedWriter<BinaryWriter<ArrayT>, ArrayT>::TypedWriter;
  absl::Status WriteValue(int64_t i, std::string* out) {
    PutBytes(this->array_.GetView(i), out);
    return absl::OkStatus();
  }
};

class DecimalWriter final : public TypedWriter<DecimalWriter, arrow::Decimal128Array> {
 public:
  using TypedWriter::TypedWriter;
  absl::Status WriteValue(int64_t i, std::string* out) {
    PutDecimal128(array_.GetValue(i), out);
    return absl::OkStatus();
  }
};

class IntervalWriter final : public TypedWriter<IntervalWriter, arrow::MonthDayNanoIntervalArray> {
 public:
  using TypedWriter::TypedWriter;
  absl::Status WriteValue(int64_t i, std::string* out) {
    const auto v = array_.GetValue(i);
    PutLong(v.months, out);
    PutLong(v.days, out);
    PutLong(v.nanoseconds, out);
    return absl::OkStatus();
  }
};

absl::StatusOr<std::unique_ptr<ValueWriter>> MakeWriter(const arrow::Array& array,
                                                        const arrow::Field& field,
                                                        const std::string& path);

class ListWriter final : public TypedWriter<ListWriter, arrow::ListArray> {
 public:
  ListWriter(const arrow::Array& array, bool nullable, std::string path,
             std::unique_ptr<ValueWriter> items)
      : TypedWriter(array, nullable, std::move(path)), items_(std::move(items)) {}
  absl::Status WriteValue(int64_t i, std::string* out) {
    const int64_t begin = array_.value_offset(i);
    const int64_t end = array_.value_offset(i + 1);
    // One block of items (count, items), then the empty block that ends the array.
    if (end > begin) {
      PutLong(end - begin, out);
      for (int64_t j = begin; j < end; ++j) DS_RETURN_IF_ERROR(items_->Write(j, out));
    }
    out->push_back('\0');
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<ValueWriter> items_;
};

class MapWriter final : public TypedWriter<MapWriter, arrow::MapArray> {
 public:
  MapWriter(const arrow::Array& array, bool nullable, std::string path,
            std::unique_ptr<ValueWriter> keys, std::unique_ptr<ValueWriter> items)
      : TypedWriter(array, nullable, std::move(path)),
        keys_(std::move(keys)),
        items_(std::move(items)) {}
  absl::Status WriteValue(int64_t i, std::string* out) {
    const int64_t begin = array_.value_offset(i);
    const int64_t end = array_.value_offset(i + 1);
    if (end > begin) {
      PutLong(end - begin, out);
      for (int64_t j = begin; j < end; ++j) {
        DS_RETURN_IF_ERROR(keys_->Write(j, out));
        DS_RETURN_IF_ERROR(items_->Write(j, out));
      }
    }
    out->push_back('\0');
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<ValueWriter> keys_;
  std::unique_ptr<ValueWriter> items_;
};

class StructWriter final : public TypedWriter<StructWriter, arrow::StructArray> {
 public:
  StructWriter(const arrow::Array& array, bool nullable, std::string path,
               std::vector<std::shared_ptr<arrow::Array>> children,
               std::vector<std::unique_ptr<ValueWriter>> writers)
      : TypedWriter(array, nullable, std::move(path)),
        children_(std::move(children)),
        writers_(std::move(writers)) {}
  absl::Status WriteValue(int64_t i, std::string* out) {
    for (auto& w : writers_) DS_RETURN_IF_ERROR(w->Write(i, out));
    return absl::OkStatus();
  }

 private:
  // StructArray::field() returns children adjusted for the struct's slice offset; keep them
  // alive as long as their writers.
  std::vector<std::shared_ptr<arrow::Array>> children_;
  std::vector<std::unique_ptr<ValueWriter>> writers_;
};

template <typename W>
std::unique_ptr<ValueWriter> Simple(const arrow::Array& array, const arrow::Field& field,
                                    const std::string& path) {
  return std::make_unique<W>(array, field.nullable(), path);
}

// Mirrors AvroTypeFor below, which has already refused the types missing here.
absl::StatusOr<std::unique_ptr<ValueWriter>> MakeWriter(const arrow::Array& array,
                                                        const arrow::Field& field,
                                                        const std::string& path) {
  switch (array.type_id()) {
    case arrow::Type::BOOL:
      return Simple<BoolWriter>(array, field, path);
    case arrow::Type::INT8:
      return Simple<IntegerWriter<arrow::Int8Array>>(array, field, path);
    case arrow::Type::INT16:
      return Simple<IntegerWriter<arrow::Int16Array>>(array, field, path);
    case arrow::Type::INT32:
      return Simple<IntegerWriter<arrow::Int32Array>>(array, field, path);
    case arrow::Type::INT64:
      return Simple<IntegerWriter<arrow::Int64Array>>(array, field, path);
    case arrow::Type::UINT32:
      return Simple<IntegerWriter<arrow::UInt32Array>>(array, field, path);
    case arrow::Type::UINT64:
      return Simple<UInt64Writer>(array, field, path);
    case arrow::Type::FLOAT:
      return Simple<FloatingWriter<arrow::FloatArray>>(array, field, path);
    case arrow::Type::DOUBLE:
      return Simple<FloatingWriter<arrow::DoubleArray>>(array, field, path);
    case arrow::Type::STRING:
      return Simple<BinaryWriter<arrow::StringArray>>(array, field, path);
    case arrow::Type::BINARY:
      return Simple<BinaryWriter<arrow::BinaryArray>>(array, field, path);
    case arrow::Type::DECIMAL128:
      return Simple<DecimalWriter>(array, field, path);
    case arrow::Type::DATE32:
      return Simple<IntegerWriter<arrow::Date32Array>>(array, field, path);
    case arrow::Type::TIME64:
      return Simple<IntegerWriter<arrow::Time64Array>>(array, field, path);
    case arrow::Type::TIMESTAMP:
      return Simple<IntegerWriter<arrow::TimestampArray>>(array, field, path);
    case arrow::Type::INTERVAL_MONTH_DAY_NANO:
      return Simple<IntervalWriter>(array, field, path);
    case arrow::Type::LIST: {
      const auto& list = static_cast<const arrow::ListArray&>(array);
      const auto& item_field = *list.list_type()->value_field();
      DS_ASSIGN_OR_RETURN(auto items, MakeWriter(*list.values(), item_field, path + "[]"));
      return std::make_unique<ListWriter>(array, field.nullable(), path, std::move(items));
    }
    case arrow::Type::MAP: {
      const auto& map = static_cast<const arrow::MapArray&>(array);
      const auto& type = *map.map_type();
      DS_ASSIGN_OR_RETURN(auto keys, MakeWriter(*map.keys(), *type.key_field(), path + "{key}"));
      DS_ASSIGN_OR_RETURN(auto items,
                          MakeWriter(*map.items(), *type.item_field(), path + "{value}"));
      return std::make_unique<MapWriter>(array, field.nullable(), path, std::move(keys),
                                         std::move(items));
    }
    case arrow::Type::STRUCT: {
      const auto& st = static_cast<const arrow::StructArray&>(array);
      std::vector<std::shared_ptr<arrow::Array>> children;
      std::vector<std::unique_ptr<ValueWriter>> writers;
      for (int c = 0; c < st.num_fields(); ++c) {
        children.push_back(st.field(c));
        const auto& child_field = *st.struct_type()->field(c);
        DS_ASSIGN_OR_RETURN(
            auto w, MakeWriter(*children.back(), child_field, path + "." + child_field.name()));
        writers.push_back(std::move(w));
      }
      return std::make_unique<StructWriter>(array, field.nullable(), path, std::move(children),
                                            std::move(writers));
    }
    default:
      return absl::InternalError(
          absl::StrCat("no Avro writer for column ", path, " of type ", array.type()->ToString()));
  }
}

// --- Schema -----------------------------------------------------------------------------------

bool IsNameStart(char c) { return absl::ascii_isalpha(c) || c == '_'; }
bool IsNameChar(char c) { return absl::ascii_isalnum(c) || c == '_'; }

bool IsAvroName(std::string_view s) {
  return !s.empty() && IsNameStart(s[0]) && std::all_of(s.begin(), s.end(), IsNameChar);
}

std::string Sanitize(std::string_view s) {
  std::string r;
  r.reserve(s.size() + 1);
  if (s.empty() || !IsNameStart(s[0])) r.push_back('_');
  for (char c : s) r.push_back(IsNameChar(c) ? c : '_');
  return r;
}

// Returns `base`, or `base_2`, `base_3`... whichever is not in `used` yet, and records it.
std::string Unique(const std::string& base, absl::flat_hash_set<std::string>* used) {
  std::string name = base;
  for (int n = 2; used->contains(name); ++n) name = absl::StrCat(base, "_", n);
  used->insert(name);
  return name;
}

// Builds the Avro schema of one change-schema RecordBatch. Named types (records) live in one
// namespace, so their names are kept unique here.
class SchemaBuilder {
 public:
  explicit SchemaBuilder(std::string record_name) : record_name_(std::move(record_name)) {
    type_names_.insert(record_name_);
  }

  absl::StatusOr<Json> Record(const std::string& name, const arrow::FieldVector& fields,
                              const std::string& path_prefix) {
    Json record = {{"type", "record"}, {"name", name}};
    if (name == record_name_) record["namespace"] = "ductstream";
    // Names that are already valid keep themselves; the others are sanitized around them, so a
    // real column "order_id" is never renamed because of a column "order id".
    absl::flat_hash_set<std::string> used;
    for (const auto& f : fields) {
      if (IsAvroName(f->name())) used.insert(f->name());
    }
    Json out_fields = Json::array();
    for (const auto& f : fields) {
      const std::string path = path_prefix + f->name();
      Json field = {{"name", ""}};
      if (IsAvroName(f->name())) {
        field["name"] = f->name();
      } else {
        field["name"] = Unique(Sanitize(f->name()), &used);
        // The column's real name, for consumers that map fields back to PostgreSQL (and to the
        // names listed in __unchanged and __exact). Avro aliases must be valid names themselves,
        // so they cannot carry it.
        field["pg_name"] = f->name();
      }
      DS_ASSIGN_OR_RETURN(Json type, FieldType(*f, name, path));
      field["type"] = std::move(type);
      if (f->nullable()) field["default"] = nullptr;
      out_fields.push_back(std::move(field));
    }
    record["fields"] = std::move(out_fields);
    return record;
  }

  absl::StatusOr<Json> FieldType(const arrow::Field& field, const std::string& parent_name,
                                 const std::string& path) {
    DS_ASSIGN_OR_RETURN(Json type, TypeFor(field, parent_name, path));
    if (!field.nullable()) return type;
    return Json::array({"null", std::move(type)});
  }

 private:
  absl::StatusOr<Json> TypeFor(const arrow::Field& field, const std::string& parent_name,
                               const std::string& path) {
    const arrow::DataType& type = *field.type();
    switch (type.id()) {
      case arrow::Type::BOOL:
        return Json("boolean");
      case arrow::Type::INT8:
      case arrow::Type::INT16:
      case arrow::Type::INT32:
        return Json("int");
      case arrow::Type::INT64:
      case arrow::Type::UINT32:
      case arrow::Type::UINT64:  // values above INT64_MAX are refused when encoding
        return Json("long");
      case arrow::Type::FLOAT:
        return Json("float");
      case arrow::Type::DOUBLE:
        return Json("double");
      case arrow::Type::STRING:
        return Json("string");
      case arrow::Type::BINARY:
        return Json("bytes");
      case arrow::Type::DECIMAL128: {
        const auto& d = static_cast<const arrow::Decimal128Type&>(type);
        return Json{{"type", "bytes"},
                    {"logicalType", "decimal"},
                    {"precision", d.precision()},
                    {"scale", d.scale()}};
      }
      case arrow::Type::DATE32:
        return Json{{"type", "int"}, {"logicalType", "date"}};
      case arrow::Type::TIME64:
        if (static_cast<const arrow::Time64Type&>(type).unit() != arrow::TimeUnit::MICRO) break;
        return Json{{"type", "long"}, {"logicalType", "time-micros"}};
      case arrow::Type::TIMESTAMP: {
        const auto& ts = static_cast<const arrow::TimestampType&>(type);
        if (ts.unit() != arrow::TimeUnit::MICRO) break;
        // With a time zone Arrow stores instants (UTC); without one, wall-clock readings.
        return Json{
            {"type", "long"},
            {"logicalType", ts.timezone().empty() ? "local-timestamp-micros" : "timestamp-micros"}};
      }
      case arrow::Type::INTERVAL_MONTH_DAY_NANO:
        // Avro's `duration` (fixed(12): months, days, milliseconds) would drop the
        // microseconds PostgreSQL intervals carry, so the three parts travel as a record.
        if (!interval_name_.empty()) return Json(interval_name_);  // defined once, then named
        interval_name_ = Unique("month_day_nano_interval", &type_names_);
        return Json{{"type", "record"},
                    {"name", interval_name_},
                    {"fields", Json::array({Json{{"name", "months"}, {"type", "int"}},
                                            Json{{"name", "days"}, {"type", "int"}},
                                            Json{{"name", "nanoseconds"}, {"type", "long"}}})}};
      case arrow::Type::LIST: {
        const auto& item = *static_cast<const arrow::ListType&>(type).value_field();
        DS_ASSIGN_OR_RETURN(Json items,
                            FieldType(item, NestedName(parent_name, field.name()), path + "[]"));
        return Json{{"type", "array"}, {"items", std::move(items)}};
      }
      case arrow::Type::MAP: {
        const auto& map = static_cast<const arrow::MapType&>(type);
        if (map.key_type()->id() != arrow::Type::STRING) break;  // Avro map keys are strings
        DS_ASSIGN_OR_RETURN(
            Json values,
            FieldType(*map.item_field(), NestedName(parent_name, field.name()), path + "{value}"));
        return Json{{"type", "map"}, {"values", std::move(values)}};
      }
      case arrow::Type::STRUCT: {
        const std::string name = Unique(NestedName(parent_name, field.name()), &type_names_);
        return Record(name, type.fields(), path + ".");
      }
      default:
        break;
    }
    return absl::InvalidArgumentError(absl::StrCat("column ", path, " has Arrow type ",
                                                   type.ToString(),
                                                   ", which the Avro encoder does not support"));
  }

  static std::string NestedName(const std::string& parent, const std::string& field) {
    return absl::StrCat(parent, "_", IsAvroName(field) ? field : Sanitize(field));
  }

  const std::string record_name_;
  absl::flat_hash_set<std::string> type_names_;
  std::string interval_name_;
};

// The container header up to, not including, the sync marker.
std::string HeaderPrefix(const std::string& schema_json, const std::string& codec,
                         const arrow::KeyValueMetadata* metadata) {
  std::string h("Obj\x01", 4);
  std::vector<std::pair<std::string, std::string>> meta = {{"avro.schema", schema_json},
                                                           {"avro.codec", codec}};
  // The relation's facts (schema, table, key, replica identity) as user metadata; the "avro."
  // prefix is reserved by the spec.
  if (metadata != nullptr) {
    for (int64_t i = 0; i < metadata->size(); ++i) {
      if (metadata->key(i).starts_with("avro.")) continue;
      meta.emplace_back(metadata->key(i), metadata->value(i));
    }
  }
  PutLong(static_cast<int64_t>(meta.size()), &h);
  for (const auto& [k, v] : meta) {
    PutBytes(k, &h);
    PutBytes(v, &h);
  }
  PutLong(0, &h);
  return h;
}

// Reads one zigzag varint from data[*pos...]; false when truncated or too long.
bool GetLong(const char* data, size_t size, size_t* pos, int64_t* v) {
  uint64_t z = 0;
  for (int shift = 0; shift < 64 && *pos < size; shift += 7) {
    const auto b = static_cast<uint8_t>(data[(*pos)++]);
    z |= static_cast<uint64_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) {
      *v = static_cast<int64_t>(z >> 1) ^ -static_cast<int64_t>(z & 1);
      return true;
    }
  }
  return false;
}

// Offset of the sync marker at the end of an Avro C header.
absl::StatusOr<size_t> SyncMarkerOffset(const char* data, size_t size) {
  const auto bad = [] { return absl::InternalError("Avro C wrote an unreadable file header"); };
  if (size < 4 || std::memcmp(data, "Obj\x01", 4) != 0) return bad();
  size_t pos = 4;
  for (;;) {
    int64_t count;
    if (!GetLong(data, size, &pos, &count)) return bad();
    if (count == 0) break;
    if (count < 0) {  // a negative block count is followed by the block's size in bytes
      int64_t bytes;
      if (!GetLong(data, size, &pos, &bytes)) return bad();
      count = -count;
    }
    for (int64_t i = 0; i < 2 * count; ++i) {  // key, value
      int64_t len;
      if (!GetLong(data, size, &pos, &len) || len < 0 || static_cast<uint64_t>(len) > size - pos) {
        return bad();
      }
      pos += static_cast<size_t>(len);
    }
  }
  if (size - pos < 16) return bad();
  return pos;
}

// The output of Avro C's file writer, in memory. open_memstream rather than fmemopen (which
// needs the final size up front) or a temporary file (disk I/O and cleanup on the data path):
// the buffer grows as Avro C writes, and Avro C only ever writes forward.
class MemoryFile {
 public:
  MemoryFile() : fp_(open_memstream(&data_, &size_)) {}
  ~MemoryFile() {
    if (fp_ != nullptr) std::fclose(fp_);
    std::free(data_);
  }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;

  FILE* fp() const { return fp_; }
  /// Closes the stream; data() and size() are then final.
  bool Close() {
    const bool ok = std::fclose(fp_) == 0;
    fp_ = nullptr;
    return ok;
  }
  const char* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
  FILE* fp_;
};

absl::Status AvroError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", avro_strerror()));
}

// Runs Avro C's file writer over already-encoded records (record k is
// rows[ends[k-1], ends[k])) into `file`: header, then blocks.
absl::Status WriteBlocks(const std::string& codec, const std::string& rows,
                         const std::vector<size_t>& ends, size_t block_size, MemoryFile* file) {
  if (file->fp() == nullptr) return absl::InternalError("open_memstream failed");
  avro_file_writer_t writer = nullptr;
  // The stand-in schema: records go in pre-encoded, and the header is replaced by ours.
  avro_schema_t stand_in = avro_schema_null();
  const int rc = avro_file_writer_create_with_codec_fp(
      file->fp(), "<memory>", /*should_close=*/0, stand_in, &writer, codec.c_str(), block_size);
  avro_schema_decref(stand_in);
  if (rc != 0) return AvroError("creating the Avro file writer");
  size_t begin = 0;
  absl::Status status;
  for (size_t end : ends) {
    if (avro_file_writer_append_encoded(writer, rows.data() + begin,
                                        static_cast<int64_t>(end - begin)) != 0) {
      status = AvroError("appending an Avro record");
      break;
    }
    begin = end;
  }
  if (avro_file_writer_close(writer) != 0 && status.ok()) {
    status = AvroError("closing the Avro file writer");
  }
  DS_RETURN_IF_ERROR(status);
  if (!file->Close()) return absl::InternalError("closing the Avro memory stream failed");
  return absl::OkStatus();
}

class AvroEncoder final : public Encoder {
 public:
  explicit AvroEncoder(std::string codec) : codec_(std::move(codec)) {}

  WireFormat format() const override { return WireFormat::kAvro; }

  absl::Status Encode(const cdc::RelationChanges& changes, std::string* out) override {
    const auto context = [&] {
      return absl::StrCat("encoding ", changes.QualifiedName(), " as Avro");
    };
    if (changes.records == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(context(), ": no record batch"));
    }
    const arrow::RecordBatch& batch = *changes.records;
    absl::StatusOr<const SchemaEntry*> entry = Lookup(changes);
    if (!entry.ok()) return base::Annotate(entry.status(), context());

    // The writers borrow the arrays; `columns` keeps them alive until the batch is encoded.
    std::vector<std::shared_ptr<arrow::Array>> columns = batch.columns();
    std::vector<std::unique_ptr<ValueWriter>> writers;
    writers.reserve(columns.size());
    for (size_t c = 0; c < columns.size(); ++c) {
      const auto& field = *batch.schema()->field(static_cast<int>(c));
      DS_ASSIGN_OR_RETURN(auto w, MakeWriter(*columns[c], field, field.name()));
      writers.push_back(std::move(w));
    }

    rows_.clear();
    ends_.clear();
    ends_.reserve(batch.num_rows());
    size_t largest = 0;
    for (int64_t r = 0; r < batch.num_rows(); ++r) {
      const size_t begin = rows_.size();
      for (auto& w : writers) DS_RETURN_IF_ERROR_CTX(w->Write(r, &rows_), context());
      ends_.push_back(rows_.size());
      largest = std::max(largest, rows_.size() - begin);
    }

    MemoryFile file;
    DS_RETURN_IF_ERROR_CTX(
        WriteBlocks(codec_, rows_, ends_, std::max(kMinBlockSize, largest), &file), context());
    DS_ASSIGN_OR_RETURN(const size_t sync, SyncMarkerOffset(file.data(), file.size()));
    const std::string& header = (*entry)->header_prefix;
    out->reserve(out->size() + header.size() + file.size() - sync);
    out->append(header);
    out->append(file.data() + sync, file.size() - sync);  // sync marker, then the blocks
    return absl::OkStatus();
  }

 private:
  struct SchemaEntry {
    std::shared_ptr<arrow::Schema> arrow_schema;
    std::string pg_schema;
    std::string pg_table;
    std::string header_prefix;
  };

  // Batches of one relation repeat its schema (usually the very same object), so the Avro
  // schema is derived once per distinct (Arrow schema, relation name).
  absl::StatusOr<const SchemaEntry*> Lookup(const cdc::RelationChanges& changes) {
    const auto& schema = changes.records->schema();
    const auto same_relation = [&](const SchemaEntry& e) {
      return e.pg_schema == changes.schema && e.pg_table == changes.table;
    };
    for (const auto& e : cache_) {
      if (e->arrow_schema == schema && same_relation(*e)) return e.get();
    }
    for (const auto& e : cache_) {
      if (same_relation(*e) && e->arrow_schema->Equals(*schema, /*check_metadata=*/true)) {
        return e.get();
      }
    }
    DS_ASSIGN_OR_RETURN(auto entry, BuildEntry(changes));
    if (cache_.size() >= kMaxCachedSchemas) cache_.erase(cache_.begin());
    cache_.push_back(std::move(entry));
    return cache_.back().get();
  }

  absl::StatusOr<std::unique_ptr<SchemaEntry>> BuildEntry(const cdc::RelationChanges& changes) {
    const auto& schema = changes.records->schema();
    const std::string record_name =
        changes.schema.empty() && changes.table.empty()
            ? "ductstream_record"
            : Sanitize(absl::StrCat(changes.schema, "_", changes.table));
    SchemaBuilder builder(record_name);
    DS_ASSIGN_OR_RETURN(Json json, builder.Record(record_name, schema->fields(), ""));
    const std::string text = json.dump();
    // Avro C checks names, nesting and references (it ignores logical types and properties).
    avro_schema_t parsed = nullptr;
    if (avro_schema_from_json_length(text.data(), text.size(), &parsed) != 0) {
      return AvroError(
          absl::StrCat("Avro schema derived for ", changes.QualifiedName(), " is invalid"));
    }
    avro_schema_decref(parsed);
    auto entry = std::make_unique<SchemaEntry>();
    entry->arrow_schema = schema;
    entry->pg_schema = changes.schema;
    entry->pg_table = changes.table;
    entry->header_prefix = HeaderPrefix(text, codec_, schema->metadata().get());
    return entry;
  }

  static constexpr size_t kMaxCachedSchemas = 64;
  const std::string codec_;
  std::vector<std::unique_ptr<SchemaEntry>> cache_;
  // Reused across batches so the steady state allocates nothing for them.
  std::string rows_;
  std::vector<size_t> ends_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Encoder>> MakeAvroEncoder(const EncoderOptions& options) {
  std::string codec = absl::AsciiStrToLower(options.compression);
  if (codec.empty()) codec = "null";
  if (codec != "null" && codec != "deflate" && codec != "snappy") {
    return absl::InvalidArgumentError(absl::StrCat("unsupported Avro compression \"",
                                                   options.compression,
                                                   "\" (expected null, deflate or snappy)"));
  }
  // Whether a codec was compiled into Avro C shows only when a writer is created with it.
  MemoryFile probe;
  if (absl::Status s = WriteBlocks(codec, {}, {}, kMinBlockSize, &probe); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("Avro compression \"", codec,
                                                   "\" is not available in this Avro C build (",
                                                   s.message(), ")"));
  }
  return std::make_unique<AvroEncoder>(std::move(codec));
}

}  // namespace ductstream::codec::internal
