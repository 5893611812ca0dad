#include "ductstream/streams/stream_store.h"

#include <algorithm>
#include <array>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ductstream/base/status.h"

namespace ductstream::streams {
namespace {

using store::SqlRow;
using Param = std::optional<std::string>;

// pg_advisory_xact_lock(int, int): the first key names DuctStream's stream lock space, the second
// is hashtext(stream). Append holds it shared, group registration exclusively.
constexpr const char* kLockSpace = "727763214";

// Rows per INSERT statement of Append: 7 parameters each, well under PostgreSQL's 65535.
constexpr size_t kAppendChunk = 500;

constexpr store::SqlMigration kMigrations[] = {
    {"0001_stream_tables", "SELECT 'pgstream needs PostgreSQL'",
     R"sql(
CREATE TABLE IF NOT EXISTS stream_events (
  id          BIGSERIAL PRIMARY KEY,
  stream      TEXT NOT NULL,
  flow_id     TEXT NOT NULL DEFAULT '',
  namespace   TEXT,
  table_name  TEXT,
  lsn         PG_LSN,
  commit_lsn  PG_LSN NOT NULL,
  seq         BIGINT NOT NULL,
  wire_format TEXT,
  payload     BYTEA NOT NULL,
  created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  CONSTRAINT stream_events_identity UNIQUE (stream, flow_id, commit_lsn, seq)
);
CREATE INDEX IF NOT EXISTS stream_events_stream_id ON stream_events (stream, id);
CREATE INDEX IF NOT EXISTS stream_events_stream_lsn ON stream_events (stream, lsn);
CREATE INDEX IF NOT EXISTS stream_events_stream_created ON stream_events (stream, created_at);
CREATE TABLE IF NOT EXISTS stream_groups (
  stream         TEXT NOT NULL,
  consumer_group TEXT NOT NULL,
  created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (stream, consumer_group)
);
CREATE TABLE IF NOT EXISTS stream_deliveries (
  event_id       BIGINT NOT NULL REFERENCES stream_events (id) ON DELETE CASCADE,
  stream         TEXT NOT NULL,
  consumer_group TEXT NOT NULL,
  status         TEXT NOT NULL CHECK (status IN ('available', 'claimed', 'acked')),
  visible_at     TIMESTAMPTZ NOT NULL,
  attempts       INT NOT NULL DEFAULT 0,
  consumer_id    TEXT,
  updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (stream, consumer_group, event_id)
);
CREATE INDEX IF NOT EXISTS stream_deliveries_pending
  ON stream_deliveries (stream, consumer_group, event_id) WHERE status <> 'acked';
-- For the cascade from stream_events (pruning). A hash index: it cannot order by event_id, so the
-- planner never walks it (and every acked row) for a claim instead of stream_deliveries_pending.
CREATE INDEX IF NOT EXISTS stream_deliveries_event ON stream_deliveries USING hash (event_id);
)sql"},
};

Param NullIfEmpty(absl::string_view s) {
  if (s.empty()) return std::nullopt;
  return std::string(s);
}

// bytea travels as text: "\x" + hex both ways (PostgreSQL's bytea_output default is hex).
std::string ToByteaHex(absl::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 + bytes.size() * 2);
  out += "\\x";
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0xf];
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

absl::StatusOr<std::string> FromByteaHex(absl::string_view text) {
  if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || text.size() % 2 != 0) {
    return absl::InternalError(
        "stream_events.payload is not in bytea hex output (is bytea_output set to escape?)");
  }
  std::string out;
  out.resize((text.size() - 2) / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = HexValue(text[2 + 2 * i]);
    const int lo = HexValue(text[3 + 2 * i]);
    if (hi < 0 || lo < 0) return absl::InternalError("stream_events.payload: bad hex");
    out[i] = static_cast<char>((hi << 4) | lo);
  }
  return out;
}

int64_t ToInt(const Param& v) {
  int64_t out = 0;
  if (v.has_value()) (void)absl::SimpleAtoi(*v, &out);
  return out;
}

absl::Status RequireStreamAndGroup(absl::string_view stream, absl::string_view group) {
  if (stream.empty()) return absl::InvalidArgumentError("stream is required");
  if (group.empty()) return absl::InvalidArgumentError("consumer_group is required");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<StreamStore>> StreamStore::Open(const std::string& dsn) {
  DS_ASSIGN_OR_RETURN(auto db, store::OpenPostgresDatabase(dsn));
  return Open(std::move(db));
}

absl::StatusOr<std::unique_ptr<StreamStore>> StreamStore::Open(
    std::unique_ptr<store::SqlDatabase> db) {
  if (db->dialect() != store::SqlDialect::kPostgres) {
    return absl::InvalidArgumentError(
        "the stream store (pgstream) needs PostgreSQL; SQLite is not supported");
  }
  DS_RETURN_IF_ERROR_CTX(db->Migrate("ductstream_stream_migrations", kMigrations),
                         absl::StrCat("migrating the stream tables in ", db->description()));
  return std::unique_ptr<StreamStore>(new StreamStore(std::move(db)));
}

absl::StatusOr<int64_t> StreamStore::Append(absl::string_view stream, absl::string_view flow_id,
                                            std::span<const NewEvent> events) {
  if (stream.empty()) return absl::InvalidArgumentError("stream is required");
  int64_t inserted = 0;
  DS_RETURN_IF_ERROR(store::InTransaction(*db_, [&]() -> absl::Status {
    const std::array<Param, 1> key = {std::string(stream)};
    DS_RETURN_IF_ERROR(db_->Query(absl::StrCat("SELECT pg_advisory_xact_lock_shared(", kLockSpace,
                                               ", hashtext($1))"),
                                  key)
                           .status());
    for (size_t begin = 0; begin < events.size(); begin += kAppendChunk) {
      const size_t end = std::min(events.size(), begin + kAppendChunk);
      std::vector<Param> params = {std::string(stream), std::string(flow_id)};
      params.reserve(2 + (end - begin) * 7);
      std::string sql =
          "WITH ins AS (INSERT INTO stream_events (stream, flow_id, namespace, table_name, lsn, "
          "commit_lsn, seq, wire_format, payload) VALUES ";
      for (size_t i = begin; i < end; ++i) {
        const NewEvent& e = events[i];
        const size_t p = params.size() + 1;
        absl::StrAppend(&sql, i == begin ? "" : ",", "($1,$2,$", p, ",$", p + 1, ",$", p + 2,
                        "::pg_lsn,$", p + 3, "::pg_lsn,$", p + 4, "::bigint,$", p + 5, ",$", p + 6,
                        "::bytea)");
        params.push_back(NullIfEmpty(e.namespace_name));
        params.push_back(NullIfEmpty(e.table_name));
        params.push_back(e.lsn.valid() ? Param(e.lsn.ToString()) : std::nullopt);
        params.push_back(e.commit_lsn.ToString());
        params.push_back(absl::StrCat(e.seq));
        params.push_back(NullIfEmpty(e.wire_format));
        params.push_back(ToByteaHex(e.payload));
      }
      absl::StrAppend(
          &sql,
          " ON CONFLICT ON CONSTRAINT stream_events_identity DO NOTHING RETURNING id), "
          "dl AS (INSERT INTO stream_deliveries (event_id, stream, consumer_group, status, "
          "visible_at) SELECT ins.id, g.stream, g.consumer_group, 'available', now() FROM ins "
          "CROSS JOIN stream_groups g WHERE g.stream = $1) SELECT count(*) FROM ins");
      DS_ASSIGN_OR_RETURN(auto rows, db_->Query(sql, params));
      if (!rows.empty()) inserted += ToInt(rows[0][0]);
    }
    return absl::OkStatus();
  }));
  return inserted;
}

absl::Status StreamStore::EnsureGroup(absl::string_view stream, absl::string_view group) {
  // Checked on every call rather than cached: an operator may remove a group (docs/streams.md),
  // and its next consumer must register it again.
  const std::array<Param, 2> params = {std::string(stream), std::string(group)};
  DS_ASSIGN_OR_RETURN(
      auto exists,
      db_->Query("SELECT 1 FROM stream_groups WHERE stream = $1 AND consumer_group = $2", params));
  if (exists.empty()) {
    DS_RETURN_IF_ERROR(store::InTransaction(*db_, [&]() -> absl::Status {
      // Exclusive: waits for appends in flight, so that every event is either seen here or
      // appended after the group row is visible (and then gets its delivery from Append).
      DS_RETURN_IF_ERROR(
          db_->Query(absl::StrCat("SELECT pg_advisory_xact_lock(", kLockSpace, ", hashtext($1))"),
                     std::span<const Param>(params.data(), 1))
              .status());
      DS_ASSIGN_OR_RETURN(auto created,
                          db_->Query("INSERT INTO stream_groups (stream, consumer_group) VALUES "
                                     "($1, $2) ON CONFLICT DO NOTHING RETURNING 1",
                                     params));
      if (created.empty()) return absl::OkStatus();  // another process registered it
      return db_
          ->Query(
              "INSERT INTO stream_deliveries (event_id, stream, consumer_group, status, "
              "visible_at) SELECT id, stream, $2, 'available', now() FROM stream_events WHERE "
              "stream = $1 ON CONFLICT DO NOTHING",
              params)
          .status();
    }));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<StreamMessage>> StreamStore::Pull(const PullRequest& request) {
  DS_RETURN_IF_ERROR(RequireStreamAndGroup(request.stream, request.group));
  DS_RETURN_IF_ERROR(EnsureGroup(request.stream, request.group));
  const int max = request.max_messages > 0 ? request.max_messages : 100;
  const absl::Duration visibility =
      request.visibility > absl::ZeroDuration() ? request.visibility : absl::Seconds(30);
  const std::array<Param, 5> params = {
      request.stream, request.group, absl::StrCat(max),
      absl::StrCat(std::max<int64_t>(1, absl::ToInt64Milliseconds(visibility))),
      NullIfEmpty(request.consumer_id)};
  // One statement, so one transaction: lock the group's visible deliveries (skipping rows another
  // consumer is claiming right now), mark them claimed until now + visibility, return the events.
  DS_ASSIGN_OR_RETURN(
      auto rows,
      db_->Query("WITH picked AS ("
                 "  SELECT ctid FROM stream_deliveries"
                 "  WHERE stream = $1 AND consumer_group = $2 AND status <> 'acked'"
                 "    AND visible_at <= now()"
                 "  ORDER BY event_id LIMIT $3::int FOR UPDATE SKIP LOCKED), "
                 // The locked rows by their tuple ids: a TID scan, whatever the statistics say.
                 "claimed AS ("
                 "  UPDATE stream_deliveries d SET status = 'claimed',"
                 "    visible_at = now() + $4::bigint * interval '1 millisecond',"
                 "    attempts = d.attempts + 1, consumer_id = $5, updated_at = now()"
                 "  WHERE d.ctid = ANY(ARRAY(SELECT ctid FROM picked))"
                 "  RETURNING d.event_id, d.attempts) "
                 "SELECT e.id, e.namespace, e.table_name, e.lsn::text, e.commit_lsn::text, e.seq,"
                 "  e.wire_format, e.payload,"
                 "  (extract(epoch FROM e.created_at) * 1000000)::bigint, c.attempts "
                 "FROM claimed c JOIN stream_events e ON e.id = c.event_id ORDER BY e.id",
                 params));
  std::vector<StreamMessage> out;
  out.reserve(rows.size());
  for (SqlRow& row : rows) {
    StreamMessage m;
    m.id = ToInt(row[0]);
    m.stream = request.stream;
    m.namespace_name = row[1].value_or("");
    m.table_name = row[2].value_or("");
    m.lsn = row[3].value_or("");
    m.commit_lsn = row[4].value_or("");
    m.seq = ToInt(row[5]);
    m.wire_format = row[6].value_or("");
    DS_ASSIGN_OR_RETURN(m.payload, FromByteaHex(row[7].value_or("")));
    m.created_at = absl::FromUnixMicros(ToInt(row[8]));
    m.attempts = static_cast<int32_t>(ToInt(row[9]));
    out.push_back(std::move(m));
  }
  return out;
}

absl::StatusOr<int64_t> StreamStore::Ack(absl::string_view stream, absl::string_view group,
                                         std::span<const int64_t> ids) {
  DS_RETURN_IF_ERROR(RequireStreamAndGroup(stream, group));
  if (ids.empty()) return 0;
  const std::array<Param, 3> params = {std::string(stream), std::string(group),
                                       absl::StrCat("{", absl::StrJoin(ids, ","), "}")};
  DS_ASSIGN_OR_RETURN(
      auto rows,
      db_->Query("WITH acked AS (UPDATE stream_deliveries SET status = 'acked', visible_at = "
                 "now(), updated_at = now() WHERE stream = $1 AND consumer_group = $2 AND "
                 "event_id = ANY($3::bigint[]) AND status = 'claimed' RETURNING 1) "
                 "SELECT count(*) FROM acked",
                 params));
  return rows.empty() ? 0 : ToInt(rows[0][0]);
}

absl::StatusOr<int64_t> StreamStore::Replay(absl::string_view stream, absl::string_view group,
                                            std::optional<Lsn> from_lsn,
                                            std::optional<absl::Time> since) {
  DS_RETURN_IF_ERROR(RequireStreamAndGroup(stream, group));
  DS_RETURN_IF_ERROR(EnsureGroup(stream, group));
  const std::array<Param, 4> params = {
      std::string(stream), std::string(group),
      from_lsn.has_value() ? Param(from_lsn->ToString()) : std::nullopt,
      since.has_value() ? Param(absl::StrCat(absl::ToUnixMicros(*since))) : std::nullopt};
  DS_ASSIGN_OR_RETURN(
      auto rows,
      db_->Query("WITH reset AS (UPDATE stream_deliveries d SET status = 'available', visible_at = "
                 "now(), consumer_id = NULL, updated_at = now() FROM stream_events e "
                 "WHERE d.event_id = e.id AND d.stream = $1 AND d.consumer_group = $2 "
                 "AND ($3::pg_lsn IS NULL OR e.lsn >= $3::pg_lsn) "
                 "AND ($4::bigint IS NULL OR e.created_at >= "
                 "'epoch'::timestamptz + $4::bigint * interval '1 microsecond') "
                 "AND (d.status <> 'available' OR d.visible_at > now()) RETURNING 1) "
                 "SELECT count(*) FROM reset",
                 params));
  return rows.empty() ? 0 : ToInt(rows[0][0]);
}

absl::StatusOr<int64_t> StreamStore::Prune(absl::string_view stream, absl::Duration retention) {
  if (stream.empty()) return absl::InvalidArgumentError("stream is required");
  const std::array<Param, 2> params = {
      std::string(stream),
      absl::StrCat(std::max<int64_t>(0, absl::ToInt64Milliseconds(retention)))};
  int64_t deleted = 0;
  // Shared lock: a group being registered (exclusive) copies the events it sees into its
  // deliveries, and none of them may disappear under it.
  DS_RETURN_IF_ERROR(store::InTransaction(*db_, [&]() -> absl::Status {
    DS_RETURN_IF_ERROR(db_->Query(absl::StrCat("SELECT pg_advisory_xact_lock_shared(", kLockSpace,
                                               ", hashtext($1))"),
                                  std::span<const Param>(params.data(), 1))
                           .status());
    DS_ASSIGN_OR_RETURN(
        auto rows,
        db_->Query("WITH gone AS (DELETE FROM stream_events e WHERE e.stream = $1 "
                   "AND e.created_at < now() - $2::bigint * interval '1 millisecond' "
                   "AND EXISTS (SELECT 1 FROM stream_groups g WHERE g.stream = $1) "
                   "AND NOT EXISTS (SELECT 1 FROM stream_deliveries d WHERE d.event_id = e.id "
                   "AND d.status <> 'acked') RETURNING 1) SELECT count(*) FROM gone",
                   params));
    if (!rows.empty()) deleted = ToInt(rows[0][0]);
    return absl::OkStatus();
  }));
  return deleted;
}

}  // namespace ductstream::streams
