#pragma once

// The machinery every destination's option parser shares: a table of options (the doc shown in
// docs/connectors.md and in errors, plus the parser that applies a value), and the loop that
// applies a destination's options to its typed struct, reporting every problem at once as
// "<field>.options.<key>: <problem>". Connector-specific keys (librdkafka.*, flow_id, ...) are
// handled by a hook before the table is consulted.

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "ductstream/flow/flow_config.h"

namespace ductstream::destination {

template <typename Options>
struct ConnectorOption {
  flow::OptionDoc doc;
  /// Applies `value` to `out`: "" on success, else the problem (without the key).
  std::function<std::string(absl::string_view value, Options& out)> parse;
};

/// Accumulates "<field>.options.<key>: <problem>" entries.
class OptionProblems {
 public:
  explicit OptionProblems(absl::string_view field) : field_(field) {}
  void Add(absl::string_view key, absl::string_view problem) {
    list_.push_back(absl::StrCat(field_, ".options.", key, ": ", problem));
  }
  /// A problem not tied to an option key (e.g. an environment variable).
  void AddRaw(std::string problem) { list_.push_back(std::move(problem)); }
  bool empty() const { return list_.empty(); }
  absl::Status ToStatus() const {
    return list_.empty() ? absl::OkStatus()
                         : absl::InvalidArgumentError(absl::StrJoin(list_, "; "));
  }

 private:
  std::string field_;
  std::vector<std::string> list_;
};

/// The docs of a table, in table order (for docs/connectors.md and its coverage tests).
template <typename Options>
std::vector<flow::OptionDoc> OptionDocsOf(const std::vector<ConnectorOption<Options>>& table) {
  std::vector<flow::OptionDoc> out;
  for (const auto& o : table) out.push_back(o.doc);
  return out;
}

/// Applies every option of `dest` to `out` through `table`. `special(key, value)` sees each key
/// first and returns true when it handled it. Unknown keys are problems listing the known ones
/// (plus `also_accepted`, e.g. "librdkafka.<property>"); "flow_id", which the control plane
/// injects for every connector, is ignored unless `special` takes it.
template <typename Options>
void ApplyOptions(
    const flow::Endpoint& dest, const std::vector<ConnectorOption<Options>>& table, Options& out,
    OptionProblems& problems,
    const std::function<bool(const std::string& key, const std::string& value)>& special = {},
    absl::string_view also_accepted = "") {
  for (const auto& [key, value] : dest.options) {
    if (special && special(key, value)) continue;
    if (key == "flow_id") continue;
    const ConnectorOption<Options>* option = nullptr;
    for (const auto& o : table) {
      if (o.doc.name == key) option = &o;
    }
    if (option == nullptr) {
      std::vector<std::string> names;
      for (const auto& o : table) names.emplace_back(o.doc.name);
      problems.Add(key, absl::StrCat("unknown option (expected ", absl::StrJoin(names, ", "),
                                     also_accepted.empty() ? "" : ", or ", also_accepted, ")"));
      continue;
    }
    if (std::string p = option->parse(value, out); !p.empty()) problems.Add(key, p);
  }
}

}  // namespace ductstream::destination
