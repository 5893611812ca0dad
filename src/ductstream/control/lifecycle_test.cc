#include "ductstream/control/lifecycle.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace ductstream::control {
namespace {

using S = FlowState;

TEST(LifecycleTest, StateNamesRoundTrip) {
  for (S s : {S::kCreated, S::kRunning, S::kPaused, S::kStopping, S::kStopped, S::kFailed}) {
    auto parsed = ParseFlowState(FlowStateName(s));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_EQ(ParseFlowState("RUNNING").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(LifecycleTest, LegalTransitions) {
  struct Case {
    S from;
    FlowOp op;
    S to;
  };
  const Case cases[] = {
      {S::kCreated, FlowOp::kStart, S::kRunning},       {S::kStopped, FlowOp::kStart, S::kRunning},
      {S::kFailed, FlowOp::kStart, S::kRunning},        {S::kRunning, FlowOp::kPause, S::kPaused},
      {S::kPaused, FlowOp::kResume, S::kRunning},       {S::kRunning, FlowOp::kStop, S::kStopping},
      {S::kPaused, FlowOp::kStop, S::kStopping},        {S::kCreated, FlowOp::kStop, S::kStopping},
      {S::kStopping, FlowOp::kFinishStop, S::kStopped}, {S::kRunning, FlowOp::kFail, S::kFailed},
      {S::kStopping, FlowOp::kFail, S::kFailed},
  };
  for (const Case& c : cases) {
    auto next = NextState("f", c.from, c.op);
    ASSERT_TRUE(next.ok()) << FlowStateName(c.from) << " " << FlowOpName(c.op) << ": "
                           << next.status();
    EXPECT_EQ(*next, c.to) << FlowStateName(c.from) << " " << FlowOpName(c.op);
  }
}

TEST(LifecycleTest, IllegalTransitionsNameBothStates) {
  struct Case {
    S from;
    FlowOp op;
  };
  const Case cases[] = {
      {S::kRunning, FlowOp::kStart},      {S::kPaused, FlowOp::kStart},
      {S::kPaused, FlowOp::kPause},       {S::kCreated, FlowOp::kPause},
      {S::kRunning, FlowOp::kResume},     {S::kStopped, FlowOp::kResume},
      {S::kStopped, FlowOp::kStop},       {S::kStopping, FlowOp::kStop},
      {S::kRunning, FlowOp::kFinishStop}, {S::kStopped, FlowOp::kFail},
  };
  for (const Case& c : cases) {
    auto next = NextState("orders", c.from, c.op);
    ASSERT_EQ(next.status().code(), absl::StatusCode::kFailedPrecondition)
        << FlowStateName(c.from) << " " << FlowOpName(c.op);
    const std::string message(next.status().message());
    EXPECT_TRUE(absl::StrContains(message, "\"orders\"")) << message;
    EXPECT_TRUE(absl::StrContains(message, absl::StrCat("is ", FlowStateName(c.from)))) << message;
    EXPECT_TRUE(absl::StrContains(message, absl::StrCat("cannot ", FlowOpName(c.op)))) << message;
  }
  // The target state is named as well.
  auto paused = NextState("f", S::kPaused, FlowOp::kPause);
  EXPECT_TRUE(absl::StrContains(paused.status().message(), "lead to paused")) << paused.status();
}

}  // namespace
}  // namespace ductstream::control
