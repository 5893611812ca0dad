#include "ductstream/postgres/pgoutput.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "ductstream/base/status.h"

namespace ductstream::postgres::pgoutput {
namespace {

// Big-endian reader over one message. Every read checks bounds: the input comes from the network.
class Reader {
 public:
  Reader(absl::string_view data, char type) : data_(data), type_(type) {}

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed pgoutput '", absl::string_view(&type_, 1), "' message: ", what,
                     " at offset ", pos_, " of ", data_.size()));
  }
  bool Has(size_t n) const { return data_.size() - pos_ >= n; }
  size_t remaining() const { return data_.size() - pos_; }

  absl::Status U8(uint8_t& out) {
    if (!Has(1)) return Error("truncated");
    out = static_cast<uint8_t>(data_[pos_++]);
    return absl::OkStatus();
  }
  absl::Status U16(uint16_t& out) {
    uint64_t v = 0;
    DS_RETURN_IF_ERROR(Big(2, v));
    out = static_cast<uint16_t>(v);
    return absl::OkStatus();
  }
  absl::Status U32(uint32_t& out) {
    uint64_t v = 0;
    DS_RETURN_IF_ERROR(Big(4, v));
    out = static_cast<uint32_t>(v);
    return absl::OkStatus();
  }
  absl::Status I32(int32_t& out) {
    uint32_t v = 0;
    DS_RETURN_IF_ERROR(U32(v));
    out = static_cast<int32_t>(v);
    return absl::OkStatus();
  }
  absl::Status U64(uint64_t& out) { return Big(8, out); }
  absl::Status I64(int64_t& out) {
    uint64_t v = 0;
    DS_RETURN_IF_ERROR(Big(8, v));
    out = static_cast<int64_t>(v);
    return absl::OkStatus();
  }
  absl::Status LsnField(Lsn& out) {
    uint64_t v = 0;
    DS_RETURN_IF_ERROR(U64(v));
    out = Lsn(v);
    return absl::OkStatus();
  }
  absl::Status XidField(Xid& out) {
    uint32_t v = 0;
    DS_RETURN_IF_ERROR(U32(v));
    out = Xid(v);
    return absl::OkStatus();
  }
  absl::Status OidField(Oid& out) {
    uint32_t v = 0;
    DS_RETURN_IF_ERROR(U32(v));
    out = Oid(v);
    return absl::OkStatus();
  }
  // NUL-terminated string.
  absl::Status String(std::string& out) {
    const void* nul = std::memchr(data_.data() + pos_, '\0', data_.size() - pos_);
    if (nul == nullptr) return Error("unterminated string");
    size_t len = static_cast<const char*>(nul) - (data_.data() + pos_);
    out.assign(data_.data() + pos_, len);
    pos_ += len + 1;
    return absl::OkStatus();
  }
  absl::Status Bytes(size_t n, absl::string_view& out) {
    if (!Has(n)) return Error(absl::StrCat("value of ", n, " bytes truncated"));
    out = data_.substr(pos_, n);
    pos_ += n;
    return absl::OkStatus();
  }
  absl::Status Done() const {
    if (pos_ != data_.size()) return Error(absl::StrCat(data_.size() - pos_, " trailing bytes"));
    return absl::OkStatus();
  }

 private:
  absl::Status Big(size_t n, uint64_t& out) {
    if (!Has(n)) return Error("truncated");
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(data_[pos_ + i]);
    pos_ += n;
    out = v;
    return absl::OkStatus();
  }

  absl::string_view data_;
  char type_;
  size_t pos_ = 0;
};

absl::Status ReadTuple(Reader& r, std::vector<Cell>& cells) {
  uint16_t ncols = 0;
  DS_RETURN_IF_ERROR(r.U16(ncols));
  cells.resize(ncols);
  for (uint16_t i = 0; i < ncols; ++i) {
    uint8_t kind = 0;
    DS_RETURN_IF_ERROR(r.U8(kind));
    Cell& cell = cells[i];
    cell.data = {};
    switch (kind) {
      case 'n':
        cell.kind = CellKind::kNull;
        break;
      case 'u':
        cell.kind = CellKind::kUnchangedToast;
        break;
      case 't':
      case 'b': {
        cell.kind = kind == 't' ? CellKind::kText : CellKind::kBinary;
        int32_t len = 0;
        DS_RETURN_IF_ERROR(r.I32(len));
        if (len < 0) return r.Error(absl::StrCat("negative length ", len, " for column ", i));
        DS_RETURN_IF_ERROR(r.Bytes(static_cast<size_t>(len), cell.data));
        break;
      }
      default:
        return r.Error(
            absl::StrCat("unknown tuple cell kind ", static_cast<int>(kind), " for column ", i));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Decoder::Decode(absl::string_view message, Handler& handler) {
  if (message.empty()) return absl::InvalidArgumentError("empty pgoutput message");
  const char type = message[0];
  Reader r(message.substr(1), type);
  // Inside a streamed transaction segment, data messages carry the transaction id first.
  auto stream_xid = [&](Xid& xid) -> absl::Status {
    xid = Xid(0);
    return in_stream_ ? r.XidField(xid) : absl::OkStatus();
  };

  switch (type) {
    case 'B': {
      BeginMessage m;
      DS_RETURN_IF_ERROR(r.LsnField(m.final_lsn));
      DS_RETURN_IF_ERROR(r.I64(m.commit_time));
      DS_RETURN_IF_ERROR(r.XidField(m.xid));
      DS_RETURN_IF_ERROR(r.Done());
      return handler.OnBegin(m);
    }
    case 'C': {
      CommitMessage m;
      DS_RETURN_IF_ERROR(r.U8(m.flags));
      DS_RETURN_IF_ERROR(r.LsnField(m.commit_lsn));
      DS_RETURN_IF_ERROR(r.LsnField(m.end_lsn));
      DS_RETURN_IF_ERROR(r.I64(m.commit_time));
      DS_RETURN_IF_ERROR(r.Done());
      return handler.OnCommit(m);
    }
    case 'O': {
      OriginMessage m;
      DS_RETURN_IF_ERROR(r.LsnField(m.commit_lsn));
      DS_RETURN_IF_ERROR(r.String(m.name));
      DS_RETURN_IF_ERROR(r.Done());
      return handler.OnOrigin(m);
    }
    case 'R': {
      RelationMessage m;
      DS_RETURN_IF_ERROR(stream_xid(m.xid));
      DS_RETURN_IF_ERROR(r.OidField(m.relation_id));
      DS_RETURN_IF_ERROR(r.String(m.schema));
      if (m.schema.empty()) m.schema = "pg_catalog";  // the protocol sends "" for pg_catalog
      DS_RETURN_IF_ERROR(r.String(m.name));
      uint8_t identity = 0;
      DS_RETURN_IF_ERROR(r.U8(identity));
      switch (identity) {
        case 'd':
        case 'n':
        case 'f':
        case 'i':
          m.replica_identity = static_cast<ReplicaIdentity>(identity);
          break;
        default:
          return r.Error(absl::StrCat("unknown replica identity ", static_cast<int>(identity)));
      }
      uint16_t ncols = 0;
      DS_RETURN_IF_ERROR(r.U16(ncols));
      m.columns.resize(ncols);
      for (auto& col : m.columns) {
        uint8_t flags = 0;
        DS_RETURN_IF_ERROR(r.U8(flags));
        col.is_key = (flags & 1) != 0;
        DS_RETURN_IF_ERROR(r.String(col.name));
        DS_RETURN_IF_ERROR(r.OidField(col.type_oid));
        DS_RETURN_IF_ERROR(r.I32(col.type_modifier));
      }
      DS_RETURN_IF_ERROR(r.Done());
      return handler.OnRelation(m);
    }
    case 'Y': {
      TypeMessage m;
      DS_RETURN_IF_ERROR(stream_xid(m.xid));
      DS_RETURN_IF_ERROR(r.OidField(m.type_oid));
      DS_RETURN_IF_ERROR(r.String(m.schema));
      if (m.schema.empty()) m.schema = "pg_catalog";
      DS_RETURN_IF_ERROR(r.String(m.name));
      DS_RETURN_IF_ERROR(r.Done());
      return handler.OnType(m);
    }
    case 'I': {
      InsertMessage& m = insert_;
      DS_RETURN_IF_ERROR(stream_xid(m.xid));
      DS_RETURN_IF_ERROR(r.OidField(m.relation_id));
      uint8_t marker = 0;
      DS_RETURN_IF_ERROR(r.U8(marker));
      if (marker != 'N')
        return r.Error(absl::StrCat("expected 'N', got ", static_cast<int>(marker)));
      DS_RETURN_IF_ERROR(ReadTuple(r, m.new_tuple));
      DS_RETURN_IF_ERROR(r.Done());
      return handler.OnInsert(m);
    }
    case 'U': {
      UpdateMessage& m = update_;
      DS_RETURN_IF_ERROR(stream_xid(m.xid));
      DS_RETURN_IF_ERROR(r.OidField(m.relation_id));
      uint8_t marker = 0;
      DS_RETURN_IF_ERROR(r.U8(marker));
      m.old_kind = OldTupleKind::kNone;
      m.old_tuple.clear();
      if (marker == 'K' || marker == 'O') {
        m.old_kind = static_cast<OldTupleKind>(marker);
        DS_RETURN_IF_ERROR(ReadTuple(r, m.old_tuple));
        DS_RETURN_IF_ERROR(r.U8(marker));
      }
      if (marker != 'N')
        return r.Error(absl::StrCat("expected 'N', got ", static_cast<int>(marker)));
      DS_RETURN_IF_ERROR(ReadTuple(r, m.new_tuple));
      DS_RETURN_IF_ERROR(r.Done());
      return handler.OnUpdate(m);
    }
    case 'D': {
      DeleteMessage& m = delete_;
      DS_RETURN_IF_ERROR(stream_xid(m.xid));
      DS_RETURN_IF_ERROR(r.OidField(m.relation_id));
      uint8_t marker = 0;
      DS_RETURN_IF_ERROR(r.U8(marker));
      if (marker != 'K' && marker != 'O') {
        return r.Error(absl::StrCat("expected 'K' or 'O', got ", static_cast<int>(marker)));
      }
      m.old_kind = static_cast<OldTupleKind>(marker);
      DS_RETURN_IF_ERROR(ReadTuple(r, m.old_tuple));
      DS_RETURN_IF_ERROR(r.Done());
      return handler.OnDelete(m);
    }
    case 'T': {
      TruncateMessage m;
      DS_RETURN_IF_ERROR(stream_xid(m.xid));
      uint32_t nrels = 0;
      DS_RETURN_IF_ERROR(r.U32(nrels));
      uint8_t options = 0;
      DS_RETURN_IF_ERROR(r.U8(options));
      m.cascade = (options & 1) != 0;
      m.restart_identity = (options & 2) != 0;
      if (!r.Has(size_t{nrels} * 4)) return r.Error(absl::StrCat(nrels, " relation ids truncated"));
      m.relation_ids.resize(nrels);
      for (auto& oid : m.relation_ids) DS_RETURN_IF_ERROR(r.OidField(oid));
      DS_RETURN_IF_ERROR(r.Done());
      return handler.OnTruncate(m);
    }
    case 'M': {
      LogicalMessage m;
      DS_RETURN_IF_ERROR(stream_xid(m.xid));
      uint8_t flags = 0;
      DS_RETURN_IF_ERROR(r.U8(flags));
      m.transactional = (flags & 1) != 0;
      DS_RETURN_IF_ERROR(r.LsnField(m.lsn));
      DS_RETURN_IF_ERROR(r.String(m.prefix));
      int32_t len = 0;
      DS_RETURN_IF_ERROR(r.I32(len));
      if (len < 0) return r.Error("negative content length");
      DS_RETURN_IF_ERROR(r.Bytes(static_cast<size_t>(len), m.content));
      DS_RETURN_IF_ERROR(r.Done());
      return handler.OnMessage(m);
    }
    case 'S': {
      if (protocol_version_ < 2) return r.Error("Stream Start needs protocol version 2 or newer");
      if (in_stream_) return r.Error("Stream Start while a stream segment is already open");
      StreamStartMessage m;
      DS_RETURN_IF_ERROR(r.XidField(m.xid));
      uint8_t first = 0;
      DS_RETURN_IF_ERROR(r.U8(first));
      m.first_segment = first == 1;
      DS_RETURN_IF_ERROR(r.Done());
      in_stream_ = true;
      return handler.OnStreamStart(m);
    }
    case 'E': {
      if (!in_stream_) return r.Error("Stream Stop without Stream Start");
      DS_RETURN_IF_ERROR(r.Done());
      in_stream_ = false;
      return handler.OnStreamStop();
    }
    case 'c': {
      StreamCommitMessage m;
      DS_RETURN_IF_ERROR(r.XidField(m.xid));
      DS_RETURN_IF_ERROR(r.U8(m.flags));
      DS_RETURN_IF_ERROR(r.LsnField(m.commit_lsn));
      DS_RETURN_IF_ERROR(r.LsnField(m.end_lsn));
      DS_RETURN_IF_ERROR(r.I64(m.commit_time));
      DS_RETURN_IF_ERROR(r.Done());
      return handler.OnStreamCommit(m);
    }
    case 'A': {
      StreamAbortMessage m;
      DS_RETURN_IF_ERROR(r.XidField(m.xid));
      DS_RETURN_IF_ERROR(r.XidField(m.subxid));
      if (protocol_version_ >= 4 && parallel_streaming_) {
        Lsn lsn;
        PgTimestamp ts = 0;
        DS_RETURN_IF_ERROR(r.LsnField(lsn));
        DS_RETURN_IF_ERROR(r.I64(ts));
        m.abort_lsn = lsn;
        m.abort_time = ts;
      }
      DS_RETURN_IF_ERROR(r.Done());
      return handler.OnStreamAbort(m);
    }
    case 'b':
    case 'P':
    case 'K':
    case 'r':
    case 'p':
      return absl::UnimplementedError(absl::StrCat(
          "pgoutput two-phase message '", absl::string_view(&type, 1),
          "' received: DuctStream does not request two_phase; recreate the slot without it"));
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown pgoutput message type ", static_cast<int>(type)));
  }
}

}  // namespace ductstream::postgres::pgoutput
