#include "ductstream/base/status.h"

namespace ductstream::base {

absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  absl::Status annotated(status.code(), absl::StrCat(context, ": ", status.message()));
  status.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
    annotated.SetPayload(url, payload);
  });
  return annotated;
}

bool IsRetriable(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:        // server down, connection lost
    case absl::StatusCode::kDeadlineExceeded:   // timeouts
    case absl::StatusCode::kAborted:            // serialization failures, lost races
    case absl::StatusCode::kResourceExhausted:  // throttling, full queues on the far side
      return true;
    default:
      return false;
  }
}

}  // namespace ductstream::base
