// protoc + grpc_cpp_plugin generated a service; a client calls a server over loopback. The server
// also carries the standard health service and reflection, as the real API server will.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <gtest/gtest.h>

#include "smoke/v1/echo.grpc.pb.h"

namespace ductstream {
namespace {

using smoke::v1::EchoRequest;
using smoke::v1::EchoResponse;
using smoke::v1::EchoService;

class EchoImpl final : public EchoService::Service {
  grpc::Status Echo(grpc::ServerContext* ctx, const EchoRequest* req, EchoResponse* resp) override {
    auto it = ctx->client_metadata().find("authorization");
    if (it == ctx->client_metadata().end() || it->second != "Bearer t0ken") {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing bearer token");
    }
    int64_t sum = 0;
    for (int64_t n : req->numbers()) sum += n;
    resp->set_text("echo: " + req->text());
    resp->set_sum(sum);
    return grpc::Status::OK;
  }
};

class GrpcSmokeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                   grpc::InsecureChannelCredentials());
  }
  void TearDown() override { server_->Shutdown(); }

  EchoImpl service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(GrpcSmokeTest, UnaryCallOverLoopback) {
  auto stub = EchoService::NewStub(channel_);
  EchoRequest req;
  req.set_text("hello");
  req.add_numbers(40);
  req.add_numbers(2);
  EchoResponse resp;
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer t0ken");
  grpc::Status status = stub->Echo(&ctx, req, &resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(resp.text(), "echo: hello");
  EXPECT_EQ(resp.sum(), 42);

  grpc::ClientContext no_auth;
  status = stub->Echo(&no_auth, req, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(GrpcSmokeTest, StandardHealthServiceAnswersServing) {
  // grpc.health.v1.Health/Check called generically: an empty HealthCheckRequest (service "")
  // must answer HealthCheckResponse{status: SERVING(1)}, i.e. the bytes 0x08 0x01.
  grpc::GenericStub generic(channel_);
  grpc::Slice empty_message("");
  grpc::ByteBuffer request(&empty_message, 1);
  grpc::ByteBuffer response;
  grpc::ClientContext ctx;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status result;
  generic.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                    [&](grpc::Status s) {
                      std::lock_guard<std::mutex> lock(mu);
                      result = std::move(s);
                      done = true;
                      cv.notify_all();
                    });
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return done; }));
  ASSERT_TRUE(result.ok()) << result.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));
}

}  // namespace
}  // namespace ductstream
