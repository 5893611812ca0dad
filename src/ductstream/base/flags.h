#pragma once

#include <string>
#include <vector>

namespace ductstream::base {

/// The original tools used Go's `flag` package, where long flags take one dash (`-flow-id X`,
/// `-max-empty-reads=1`). CLI11 reserves one dash for single letters, so we rewrite every
/// `-name...` argument with a multi-letter name to `--name...` before parsing. Negative numbers,
/// `-` and anything after `--` are left alone. Returns the rewritten argv (argv[0] included).
std::vector<std::string> NormalizeGoStyleFlags(int argc, const char* const* argv);

}  // namespace ductstream::base
