#pragma once

// The Postgres-backed stream (pgstream, SPEC.md §12, docs/streams.md): a durable queue of change
// events with consumer groups.
//
// Tables (migrations tracked in ductstream_stream_migrations):
//   stream_events      one row per event; UNIQUE (stream, flow_id, commit_lsn, seq), so writing
//                      the same batch again (a worker redelivering after a crash) adds nothing.
//   stream_groups      the consumer groups of each stream, registered by their first call.
//   stream_deliveries  one row per (event, group): available | claimed | acked, visible_at
//                      (claimed_until while claimed), attempts, consumer_id.
// Deliveries are created eagerly: Append adds one row per registered group of the stream, and
// registering a group adds rows for every event the stream holds at that moment, so a group that
// starts late still receives everything. The two are serialised per stream by an advisory lock
// (Append takes it shared, registration exclusive), so no event can fall between them.
//
// Claim locks the group's own delivery rows with FOR UPDATE SKIP LOCKED: consumers of one group
// get disjoint sets, and consumers of other groups are never blocked or skipped.
//
// Thread-compatible: one connection; give each thread its own StreamStore (or serialise calls).

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ductstream/base/lsn.h"
#include "ductstream/store/sql_db.h"

namespace ductstream::streams {

/// One event to append. Empty strings are stored as NULL.
struct NewEvent {
  std::string namespace_name;
  std::string table_name;
  /// The change's LSN (record payloads) or the first change's commit LSN (batch payloads).
  Lsn lsn;
  /// Identity of the (first) change: commit LSN + sequence in the transaction.
  Lsn commit_lsn;
  int64_t seq = 0;
  std::string wire_format;
  std::string payload;
};

/// One claimed event as Pull returns it.
struct StreamMessage {
  int64_t id = 0;
  std::string stream;
  std::string namespace_name;
  std::string table_name;
  /// "X/Y", or empty when unknown.
  std::string lsn;
  std::string commit_lsn;
  int64_t seq = 0;
  std::string wire_format;
  std::string payload;
  absl::Time created_at;
  /// How many times this group has claimed the event, this claim included.
  int32_t attempts = 0;
};

struct PullRequest {
  std::string stream;
  std::string group;
  /// ≤ 0: 100.
  int max_messages = 100;
  /// ≤ 0: 30 s.
  absl::Duration visibility = absl::Seconds(30);
  std::string consumer_id;
};

class StreamStore {
 public:
  /// Connects and applies the migrations (under the migration lock: any number of processes may
  /// open the same database at once).
  static absl::StatusOr<std::unique_ptr<StreamStore>> Open(const std::string& dsn);
  /// Over an already open PostgreSQL database (kInvalidArgument for SQLite).
  static absl::StatusOr<std::unique_ptr<StreamStore>> Open(std::unique_ptr<store::SqlDatabase> db);

  const std::string& description() const { return db_->description(); }

  /// Appends `events` of `flow_id` to `stream` in one transaction, with a delivery row for every
  /// registered group. Events already present (same stream, flow, commit LSN, seq) are skipped.
  /// Returns how many events were new.
  absl::StatusOr<int64_t> Append(absl::string_view stream, absl::string_view flow_id,
                                 std::span<const NewEvent> events);

  /// Claims up to max_messages events that the group has not acked and that nobody holds (never
  /// claimed, or the claim's visibility timeout passed), ordered by id. Registers the group on
  /// first use. InvalidArgument when stream or group is empty.
  absl::StatusOr<std::vector<StreamMessage>> Pull(const PullRequest& request);

  /// Marks the group's claimed deliveries of `ids` acked; returns how many were claimed (ids not
  /// claimed by the group, or already acked, are not counted).
  absl::StatusOr<int64_t> Ack(absl::string_view stream, absl::string_view group,
                              std::span<const int64_t> ids);

  /// Makes the group's deliveries of events with lsn >= from_lsn (compared as pg_lsn) and/or
  /// created at or after `since` available again, acked or claimed alike; with neither, every
  /// delivery of the group. Returns how many deliveries changed (rows already available are not
  /// counted). Registers the group on first use.
  absl::StatusOr<int64_t> Replay(absl::string_view stream, absl::string_view group,
                                 std::optional<Lsn> from_lsn, std::optional<absl::Time> since);

  /// Deletes events of `stream` older than `retention` that every registered group has acked (a
  /// stream without groups keeps everything). Returns how many events were deleted.
  absl::StatusOr<int64_t> Prune(absl::string_view stream, absl::Duration retention);

 private:
  explicit StreamStore(std::unique_ptr<store::SqlDatabase> db) : db_(std::move(db)) {}
  absl::Status EnsureGroup(absl::string_view stream, absl::string_view group);

  std::unique_ptr<store::SqlDatabase> db_;
};

}  // namespace ductstream::streams
