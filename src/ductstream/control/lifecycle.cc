#include "ductstream/control/lifecycle.h"

#include <array>
#include <initializer_list>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ductstream::control {
namespace {

constexpr std::array<absl::string_view, 6> kStateNames = {"created",  "running", "paused",
                                                          "stopping", "stopped", "failed"};

struct Rule {
  FlowOp op;
  std::initializer_list<FlowState> from;
  FlowState to;
};

using S = FlowState;
const Rule kRules[] = {
    {FlowOp::kStart, {S::kCreated, S::kStopped, S::kFailed}, S::kRunning},
    {FlowOp::kPause, {S::kRunning}, S::kPaused},
    {FlowOp::kResume, {S::kPaused}, S::kRunning},
    {FlowOp::kStop, {S::kCreated, S::kRunning, S::kPaused, S::kFailed}, S::kStopping},
    {FlowOp::kFinishStop, {S::kStopping}, S::kStopped},
    {FlowOp::kFail, {S::kCreated, S::kRunning, S::kPaused, S::kStopping, S::kFailed}, S::kFailed},
};

}  // namespace

absl::string_view FlowStateName(FlowState state) { return kStateNames[static_cast<int>(state)]; }

absl::StatusOr<FlowState> ParseFlowState(absl::string_view name) {
  for (size_t i = 0; i < kStateNames.size(); ++i) {
    if (kStateNames[i] == name) return static_cast<FlowState>(i);
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown flow state \"", name, "\" (one of ",
                                                 absl::StrJoin(kStateNames, ", "), ")"));
}

absl::string_view FlowOpName(FlowOp op) {
  switch (op) {
    case FlowOp::kStart:
      return "start";
    case FlowOp::kPause:
      return "pause";
    case FlowOp::kResume:
      return "resume";
    case FlowOp::kStop:
      return "stop";
    case FlowOp::kFinishStop:
      return "finish-stop";
    case FlowOp::kFail:
      return "fail";
  }
  return "?";
}

absl::StatusOr<FlowState> NextState(absl::string_view flow_id, FlowState from, FlowOp op) {
  for (const Rule& rule : kRules) {
    if (rule.op != op) continue;
    for (FlowState allowed : rule.from) {
      if (allowed == from) return rule.to;
    }
    std::vector<absl::string_view> names;
    for (FlowState allowed : rule.from) names.push_back(FlowStateName(allowed));
    return absl::FailedPreconditionError(absl::StrCat(
        "flow \"", flow_id, "\": cannot ", FlowOpName(op), ": the flow is ", FlowStateName(from),
        " (", FlowOpName(op), " needs ", absl::StrJoin(names, " or "), "; it would lead to ",
        FlowStateName(rule.to), ")"));
  }
  return absl::InternalError("unknown flow operation");
}

}  // namespace ductstream::control
