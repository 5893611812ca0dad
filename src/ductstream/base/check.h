#pragma once

// Assertions for "cannot happen" (DS_CHECK, always on) and debug-only invariants (DS_DCHECK).
// Never use them on input from Postgres, the network or a user: that input gets an absl::Status.
// A failed check aborts; the supervisor restarts the worker from its durable checkpoint.

#include <string_view>

namespace ductstream::base::internal {
[[noreturn]] void CheckFailed(const char* file, int line, const char* condition,
                              std::string_view message);
}  // namespace ductstream::base::internal

#define DS_CHECK(condition, ...)                                                   \
  do {                                                                             \
    if (!(condition)) [[unlikely]]                                                 \
      ::ductstream::base::internal::CheckFailed(__FILE__, __LINE__, #condition,    \
                                                std::string_view{"" __VA_ARGS__}); \
  } while (false)

#define DS_CHECK_OK(expr)                                                          \
  do {                                                                             \
    const auto& _ds_check_status = (expr);                                         \
    if (!_ds_check_status.ok()) [[unlikely]]                                       \
      ::ductstream::base::internal::CheckFailed(__FILE__, __LINE__, #expr ".ok()", \
                                                _ds_check_status.ToString());      \
  } while (false)

#ifdef NDEBUG
#define DS_DCHECK(condition, ...) \
  do {                            \
  } while (false && (condition))
#else
#define DS_DCHECK(condition, ...) DS_CHECK(condition, __VA_ARGS__)
#endif
