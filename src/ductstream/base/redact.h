#pragma once

#include <string>
#include "absl/strings/string_view.h"

namespace ductstream::base {

/// Returns `dsn` with any password replaced by `*****`, for logs, errors and API responses.
/// Understands URIs (`postgres://user:secret@host/db`), the Snowflake-style form
/// (`user:secret@account/db`) and libpq key/value strings (`password=secret`,
/// `password='se cret'`). Text without a password is returned unchanged.
std::string RedactDsn(absl::string_view dsn);

}  // namespace ductstream::base
