#include "ductstream/base/logging.h"

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace ductstream::base {
namespace {

struct Registry {
  absl::Mutex mu;
  spdlog::sink_ptr sink ABSL_GUARDED_BY(mu);
  spdlog::level::level_enum level ABSL_GUARDED_BY(mu) = spdlog::level::info;
  bool level_from_env_done ABSL_GUARDED_BY(mu) = false;
};

Registry& GetRegistry() {
  static Registry registry;
  return registry;
}

// DUCTSTREAM_LOG_LEVEL is read once, lazily, so that loggers created before main() runs agree.
void ApplyEnvLevelLocked(Registry& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(r.mu) {
  if (r.level_from_env_done) return;
  r.level_from_env_done = true;
  if (const char* env = std::getenv("DUCTSTREAM_LOG_LEVEL"); env != nullptr && *env != '\0') {
    auto level = spdlog::level::from_str(env);
    // from_str maps unknown names to "off"; only accept "off" when it was asked for.
    if (level != spdlog::level::off || absl::string_view(env) == "off") r.level = level;
  }
}

}  // namespace

std::shared_ptr<spdlog::logger> GetLogger(absl::string_view module) {
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mu);
  std::string name(module);
  if (auto existing = spdlog::get(name)) return existing;
  ApplyEnvLevelLocked(r);
  if (!r.sink) r.sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(name, r.sink);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v");
  logger->set_level(r.level);
  spdlog::register_logger(logger);
  return logger;
}

absl::Status SetLogLevel(absl::string_view level) {
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mu);
  if (level.empty()) {
    r.level_from_env_done = false;
    ApplyEnvLevelLocked(r);
  } else {
    auto parsed = spdlog::level::from_str(std::string(level));
    if (parsed == spdlog::level::off && level != "off") {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown log level '", level, "': use trace, debug, info, warn, error, critical or off"));
    }
    r.level = parsed;
  }
  const auto applied = r.level;
  spdlog::apply_all([applied](const std::shared_ptr<spdlog::logger>& l) { l->set_level(applied); });
  return absl::OkStatus();
}

}  // namespace ductstream::base
