#pragma once

// Status plumbing for all of DuctStream: our code returns absl::Status / absl::StatusOr<T> and
// never throws. These macros keep call sites short and add context on the way up.

#include <utility>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#define DS_INTERNAL_CONCAT_IMPL(a, b) a##b
#define DS_INTERNAL_CONCAT(a, b) DS_INTERNAL_CONCAT_IMPL(a, b)

/// Returns from the current function when `expr` (an absl::Status) is not OK.
#define DS_RETURN_IF_ERROR(expr)        \
  do {                                  \
    ::absl::Status _ds_status = (expr); \
    if (!_ds_status.ok()) [[unlikely]]  \
      return _ds_status;                \
  } while (false)

/// Like DS_RETURN_IF_ERROR, prefixing the message with `context` ("opening slot s1: ...").
#define DS_RETURN_IF_ERROR_CTX(expr, context)                     \
  do {                                                            \
    ::absl::Status _ds_status = (expr);                           \
    if (!_ds_status.ok()) [[unlikely]]                            \
      return ::ductstream::base::Annotate(_ds_status, (context)); \
  } while (false)

/// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status, otherwise moves the
/// value into `lhs` (which may be a declaration: `DS_ASSIGN_OR_RETURN(auto conn, Connect())`).
#define DS_ASSIGN_OR_RETURN(lhs, rexpr) \
  DS_INTERNAL_ASSIGN_OR_RETURN(DS_INTERNAL_CONCAT(_ds_statusor_, __LINE__), lhs, rexpr)

#define DS_INTERNAL_ASSIGN_OR_RETURN(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                 \
  if (!tmp.ok()) [[unlikely]]                         \
    return std::move(tmp).status();                   \
  lhs = std::move(tmp).value()

namespace ductstream::base {

/// Returns `status` with `context: ` prepended to its message; OK stays OK. The code and
/// payloads are kept, so IsRetriable() still sees the original classification.
absl::Status Annotate(const absl::Status& status, absl::string_view context);

/// The one place that decides whether an error is worth retrying (STYLE.md "Errors"):
/// network trouble, unavailable servers and timeouts back off and retry from the checkpoint;
/// bad configuration, missing objects and unsupported input fail the flow.
bool IsRetriable(const absl::Status& status);

}  // namespace ductstream::base
