#pragma once

// Logging: one spdlog logger per module ("postgres", "runner", "kafka", ...), all writing to one
// shared stderr sink, all following one level. A module defines `Log()` in its own log.h:
//
//   inline spdlog::logger& Log() {
//     static const auto logger = base::GetLogger("postgres");
//     return *logger;
//   }

#include <memory>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "spdlog/logger.h"

namespace ductstream::base {

/// Returns the logger named `module`, creating it on first use. Thread-safe.
std::shared_ptr<spdlog::logger> GetLogger(absl::string_view module);

/// Sets the level of every logger, existing and future. `level` is one of trace, debug, info,
/// warn, error, critical, off. Empty means: DUCTSTREAM_LOG_LEVEL from the environment, else info.
absl::Status SetLogLevel(absl::string_view level = {});

}  // namespace ductstream::base
