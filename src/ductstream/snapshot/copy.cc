#include "ductstream/snapshot/copy.h"

#include <libpq-fe.h>

#include <cstring>
#include <optional>

#include "absl/base/internal/endian.h"
#include "absl/strings/str_cat.h"
#include "ductstream/base/status.h"
#include "ductstream/cdc/batch_builder.h"
#include "ductstream/postgres/connection.h"

namespace ductstream::snapshot {
namespace {

namespace pgo = postgres::pgoutput;

constexpr char kSignature[] = "PGCOPY\n\377\r\n";  // + the terminating NUL: 11 bytes
constexpr size_t kSignatureSize = 11;

int16_t ReadInt16(const char* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return static_cast<int16_t>(absl::big_endian::ToHost16(v));
}
int32_t ReadInt32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return static_cast<int32_t>(absl::big_endian::ToHost32(v));
}

// The metadata columns of load rows differ from the inserts the builder made: __op "load", no
// commit time, and __seq numbered across the chunk.
absl::Status RelabelAsLoad(cdc::RelationChanges& changes, int64_t first_seq) {
  const int64_t n = changes.num_rows();
  const auto& schema = changes.records->schema();
  auto columns = changes.records->columns();
  auto op = arrow::MakeArrayFromScalar(arrow::StringScalar("load"), n);
  if (!op.ok()) return absl::InternalError(op.status().ToString());
  auto ts = arrow::MakeArrayOfNull(schema->field(3)->type(), n);
  if (!ts.ok()) return absl::InternalError(ts.status().ToString());
  arrow::Int64Builder seq;
  if (!seq.Reserve(n).ok()) return absl::ResourceExhaustedError("__seq");
  for (int64_t i = 0; i < n; ++i) seq.UnsafeAppend(first_seq + i);
  std::shared_ptr<arrow::Array> seq_array;
  if (!seq.Finish(&seq_array).ok()) return absl::InternalError("__seq");
  columns[0] = std::move(*op);
  columns[3] = std::move(*ts);
  columns[5] = std::move(seq_array);
  changes.records = arrow::RecordBatch::Make(schema, n, std::move(columns));
  changes.first_seq = first_seq;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<size_t> CopyBinaryParser::Parse(absl::string_view data) {
  size_t pos = 0;
  const char* p = data.data();
  if (!header_done_) {
    if (data.size() < kSignatureSize + 8) return pos;
    if (std::memcmp(p, kSignature, kSignatureSize) != 0) {
      return absl::DataLossError("COPY BINARY: bad file signature");
    }
    const int32_t ext = ReadInt32(p + kSignatureSize + 4);
    if (ext < 0) return absl::DataLossError("COPY BINARY: bad header extension length");
    if (data.size() < kSignatureSize + 8 + static_cast<size_t>(ext)) return pos;
    pos = kSignatureSize + 8 + static_cast<size_t>(ext);
    header_done_ = true;
  }
  while (pos < data.size()) {
    if (trailer_seen_) return absl::DataLossError("COPY BINARY: data after the trailer");
    if (data.size() - pos < 2) return pos;
    const int16_t fields = ReadInt16(p + pos);
    if (fields == -1) {
      trailer_seen_ = true;
      pos += 2;
      continue;
    }
    if (fields < 0) return absl::DataLossError("COPY BINARY: negative field count");
    size_t q = pos + 2;
    cells_.resize(static_cast<size_t>(fields));
    for (int16_t f = 0; f < fields; ++f) {
      if (data.size() - q < 4) return pos;  // incomplete tuple
      const int32_t len = ReadInt32(p + q);
      q += 4;
      if (len == -1) {
        cells_[f] = pgo::Cell{pgo::CellKind::kNull, {}};
        continue;
      }
      if (len < 0) return absl::DataLossError("COPY BINARY: negative field length");
      if (data.size() - q < static_cast<size_t>(len)) return pos;
      cells_[f] = pgo::Cell{pgo::CellKind::kBinary, data.substr(q, static_cast<size_t>(len))};
      q += static_cast<size_t>(len);
    }
    DS_RETURN_IF_ERROR(on_row_(cells_));
    ++rows_;
    pos = q;
  }
  return pos;
}

absl::Status CopyBinaryParser::Feed(absl::string_view data) {
  if (pending_.empty()) {
    DS_ASSIGN_OR_RETURN(size_t used, Parse(data));
    pending_.assign(data.data() + used, data.size() - used);
    return absl::OkStatus();
  }
  pending_.append(data.data(), data.size());
  DS_ASSIGN_OR_RETURN(size_t used, Parse(pending_));
  pending_.erase(0, used);
  return absl::OkStatus();
}

absl::Status CopyBinaryParser::Finish() const {
  if (!trailer_seen_ || !pending_.empty()) {
    return absl::DataLossError("COPY BINARY: the data ended before the trailer");
  }
  return absl::OkStatus();
}

int64_t ChunkSeqBase(size_t plan_position) {
  return (static_cast<int64_t>(plan_position) + 1) << 32;
}

absl::Status CopyChunk(postgres::Connection& conn, const postgres::TypeLookup& lookup,
                       const CopyTable& table, const Chunk& chunk, const ChunkCopyOptions& options,
                       const std::function<absl::Status(LoadBatch)>& sink,
                       const std::atomic<bool>& stop, int64_t* rows, int64_t* bytes) {
  *rows = 0;
  *bytes = 0;
  DS_ASSIGN_OR_RETURN(const std::string sql, CopyStatement(table, chunk));
  const int64_t seq_base = options.seq_base;
  int64_t emitted = 0;
  int64_t bytes_at_last_batch = 0;

  cdc::BuilderOptions bo;
  bo.batch_rows = options.batch_rows;
  bo.max_batch_bytes = options.max_batch_bytes;
  cdc::BatchBuilder builder(bo, lookup, [&](cdc::ChangeBatch batch) -> absl::Status {
    batch.checkpoint = Lsn();  // load batches never move the stream's checkpoint
    for (cdc::RelationChanges& r : batch.relations) {
      DS_RETURN_IF_ERROR(RelabelAsLoad(r, seq_base + emitted));
      emitted += r.num_rows();
    }
    LoadBatch out{std::move(batch), *bytes - bytes_at_last_batch};
    bytes_at_last_batch = *bytes;
    return sink(std::move(out));
  });
  builder.set_message_lsn(Lsn());

  pgo::RelationMessage rel;
  rel.relation_id = table.label_relation_id;
  rel.schema = table.label_schema;
  rel.name = table.label_table;
  rel.replica_identity = static_cast<pgo::ReplicaIdentity>(table.replica_identity);
  for (const CopyColumn& c : table.columns) {
    rel.columns.push_back(pgo::RelationColumn{c.is_key, c.name, c.type_oid, c.typmod});
  }
  DS_RETURN_IF_ERROR(builder.OnRelation(rel));

  bool in_txn = false;
  int64_t txn_rows = 0;
  pgo::InsertMessage insert;
  insert.relation_id = table.label_relation_id;
  CopyBinaryParser parser([&](const std::vector<pgo::Cell>& cells) -> absl::Status {
    if (!in_txn) {
      DS_RETURN_IF_ERROR(builder.OnBegin(pgo::BeginMessage{options.snapshot_lsn, 0, Xid()}));
      in_txn = true;
      txn_rows = 0;
    }
    insert.new_tuple = cells;
    DS_RETURN_IF_ERROR(builder.OnInsert(insert));
    if (++txn_rows >= options.batch_rows) {
      DS_RETURN_IF_ERROR(
          builder.OnCommit(pgo::CommitMessage{0, options.snapshot_lsn, options.snapshot_lsn, 0}));
      in_txn = false;
      DS_RETURN_IF_ERROR(builder.Flush());
    }
    return absl::OkStatus();
  });

  PGconn* pg = conn.raw();
  PGresult* started = PQexec(pg, sql.c_str());
  if (PQresultStatus(started) != PGRES_COPY_OUT) {
    const char* state = PQresultErrorField(started, PG_DIAG_SQLSTATE);
    absl::Status error(
        state != nullptr ? postgres::StatusCodeForSqlState(state) : absl::StatusCode::kUnavailable,
        absl::StrCat("copying ", table.name, " (", chunk.range, "): ", PQerrorMessage(pg)));
    PQclear(started);
    return error;
  }
  PQclear(started);
  absl::Status status;
  for (;;) {
    char* buf = nullptr;
    const int len = PQgetCopyData(pg, &buf, /*async=*/0);
    if (len < 0) break;
    *bytes += len;
    if (status.ok()) {
      status = parser.Feed(absl::string_view(buf, static_cast<size_t>(len)));
      if (status.ok() && stop.load()) status = absl::CancelledError("snapshot stopped");
    }
    PQfreemem(buf);
    if (!status.ok()) {
      // Abandon the COPY: the caller drops this connection (and its snapshot) on any error.
      return status;
    }
  }
  absl::Status end;
  while (PGresult* res = PQgetResult(pg)) {
    if (PQresultStatus(res) != PGRES_COMMAND_OK && end.ok()) {
      const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
      end = absl::Status(
          state != nullptr ? postgres::StatusCodeForSqlState(state)
                           : absl::StatusCode::kUnavailable,
          absl::StrCat("copying ", table.name, " (", chunk.range, "): ", PQerrorMessage(pg)));
    }
    PQclear(res);
  }
  DS_RETURN_IF_ERROR(end);
  DS_RETURN_IF_ERROR(parser.Finish());
  if (in_txn) {
    DS_RETURN_IF_ERROR(
        builder.OnCommit(pgo::CommitMessage{0, options.snapshot_lsn, options.snapshot_lsn, 0}));
  }
  DS_RETURN_IF_ERROR(builder.Flush());
  *rows = parser.rows();
  return absl::OkStatus();
}

}  // namespace ductstream::snapshot
