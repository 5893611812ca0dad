#pragma once

// Flow lifecycle (DESIGN.md §4): states, the operations that move between them, and the table of
// legal transitions. Pure logic; the control store applies it atomically.
//
//   created ──start──▶ running ◀──resume── paused
//      │                 │ └──────pause──────▶ │
//      │                stop                  stop
//      └────stop──────▶ stopping ◀─────────────┘
//                        │ (worker gone)
//                        ▼
//                     stopped ──start──▶ running
//   any state except stopped ──fail──▶ failed ──start──▶ running

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ductstream::control {

enum class FlowState { kCreated, kRunning, kPaused, kStopping, kStopped, kFailed };

/// "created", "running", ...
absl::string_view FlowStateName(FlowState state);
/// Inverse of FlowStateName; InvalidArgument for anything else.
absl::StatusOr<FlowState> ParseFlowState(absl::string_view name);

enum class FlowOp {
  kStart,       // created | stopped | failed -> running
  kPause,       // running -> paused
  kResume,      // paused -> running
  kStop,        // created | running | paused | failed -> stopping
  kFinishStop,  // stopping -> stopped (the supervisor, once no worker holds the flow)
  kFail,        // any but stopped -> failed
};

/// "start", "pause", ... (also the reason recorded with the transition).
absl::string_view FlowOpName(FlowOp op);

/// The state `op` leads to from `from`, or FailedPrecondition naming the flow, both states and
/// the states the operation is allowed from:
///   flow "orders": cannot pause: the flow is paused (pause needs running)
absl::StatusOr<FlowState> NextState(absl::string_view flow_id, FlowState from, FlowOp op);

/// Whether a worker should be running for a flow in `state`.
inline bool WantsWorker(FlowState state) { return state == FlowState::kRunning; }

}  // namespace ductstream::control
