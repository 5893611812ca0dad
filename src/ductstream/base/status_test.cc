#include "ductstream/base/status.h"

#include <gtest/gtest.h>

#include "ductstream/base/check.h"

namespace ductstream::base {
namespace {

absl::Status FailWith(absl::StatusCode code) { return absl::Status(code, "boom"); }

absl::Status Propagates(absl::StatusCode code, bool& reached_end) {
  DS_RETURN_IF_ERROR(FailWith(code));
  reached_end = true;
  return absl::OkStatus();
}

absl::StatusOr<int> MaybeInt(bool ok) {
  if (!ok) return absl::NotFoundError("no int");
  return 42;
}

absl::StatusOr<int> Doubled(bool ok) {
  DS_ASSIGN_OR_RETURN(const int v, MaybeInt(ok));
  return v * 2;
}

absl::Status WithContext() {
  DS_RETURN_IF_ERROR_CTX(absl::UnavailableError("connection refused"), "connecting to 127.0.0.1");
  return absl::OkStatus();
}

TEST(StatusMacrosTest, ReturnIfErrorStopsOnError) {
  bool reached = false;
  EXPECT_EQ(Propagates(absl::StatusCode::kInternal, reached).code(), absl::StatusCode::kInternal);
  EXPECT_FALSE(reached);
  EXPECT_TRUE(Propagates(absl::StatusCode::kOk, reached).ok());
  EXPECT_TRUE(reached);
}

TEST(StatusMacrosTest, AssignOrReturn) {
  EXPECT_EQ(*Doubled(true), 84);
  EXPECT_EQ(Doubled(false).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Doubled(false).status().message(), "no int");
}

TEST(StatusMacrosTest, ContextIsPrependedAndCodeKept) {
  absl::Status s = WithContext();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "connecting to 127.0.0.1: connection refused");
  EXPECT_TRUE(IsRetriable(s));
}

TEST(StatusTest, AnnotateKeepsPayloadsAndOk) {
  absl::Status s = absl::InternalError("x");
  s.SetPayload("type.ductstream/detail", absl::Cord("d"));
  absl::Status a = Annotate(s, "ctx");
  EXPECT_EQ(a.message(), "ctx: x");
  EXPECT_EQ(a.GetPayload("type.ductstream/detail").value_or(absl::Cord()), "d");
  EXPECT_TRUE(Annotate(absl::OkStatus(), "ctx").ok());
}

TEST(StatusTest, RetriableClassification) {
  EXPECT_TRUE(IsRetriable(absl::UnavailableError("")));
  EXPECT_TRUE(IsRetriable(absl::DeadlineExceededError("")));
  EXPECT_TRUE(IsRetriable(absl::AbortedError("")));
  EXPECT_TRUE(IsRetriable(absl::ResourceExhaustedError("")));
  EXPECT_FALSE(IsRetriable(absl::InvalidArgumentError("")));
  EXPECT_FALSE(IsRetriable(absl::NotFoundError("")));
  EXPECT_FALSE(IsRetriable(absl::FailedPreconditionError("")));
  EXPECT_FALSE(IsRetriable(absl::UnimplementedError("")));
  EXPECT_FALSE(IsRetriable(absl::InternalError("")));
  EXPECT_FALSE(IsRetriable(absl::OkStatus()));
}

TEST(CheckDeathTest, CheckAbortsWithMessage) {
  EXPECT_DEATH(DS_CHECK(1 + 1 == 3, "arithmetic"), "check failed: 1 \\+ 1 == 3: arithmetic");
  EXPECT_DEATH(DS_CHECK_OK(absl::InternalError("bad")), "INTERNAL: bad");
  DS_CHECK(true);  // passes silently
}

}  // namespace
}  // namespace ductstream::base
