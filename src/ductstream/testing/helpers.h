#pragma once

// Small helpers the integration tests share.

#include <functional>
#include <string>

#include "absl/time/time.h"

namespace ductstream::testing {

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released), for a
/// server a test starts.
int FreeLoopbackPort();

/// Polls `done` every 200 ms until it holds or `timeout` passes; the last answer.
bool WaitFor(const std::function<bool()>& done, absl::Duration timeout);

/// A file's whole contents; empty when it cannot be read (logs that may not exist yet).
std::string ReadFile(const std::string& path);

}  // namespace ductstream::testing
