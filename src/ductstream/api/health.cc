#include "ductstream/api/health.h"

#include <optional>

#include "absl/time/clock.h"

namespace ductstream::api {

using grpc::health::v1::HealthCheckResponse;

HealthCheckResponse::ServingStatus HealthService::StatusOf(const std::string& service) const {
  if (!service.empty() && services_.count(service) == 0)
    return HealthCheckResponse::SERVICE_UNKNOWN;
  return serving_.load() ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
}

grpc::Status HealthService::Check(grpc::ServerContext* /*context*/,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  HealthCheckResponse* response) {
  const auto status = StatusOf(request->service());
  if (status == HealthCheckResponse::SERVICE_UNKNOWN) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        "unknown service \"" + request->service() + "\"");
  }
  response->set_status(status);
  return grpc::Status::OK;
}

grpc::Status HealthService::Watch(grpc::ServerContext* context,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::ServerWriter<HealthCheckResponse>* writer) {
  std::optional<HealthCheckResponse::ServingStatus> sent;
  while (!context->IsCancelled()) {
    const auto status = StatusOf(request->service());
    if (status != sent) {
      HealthCheckResponse response;
      response.set_status(status);
      if (!writer->Write(response)) break;
      sent = status;
    }
    if (status == HealthCheckResponse::NOT_SERVING) break;  // shutting down: end the stream
    absl::SleepFor(absl::Milliseconds(200));
  }
  return grpc::Status::OK;
}

}  // namespace ductstream::api
