#include "ductstream/destination/null_destination.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ductstream/base/logging.h"

namespace ductstream::destination {
namespace {

spdlog::logger& Log() {
  static const auto logger = base::GetLogger("null");
  return *logger;
}

class NullDestination final : public runner::Destination {
 public:
  NullDestination(NullDestinationConfig config, NullDestinationCounts* counts)
      : config_(std::move(config)), counts_(counts != nullptr ? counts : &own_counts_) {}

  const std::string& name() const override { return config_.name; }

  absl::Status Write(const cdc::ChangeBatch& batch) override {
    ++counts_->batches;
    counts_->rows += batch.num_rows();
    counts_->bytes += batch.bytes;
    return absl::OkStatus();
  }

  absl::Status Close() override {
    Log().info("destination {}: discarded {} rows in {} batches ({} bytes)", config_.name,
               counts_->rows, counts_->batches, counts_->bytes);
    return absl::OkStatus();
  }

 private:
  NullDestinationConfig config_;
  NullDestinationCounts own_counts_;
  NullDestinationCounts* counts_;
};

}  // namespace

absl::Status CheckNullDestinationOptions(const flow::Endpoint& dest, const std::string& field) {
  std::vector<std::string> problems;
  for (const auto& [key, value] : dest.options) {
    // `flow_id` is injected by the control plane and `format` by the flow's wire format for
    // every connector; the null destination encodes nothing, so any format will do.
    if (key == "flow_id" || key == "format") continue;
    problems.push_back(absl::StrCat(field, ".options.", key,
                                    ": unknown option (the null destination takes none)"));
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(problems, "; "));
}

absl::StatusOr<std::unique_ptr<runner::Destination>> MakeNullDestination(
    NullDestinationConfig config, NullDestinationCounts* counts) {
  return std::make_unique<NullDestination>(std::move(config), counts);
}

}  // namespace ductstream::destination
