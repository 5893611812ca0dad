#include "ductstream/postgres/connection.h"

#include <gtest/gtest.h>

#include "ductstream/base/status.h"

namespace ductstream::postgres {
namespace {

TEST(SqlStateTest, MapsClassesToRetriableOrFatal) {
  EXPECT_EQ(StatusCodeForSqlState("08006"), absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusCodeForSqlState("57P01"), absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusCodeForSqlState("40001"), absl::StatusCode::kAborted);
  EXPECT_EQ(StatusCodeForSqlState("40P01"), absl::StatusCode::kAborted);
  EXPECT_EQ(StatusCodeForSqlState("53300"), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(StatusCodeForSqlState("55006"), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(StatusCodeForSqlState("42704"), absl::StatusCode::kNotFound);
  EXPECT_EQ(StatusCodeForSqlState("42P01"), absl::StatusCode::kNotFound);
  EXPECT_EQ(StatusCodeForSqlState("42710"), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(StatusCodeForSqlState("42501"), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(StatusCodeForSqlState("28P01"), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(StatusCodeForSqlState("22P02"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusCodeForSqlState("XX000"), absl::StatusCode::kInternal);
  EXPECT_EQ(StatusCodeForSqlState(""), absl::StatusCode::kUnknown);
  // The classification feeds the one retry decision.
  EXPECT_TRUE(base::IsRetriable(absl::Status(StatusCodeForSqlState("08006"), "")));
  EXPECT_FALSE(base::IsRetriable(absl::Status(StatusCodeForSqlState("42704"), "")));
}

TEST(ConnectionTest, RefusedConnectionIsRetriableAndRedacted) {
  // Port 1 on loopback: nothing listens there, so the connect fails fast without any server.
  auto conn = Connection::Connect(
      "host=127.0.0.1 port=1 user=u password=hunter2 dbname=d connect_timeout=2");
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.status().code(), absl::StatusCode::kUnavailable) << conn.status();
  EXPECT_EQ(conn.status().message().find("hunter2"), absl::string_view::npos) << conn.status();
  EXPECT_NE(conn.status().message().find("password=*****"), absl::string_view::npos);
}

}  // namespace
}  // namespace ductstream::postgres
