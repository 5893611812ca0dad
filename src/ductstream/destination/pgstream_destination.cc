#include "ductstream/destination/pgstream_destination.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ductstream/base/logging.h"
#include "ductstream/base/status.h"
#include "ductstream/codec/row_json.h"
#include "ductstream/streams/stream_store.h"

namespace ductstream::destination {
namespace {

spdlog::logger& Log() {
  static const auto logger = base::GetLogger("pgstream");
  return *logger;
}

constexpr int kMaxAttempts = 6;
constexpr absl::Duration kPruneInterval = absl::Minutes(1);

class PgstreamDestination final : public runner::Destination {
 public:
  PgstreamDestination(PgstreamDestinationConfig config, std::unique_ptr<codec::Encoder> encoder)
      : config_(std::move(config)), encoder_(std::move(encoder)) {
    if (!config_.options.flow_id.empty()) config_.flow_id = config_.options.flow_id;
  }

  const std::string& name() const override { return config_.name; }

  absl::Status Write(const cdc::ChangeBatch& batch) override {
    std::vector<streams::NewEvent> events;
    DS_RETURN_IF_ERROR(BuildEvents(batch, events));
    if (events.empty()) return absl::OkStatus();
    absl::Duration backoff = absl::Milliseconds(200);
    for (int attempt = 1;; ++attempt) {
      absl::Status s = Append(events);
      if (s.ok()) break;
      // A broken connection is replaced on the next call; anything else is not going to change.
      if (!base::IsRetriable(s) || attempt == kMaxAttempts) {
        return base::Annotate(s, absl::StrCat(Prefix(), "appending ", events.size(),
                                              " events to stream ", opts().stream));
      }
      Log().warn("{}appending to stream {} failed (attempt {}): {}; retrying in {}", Prefix(),
                 opts().stream, attempt, std::string(s.message()), absl::FormatDuration(backoff));
      absl::SleepFor(backoff);
      backoff = std::min(backoff * 2, absl::Seconds(5));
    }
    MaybePrune();
    return absl::OkStatus();
  }

 private:
  const PgstreamOptions& opts() const { return config_.options; }
  std::string Prefix() const { return absl::StrCat("pgstream destination ", config_.name, ": "); }

  absl::Status Append(const std::vector<streams::NewEvent>& events) {
    if (store_ == nullptr) {
      DS_ASSIGN_OR_RETURN(store_, streams::StreamStore::Open(opts().dsn));
      Log().info("{}appending to stream {} in {}", Prefix(), opts().stream, store_->description());
    }
    absl::StatusOr<int64_t> added = store_->Append(opts().stream, config_.flow_id, events);
    if (!added.ok()) return added.status();
    if (*added < static_cast<int64_t>(events.size())) {
      Log().info("{}{} of {} events were already in stream {} (a replayed batch)", Prefix(),
                 events.size() - *added, events.size(), opts().stream);
    }
    return absl::OkStatus();
  }

  void MaybePrune() {
    if (opts().retention <= absl::ZeroDuration() || store_ == nullptr) return;
    const absl::Time now = absl::Now();
    if (now - last_prune_ < kPruneInterval) return;
    last_prune_ = now;
    absl::StatusOr<int64_t> pruned = store_->Prune(opts().stream, opts().retention);
    if (!pruned.ok()) {
      Log().warn("{}pruning stream {}: {}", Prefix(), opts().stream,
                 std::string(pruned.status().message()));
    } else if (*pruned > 0) {
      Log().info("{}pruned {} events acked by every group from stream {}", Prefix(), *pruned,
                 opts().stream);
    }
  }

  absl::Status BuildEvents(const cdc::ChangeBatch& batch, std::vector<streams::NewEvent>& out) {
    const std::string format(codec::WireFormatName(opts().format));
    for (const cdc::RelationChanges& changes : batch.relations) {
      if (changes.num_rows() == 0) continue;
      DS_ASSIGN_OR_RETURN(auto renderer, codec::RowJsonRenderer::Create(changes));
      auto common = [&](streams::NewEvent& e) {
        e.namespace_name = changes.schema;
        e.table_name = changes.table;
        e.wire_format = format;
      };
      if (opts().payload_mode == PgstreamPayloadMode::kBatch) {
        streams::NewEvent e;
        common(e);
        DS_RETURN_IF_ERROR_CTX(encoder_->Encode(changes, &e.payload),
                               absl::StrCat(Prefix(), "encoding ", changes.QualifiedName()));
        e.lsn = renderer->lsn(0);
        e.commit_lsn = changes.first_commit_lsn;
        e.seq = changes.first_seq;
        out.push_back(std::move(e));
        continue;
      }
      for (int64_t r = 0; r < changes.num_rows(); ++r) {
        streams::NewEvent e;
        common(e);
        if (opts().format == codec::WireFormat::kJson) {
          renderer->AppendChange(r, &e.payload);
        } else {
          // The wire format's own encoding of this one change: a self-contained document.
          cdc::RelationChanges one = changes;
          one.records = changes.records->Slice(r, 1);
          one.first_commit_lsn = renderer->commit_lsn(r);
          one.first_seq = renderer->seq(r);
          DS_RETURN_IF_ERROR_CTX(encoder_->Encode(one, &e.payload),
                                 absl::StrCat(Prefix(), "encoding ", changes.QualifiedName()));
        }
        e.lsn = renderer->lsn(r);
        e.commit_lsn = renderer->commit_lsn(r);
        e.seq = renderer->seq(r);
        out.push_back(std::move(e));
      }
    }
    return absl::OkStatus();
  }

  PgstreamDestinationConfig config_;
  std::unique_ptr<codec::Encoder> encoder_;
  std::unique_ptr<streams::StreamStore> store_;
  absl::Time last_prune_ = absl::InfinitePast();
};

}  // namespace

absl::StatusOr<std::unique_ptr<runner::Destination>> MakePgstreamDestination(
    PgstreamDestinationConfig config) {
  if (config.options.dsn.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("pgstream destination ", config.name, ": dsn is required"));
  }
  if (config.options.stream.empty()) config.options.stream = config.name;
  DS_ASSIGN_OR_RETURN(auto encoder, codec::MakeEncoder(config.options.format));
  return std::unique_ptr<runner::Destination>(
      new PgstreamDestination(std::move(config), std::move(encoder)));
}

}  // namespace ductstream::destination
