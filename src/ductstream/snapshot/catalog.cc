#include "ductstream/snapshot/catalog.h"

#include <algorithm>
#include <optional>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "ductstream/base/status.h"
#include "ductstream/postgres/connection.h"
#include "ductstream/postgres/replication.h"
#include "nlohmann/json.hpp"

namespace ductstream::snapshot {
namespace {

using postgres::Connection;
using postgres::GetValue;
using postgres::QuoteIdent;
using postgres::RowCount;
using Params = std::vector<std::optional<std::string>>;

int64_t ToInt(std::optional<absl::string_view> v) {
  int64_t n = 0;
  if (v.has_value()) (void)absl::SimpleAtoi(*v, &n);
  return n;
}

struct RelationFacts {
  Oid oid;
  std::string schema, name;
  char relkind = 'r';
  char replica_identity = 'd';
  int64_t pages = 0;
  int64_t reltuples = 0;
};

absl::StatusOr<RelationFacts> Facts(Connection& conn, Oid oid) {
  const Params p = {absl::StrCat(oid.value())};
  DS_ASSIGN_OR_RETURN(
      postgres::Result r,
      conn.ExecParams("SELECT n.nspname, c.relname, c.relkind, c.relreplident, "
                      "GREATEST(c.reltuples, 0)::bigint, "
                      "pg_relation_size(c.oid) / current_setting('block_size')::bigint "
                      "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                      "WHERE c.oid = $1::oid",
                      p));
  if (RowCount(r) != 1) {
    return absl::NotFoundError(absl::StrCat("relation with oid ", oid.value(), " is gone"));
  }
  RelationFacts f;
  f.oid = oid;
  f.schema = std::string(*GetValue(r, 0, 0));
  f.name = std::string(*GetValue(r, 0, 1));
  f.relkind = GetValue(r, 0, 2)->at(0);
  f.replica_identity = GetValue(r, 0, 3)->at(0);
  f.reltuples = ToInt(GetValue(r, 0, 4));
  f.pages = ToInt(GetValue(r, 0, 5));
  return f;
}

// The columns pgoutput sends for `oid`: not dropped, not generated, in attnum order, flagged as
// key the way logicalrep_write_attrs does (every column under REPLICA IDENTITY FULL).
absl::StatusOr<std::vector<CopyColumn>> Columns(Connection& conn, Oid oid,
                                                const std::optional<std::set<std::string>>& only) {
  const Params p = {absl::StrCat(oid.value())};
  DS_ASSIGN_OR_RETURN(
      postgres::Result r,
      conn.ExecParams(
          "SELECT a.attname, a.atttypid::bigint, a.atttypmod, "
          "CASE c.relreplident WHEN 'f' THEN true WHEN 'n' THEN false ELSE EXISTS ("
          "  SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND a.attnum = ANY(i.indkey) AND "
          "  CASE c.relreplident WHEN 'd' THEN i.indisprimary ELSE i.indisreplident END) END "
          "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
          "WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped "
          "AND a.attgenerated = '' ORDER BY a.attnum",
          p));
  std::vector<CopyColumn> columns;
  for (int i = 0; i < RowCount(r); ++i) {
    CopyColumn c;
    c.name = std::string(*GetValue(r, i, 0));
    if (only.has_value() && !only->contains(c.name)) continue;
    c.type_oid = Oid(static_cast<uint32_t>(ToInt(GetValue(r, i, 1))));
    c.typmod = static_cast<int32_t>(ToInt(GetValue(r, i, 2)));
    c.is_key = GetValue(r, i, 3).value_or("f") == "t";
    columns.push_back(std::move(c));
  }
  return columns;
}

// The leaves of a partitioned table (or the table itself), regular tables only.
absl::StatusOr<std::vector<Oid>> Leaves(Connection& conn, const RelationFacts& rel) {
  if (rel.relkind != 'p') return std::vector<Oid>{rel.oid};
  const Params p = {absl::StrCat(rel.oid.value())};
  DS_ASSIGN_OR_RETURN(postgres::Result r,
                      conn.ExecParams("SELECT t.relid::bigint FROM pg_partition_tree($1::oid) t "
                                      "JOIN pg_class c ON c.oid = t.relid "
                                      "WHERE t.isleaf AND c.relkind = 'r' ORDER BY 1",
                                      p));
  std::vector<Oid> leaves;
  for (int i = 0; i < RowCount(r); ++i) {
    leaves.push_back(Oid(static_cast<uint32_t>(ToInt(GetValue(r, i, 0)))));
  }
  return leaves;
}

// Adds the relations read for `label` (itself, or its leaves) to `out`.
absl::Status AddTable(Connection& conn, Oid label_oid, bool label_with_root,
                      const std::optional<std::set<std::string>>& column_list,
                      const std::string& row_filter, std::vector<CopyTable>& out) {
  DS_ASSIGN_OR_RETURN(RelationFacts label, Facts(conn, label_oid));
  DS_ASSIGN_OR_RETURN(std::vector<Oid> leaves, Leaves(conn, label));
  for (Oid leaf_oid : leaves) {
    DS_ASSIGN_OR_RETURN(RelationFacts leaf, Facts(conn, leaf_oid));
    const RelationFacts& shown = label_with_root ? label : leaf;
    CopyTable t;
    t.name = absl::StrCat(leaf.schema, ".", leaf.name);
    t.read_schema = leaf.schema;
    t.read_table = leaf.name;
    t.label_relation_id = shown.oid;
    t.label_schema = shown.schema;
    t.label_table = shown.name;
    t.replica_identity = shown.replica_identity;
    DS_ASSIGN_OR_RETURN(t.columns, Columns(conn, shown.oid, column_list));
    t.row_filter = row_filter;
    t.pages = leaf.pages;
    t.rows_estimate = leaf.reltuples;
    out.push_back(std::move(t));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<CopyTable>> PublishedTables(Connection& conn,
                                                       const std::string& publication) {
  const Params p = {publication};
  DS_ASSIGN_OR_RETURN(
      postgres::Result pub,
      conn.ExecParams("SELECT pubviaroot FROM pg_publication WHERE pubname = $1", p));
  if (RowCount(pub) != 1) {
    return absl::NotFoundError(
        absl::StrCat("publication ", publication,
                     " does not exist: create it (CREATE PUBLICATION ... FOR TABLE ...) or set "
                     "source.options.ensure_publication=true"));
  }
  const bool via_root = GetValue(pub, 0, 0).value_or("f") == "t";
  // Column lists and row filters exist from PostgreSQL 15 on.
  const bool v15 = conn.server_version() >= 150000;
  DS_ASSIGN_OR_RETURN(
      postgres::Result r,
      conn.ExecParams(
          absl::StrCat(
              "SELECT c.oid::bigint, ",
              v15 ? "array_to_json(pt.attnames)::text, pt.rowfilter " : "NULL::text, NULL::text ",
              "FROM pg_publication_tables pt "
              "JOIN pg_namespace n ON n.nspname = pt.schemaname "
              "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename "
              "WHERE pt.pubname = $1 ORDER BY pt.schemaname, pt.tablename"),
          p));
  std::vector<CopyTable> tables;
  for (int i = 0; i < RowCount(r); ++i) {
    const Oid oid(static_cast<uint32_t>(ToInt(GetValue(r, i, 0))));
    std::optional<std::set<std::string>> column_list;
    if (auto names = GetValue(r, i, 1); names.has_value()) {
      try {
        column_list.emplace();
        for (const auto& n : nlohmann::json::parse(*names))
          column_list->insert(n.get<std::string>());
      } catch (const nlohmann::json::exception& e) {
        return absl::InternalError(absl::StrCat("pg_publication_tables.attnames: ", e.what()));
      }
    }
    DS_RETURN_IF_ERROR(AddTable(conn, oid, via_root, column_list,
                                std::string(GetValue(r, i, 2).value_or("")), tables));
  }
  return tables;
}

absl::StatusOr<std::vector<CopyTable>> NamedTables(Connection& conn,
                                                   const std::vector<std::string>& tables,
                                                   const std::vector<std::string>& schemas,
                                                   bool label_with_root) {
  std::vector<Oid> oids;
  if (!tables.empty()) {
    for (const std::string& qualified : tables) {
      std::pair<std::string, std::string> parts =
          absl::StrSplit(qualified, absl::MaxSplits('.', 1));
      if (parts.second.empty()) parts = {"public", parts.first};
      const Params p = {parts.first, parts.second};
      DS_ASSIGN_OR_RETURN(
          postgres::Result r,
          conn.ExecParams("SELECT c.oid::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = "
                          "c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND "
                          "c.relkind IN ('r', 'p')",
                          p));
      if (RowCount(r) != 1) {
        return absl::NotFoundError(absl::StrCat(
            "table ", parts.first, ".", parts.second,
            " does not exist (tables are given as schema.table; a bare name means public)"));
      }
      oids.push_back(Oid(static_cast<uint32_t>(ToInt(GetValue(r, 0, 0)))));
    }
  } else {
    std::vector<std::string> wanted =
        schemas.empty() ? std::vector<std::string>{"public"} : schemas;
    for (const std::string& schema : wanted) {
      const Params p = {schema};
      DS_ASSIGN_OR_RETURN(
          postgres::Result r,
          conn.ExecParams("SELECT c.oid::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = "
                          "c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND "
                          "NOT c.relispartition ORDER BY c.relname",
                          p));
      for (int i = 0; i < RowCount(r); ++i) {
        oids.push_back(Oid(static_cast<uint32_t>(ToInt(GetValue(r, i, 0)))));
      }
    }
  }
  std::vector<CopyTable> out;
  for (Oid oid : oids) {
    DS_RETURN_IF_ERROR(AddTable(conn, oid, label_with_root, std::nullopt, "", out));
  }
  return out;
}

std::vector<Chunk> PlanChunks(const std::vector<CopyTable>& tables, const PlanOptions& options) {
  std::vector<Chunk> chunks;
  const int64_t chunk_pages = std::max<int64_t>(1, options.chunk_bytes / options.block_size);
  for (const CopyTable& t : tables) {
    if (!options.partition_column.empty()) {
      const int n = std::max(1, options.partition_count);
      for (int i = 0; i < n; ++i) {
        Chunk c;
        c.table = t.name;
        c.index = i;
        c.count = n;
        c.range = absl::StrCat("hash:", options.partition_column, ":", i, "/", n);
        c.rows_estimate = t.rows_estimate / n;
        c.bytes_estimate = t.pages * options.block_size / n;
        chunks.push_back(std::move(c));
      }
      continue;
    }
    int64_t n = std::max<int64_t>(1, (t.pages + chunk_pages - 1) / chunk_pages);
    // Enough chunks for every worker once a table is worth splitting.
    if (options.workers > 1 && t.pages >= int64_t{16} * options.workers) {
      n = std::max<int64_t>(n, options.workers);
    }
    for (int64_t i = 0; i < n; ++i) {
      const int64_t first = t.pages * i / n;
      const int64_t end = t.pages * (i + 1) / n;
      Chunk c;
      c.table = t.name;
      c.index = static_cast<int>(i);
      c.count = static_cast<int>(n);
      c.range = absl::StrCat("ctid:", first, "-", i + 1 == n ? int64_t{-1} : end);
      c.bytes_estimate = (end - first) * options.block_size;
      c.rows_estimate = t.pages > 0 ? t.rows_estimate * (end - first) / t.pages : 0;
      chunks.push_back(std::move(c));
    }
  }
  return chunks;
}

absl::StatusOr<std::string> CopyStatement(const CopyTable& table, const Chunk& chunk) {
  std::vector<std::string> columns;
  for (const CopyColumn& c : table.columns) columns.push_back(QuoteIdent(c.name));
  std::string where;
  if (absl::StartsWith(chunk.range, "ctid:")) {
    std::pair<std::string, std::string> bounds =
        absl::StrSplit(absl::string_view(chunk.range).substr(5), absl::MaxSplits('-', 1));
    int64_t first = 0, end = 0;
    if (!absl::SimpleAtoi(bounds.first, &first) || !absl::SimpleAtoi(bounds.second, &end)) {
      return absl::DataLossError(absl::StrCat("snapshot chunk range \"", chunk.range, "\""));
    }
    // TID range scans (PostgreSQL 14+) read just these pages.
    where = absl::StrCat("ctid >= '(", first, ",0)'::tid");
    if (end >= 0) absl::StrAppend(&where, " AND ctid < '(", end, ",0)'::tid");
  } else if (absl::StartsWith(chunk.range, "hash:")) {
    // "hash:COLUMN:I/N". hashtext is signed and NULLs hash to NULL: both land in a partition
    // (SPEC.md §16 item 10 fixed).
    absl::string_view spec = absl::string_view(chunk.range).substr(5);
    const size_t colon = spec.rfind(':');
    const size_t slash = spec.rfind('/');
    int64_t i = 0, n = 0;
    if (colon == absl::string_view::npos || slash == absl::string_view::npos || slash < colon ||
        !absl::SimpleAtoi(spec.substr(colon + 1, slash - colon - 1), &i) ||
        !absl::SimpleAtoi(spec.substr(slash + 1), &n) || n <= 0) {
      return absl::DataLossError(absl::StrCat("snapshot chunk range \"", chunk.range, "\""));
    }
    const std::string column = QuoteIdent(spec.substr(0, colon));
    where = absl::StrCat("COALESCE(((hashtext(", column, "::text) % ", n, ") + ", n, ") % ", n,
                         ", 0) = ", i);
  } else {
    return absl::DataLossError(absl::StrCat("snapshot chunk range \"", chunk.range, "\""));
  }
  if (!table.row_filter.empty()) absl::StrAppend(&where, " AND (", table.row_filter, ")");
  return absl::StrCat("COPY (SELECT ", columns.empty() ? "" : absl::StrJoin(columns, ", "),
                      " FROM ONLY ", QuoteIdent(table.read_schema), ".",
                      QuoteIdent(table.read_table), " WHERE ", where,
                      ") TO STDOUT (FORMAT binary)");
}

}  // namespace ductstream::snapshot
