#pragma once

// gRPC service implementations over the control store. Every handler checks the bearer token
// first (when one is configured), maps absl::Status codes one to one, and never returns secrets.

#include <functional>
#include <string>

#include "ductstream/control/control_store.h"
#include "ductstream/flow/flow_config.h"
#include "ductstream/store/checkpoint_store.h"
#include "ductstream/v1/checkpoint.grpc.pb.h"
#include "ductstream/v1/flow.grpc.pb.h"

namespace ductstream::api {

/// Checks the `authorization: Bearer <token>` metadata; OK when no token is configured.
grpc::Status Authorize(const grpc::ServerContext* context, const std::string& token);

class FlowServiceImpl final : public ductstream::v1::FlowService::Service {
 public:
  /// `changed` is called after every change of a flow (the supervisor's nudge).
  FlowServiceImpl(control::ControlStore* store, flow::ValidationOptions validation,
                  std::string token, std::function<void()> changed)
      : store_(store),
        validation_(std::move(validation)),
        token_(std::move(token)),
        changed_(std::move(changed)) {}

  grpc::Status CreateFlow(grpc::ServerContext* context,
                          const ductstream::v1::CreateFlowRequest* request,
                          ductstream::v1::Flow* response) override;
  grpc::Status UpdateFlow(grpc::ServerContext* context,
                          const ductstream::v1::UpdateFlowRequest* request,
                          ductstream::v1::Flow* response) override;
  grpc::Status StartFlow(grpc::ServerContext* context,
                         const ductstream::v1::StartFlowRequest* request,
                         ductstream::v1::Flow* response) override;
  grpc::Status RunFlowOnce(grpc::ServerContext* context,
                           const ductstream::v1::RunFlowOnceRequest* request,
                           ductstream::v1::RunFlowOnceResponse* response) override;
  grpc::Status StopFlow(grpc::ServerContext* context,
                        const ductstream::v1::StopFlowRequest* request,
                        ductstream::v1::Flow* response) override;
  grpc::Status PauseFlow(grpc::ServerContext* context,
                         const ductstream::v1::PauseFlowRequest* request,
                         ductstream::v1::Flow* response) override;
  grpc::Status ResumeFlow(grpc::ServerContext* context,
                          const ductstream::v1::ResumeFlowRequest* request,
                          ductstream::v1::Flow* response) override;
  grpc::Status GetSnapshotProgress(grpc::ServerContext* context,
                                   const ductstream::v1::GetSnapshotProgressRequest* request,
                                   ductstream::v1::SnapshotProgress* response) override;
  grpc::Status GetFlow(grpc::ServerContext* context, const ductstream::v1::GetFlowRequest* request,
                       ductstream::v1::Flow* response) override;
  grpc::Status ListFlows(grpc::ServerContext* context,
                         const ductstream::v1::ListFlowsRequest* request,
                         ductstream::v1::ListFlowsResponse* response) override;
  grpc::Status DeleteFlow(grpc::ServerContext* context,
                          const ductstream::v1::DeleteFlowRequest* request,
                          ductstream::v1::DeleteFlowResponse* response) override;

 private:
  grpc::Status Apply(grpc::ServerContext* context, const std::string& flow_id, control::FlowOp op,
                     ductstream::v1::Flow* response);

  control::ControlStore* const store_;
  const flow::ValidationOptions validation_;
  const std::string token_;
  const std::function<void()> changed_;
};

class CheckpointServiceImpl final : public ductstream::v1::CheckpointService::Service {
 public:
  CheckpointServiceImpl(store::CheckpointStore* store, std::string token)
      : store_(store), token_(std::move(token)) {}

  grpc::Status GetCheckpoint(grpc::ServerContext* context,
                             const ductstream::v1::GetCheckpointRequest* request,
                             ductstream::v1::FlowCheckpoint* response) override;
  grpc::Status PutCheckpoint(grpc::ServerContext* context,
                             const ductstream::v1::PutCheckpointRequest* request,
                             ductstream::v1::FlowCheckpoint* response) override;
  grpc::Status ListCheckpoints(grpc::ServerContext* context,
                               const ductstream::v1::ListCheckpointsRequest* request,
                               ductstream::v1::ListCheckpointsResponse* response) override;

 private:
  store::CheckpointStore* const store_;
  const std::string token_;
};

}  // namespace ductstream::api
