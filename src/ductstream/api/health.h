#pragma once

// grpc.health.v1.Health, implemented here rather than with grpc::EnableDefaultHealthCheckService:
// Debian's gRPC builds its default service without protobuf descriptors, so server reflection
// does not list it and reflection-based probes (grpcurl, grpc-health-probe with reflection)
// cannot call it. This one is a normal generated service, visible to reflection.

#include <atomic>
#include <set>
#include <string>

#include "grpc/health/v1/health.grpc.pb.h"

namespace ductstream::api {

class HealthService final : public grpc::health::v1::Health::Service {
 public:
  /// `services`: the fully qualified names that report SERVING ("" = the whole server always
  /// does while serving).
  explicit HealthService(std::set<std::string> services) : services_(std::move(services)) {}

  /// Everything turns NOT_SERVING (at shutdown, so load balancers drain first).
  void SetNotServing() { serving_.store(false); }

  grpc::Status Check(grpc::ServerContext* context,
                     const grpc::health::v1::HealthCheckRequest* request,
                     grpc::health::v1::HealthCheckResponse* response) override;
  /// Sends the status now and again whenever it changes, until the client cancels or the
  /// server shuts down.
  grpc::Status Watch(grpc::ServerContext* context,
                     const grpc::health::v1::HealthCheckRequest* request,
                     grpc::ServerWriter<grpc::health::v1::HealthCheckResponse>* writer) override;

 private:
  grpc::health::v1::HealthCheckResponse::ServingStatus StatusOf(const std::string& service) const;

  const std::set<std::string> services_;
  std::atomic<bool> serving_{true};
};

}  // namespace ductstream::api
