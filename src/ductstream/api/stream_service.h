#pragma once

// StreamService (SPEC.md §3.5): Pull / Ack / Replay over the Postgres-backed stream (pgstream,
// ductstream/streams/stream_store.h) in the control database. Without a PostgreSQL control
// database (DUCTSTREAM_POSTGRES_DSN unset: the embedded SQLite store) every call answers
// UNIMPLEMENTED saying so.
//
// Thread-safe: gRPC calls handlers concurrently; each call borrows a StreamStore (one connection)
// from a small pool, so concurrent consumers claim in parallel and SKIP LOCKED keeps their sets
// disjoint.

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "ductstream/streams/stream_store.h"
#include "ductstream/v1/stream.grpc.pb.h"

namespace ductstream::api {

class StreamServiceImpl final : public ductstream::v1::StreamService::Service {
 public:
  /// `dsn`: the PostgreSQL control database, or empty (every call UNIMPLEMENTED).
  StreamServiceImpl(std::string dsn, std::string token);
  ~StreamServiceImpl() override;

  grpc::Status Pull(grpc::ServerContext* context, const ductstream::v1::StreamPullRequest* request,
                    ductstream::v1::StreamPullResponse* response) override;
  grpc::Status Ack(grpc::ServerContext* context, const ductstream::v1::StreamAckRequest* request,
                   ductstream::v1::StreamAckResponse* response) override;
  grpc::Status Replay(grpc::ServerContext* context,
                      const ductstream::v1::StreamReplayRequest* request,
                      ductstream::v1::StreamReplayResponse* response) override;

 private:
  // Checks auth and the DSN, validates stream and group, then runs `body` with a pooled store.
  template <typename Fn>
  grpc::Status Run(grpc::ServerContext* context, const std::string& stream,
                   const std::string& group, Fn&& body);

  absl::StatusOr<std::unique_ptr<streams::StreamStore>> Borrow();
  void Return(std::unique_ptr<streams::StreamStore> store);

  const std::string dsn_;
  const std::string token_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<streams::StreamStore>> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ductstream::api
