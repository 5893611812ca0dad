#include "ductstream/base/logging.h"

#include <gtest/gtest.h>

#include "ductstream/base/ids.h"

namespace ductstream::base {
namespace {

TEST(LoggingTest, OneLoggerPerModule) {
  auto a = GetLogger("postgres");
  auto b = GetLogger("postgres");
  auto c = GetLogger("kafka");
  EXPECT_EQ(a.get(), b.get());
  EXPECT_NE(a.get(), c.get());
  EXPECT_EQ(a->name(), "postgres");
}

TEST(LoggingTest, LevelAppliesToAllLoggers) {
  auto a = GetLogger("runner");
  ASSERT_TRUE(SetLogLevel("debug").ok());
  auto later = GetLogger("store");
  EXPECT_EQ(a->level(), spdlog::level::debug);
  EXPECT_EQ(later->level(), spdlog::level::debug);
  ASSERT_TRUE(SetLogLevel("warn").ok());
  EXPECT_EQ(a->level(), spdlog::level::warn);
  EXPECT_EQ(later->level(), spdlog::level::warn);
}

TEST(LoggingTest, RejectsUnknownLevel) {
  absl::Status s = SetLogLevel("loud");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("loud"), absl::string_view::npos);
}

TEST(IdsTest, StrongTypesCompareAndPrint) {
  EXPECT_LT(Xid(1), Xid(2));
  EXPECT_EQ(Oid(16384), Oid(16384));
  EXPECT_EQ(Oid(16384).value(), 16384u);
  EXPECT_EQ(FlowId("f1").value(), "f1");
  static_assert(!std::is_convertible_v<Xid, Oid>, "an Xid must never pass as an Oid");
  static_assert(!std::is_convertible_v<uint32_t, Xid>, "construction must be explicit");
}

}  // namespace
}  // namespace ductstream::base
