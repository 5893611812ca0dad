#include "ductstream/base/redact.h"

#include <gtest/gtest.h>

namespace ductstream::base {
namespace {

TEST(RedactDsnTest, Uri) {
  EXPECT_EQ(RedactDsn("postgres://user:s3cret@localhost:5432/db?sslmode=disable"),
            "postgres://user:*****@localhost:5432/db?sslmode=disable");
  EXPECT_EQ(RedactDsn("postgresql://user@localhost/db"), "postgresql://user@localhost/db");
  EXPECT_EQ(RedactDsn("postgres://localhost/db?user=u&password=p&sslmode=require"),
            "postgres://localhost/db?user=u&password=*****&sslmode=require");
  // '@' inside the password: the last '@' of the authority separates the host.
  EXPECT_EQ(RedactDsn("postgres://u:p@ss@h/db"), "postgres://u:*****@h/db");
}

TEST(RedactDsnTest, SnowflakeStyle) {
  EXPECT_EQ(RedactDsn("user:pass@account/db/schema?role=SYSADMIN"),
            "user:*****@account/db/schema?role=SYSADMIN");
  EXPECT_EQ(RedactDsn("./data/warehouse.duckdb"), "./data/warehouse.duckdb");
}

TEST(RedactDsnTest, KeyValue) {
  EXPECT_EQ(RedactDsn("host=h port=5432 password=secret dbname=d"),
            "host=h port=5432 password=***** dbname=d");
  EXPECT_EQ(RedactDsn("host=h password='se cr\\'et' user=u"), "host=h password=***** user=u");
  EXPECT_EQ(RedactDsn("password = x"), "password = *****");
  EXPECT_EQ(RedactDsn("host=/tmp/x port=1 user=postgres"), "host=/tmp/x port=1 user=postgres");
}

}  // namespace
}  // namespace ductstream::base
