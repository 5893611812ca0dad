// libpq against the sandbox: a regular session and a walsender (replication=database) session.
#include <gtest/gtest.h>

#include "ductstream/postgres/connection.h"
#include "ductstream/postgres/preflight.h"
#include "ductstream/testing/pg_sandbox.h"

namespace ductstream::postgres {
namespace {

using PostgresSmokeTest = testing::PostgresTest;

TEST_F(PostgresSmokeTest, IdentifySystemOnReplicationConnection) {
  auto db = pg().CreateDatabase("smoke");
  ASSERT_TRUE(db.ok()) << db.status();
  auto conn = Connection::Connect(pg().Dsn(*db), Connection::Mode::kReplication);
  ASSERT_TRUE(conn.ok()) << conn.status();
  auto id = IdentifySystem(**conn);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_FALSE(id->system_id.empty());
  EXPECT_GE(id->timeline, 1);
  EXPECT_TRUE(id->xlogpos.valid());
  EXPECT_EQ(id->dbname, *db);  // replication=database binds the walsender to our database

  // The position IDENTIFY_SYSTEM reported is not ahead of what the server says now.
  auto sql = Connection::Connect(pg().Dsn(*db));
  ASSERT_TRUE(sql.ok()) << sql.status();
  auto now = (*sql)->QueryValue("SELECT pg_current_wal_lsn()");
  ASSERT_TRUE(now.ok()) << now.status();
  auto now_lsn = Lsn::Parse(*now);
  ASSERT_TRUE(now_lsn.ok()) << now_lsn.status();
  EXPECT_LE(id->xlogpos, *now_lsn);
}

TEST_F(PostgresSmokeTest, RegularSessionIsNotAWalsender) {
  auto conn = Connection::Connect(pg().Dsn());
  ASSERT_TRUE(conn.ok()) << conn.status();
  auto id = IdentifySystem(**conn);
  EXPECT_FALSE(id.ok());  // IDENTIFY_SYSTEM is a syntax error outside a walsender
}

TEST_F(PostgresSmokeTest, ErrorsCarrySqlStateClassification) {
  auto conn = Connection::Connect(pg().Dsn());
  ASSERT_TRUE(conn.ok()) << conn.status();
  auto missing = (*conn)->Exec("SELECT * FROM no_such_table");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("42P01"), absl::string_view::npos);

  std::vector<std::optional<std::string>> params = {"41", std::nullopt};
  auto r = (*conn)->ExecParams("SELECT $1::int + 1, $2::text IS NULL", params);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(GetValue(*r, 0, 0).value_or(""), "42");
  EXPECT_EQ(GetValue(*r, 0, 1).value_or(""), "t");
}

TEST_F(PostgresSmokeTest, PreflightReportsLogicalReplicationReady) {
  auto report = CheckSource(pg().Dsn());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->wal_level, "logical");
  EXPECT_GE(report->server_version_num, 150000);
  EXPECT_GE(report->max_replication_slots, 10);
  EXPECT_TRUE(report->can_replicate);
  EXPECT_TRUE(report->problems.empty());
  EXPECT_FALSE(report->identity.system_id.empty());
}

}  // namespace
}  // namespace ductstream::postgres
