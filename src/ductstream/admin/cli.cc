#include "ductstream/admin/cli.h"

#include <grpc/support/log.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "ductstream/admin/flow_convert.h"
#include "ductstream/admin/output.h"
#include "ductstream/base/flags.h"
#include "ductstream/base/logging.h"
#include "ductstream/base/lsn.h"
#include "ductstream/base/redact.h"
#include "ductstream/base/status.h"
#include "ductstream/flow/flow_config.h"
#include "ductstream/postgres/preflight.h"
#include "ductstream/v1/checkpoint.grpc.pb.h"
#include "ductstream/v1/ddl.grpc.pb.h"
#include "ductstream/v1/flow.grpc.pb.h"
#include "ductstream/v1/stream.grpc.pb.h"

namespace ductstream::admin {
namespace {

constexpr const char* kCommandSummary = R"(Commands:
  flow create -file FILE [-start]     create a flow from flow JSON (examples/flows/*.json or the
                                      proto JSON form; "-" reads stdin)
  flow get|start|pause|resume|stop|delete -id ID
  flow list
  checkpoint get -flow-id ID
  checkpoint list
  checkpoint put -flow-id ID -lsn X/Y
  ddl list [-status pending|approved|rejected|applied|all]
  stream pull -stream S -group G [-max N] [-visibility SECONDS] [-consumer ID]
  stream ack -stream S -group G -ids 1,2,3
  stream replay -stream S -group G [-from-lsn X/Y] [-since RFC3339]
  snapshot status -flow-id ID [-backfill]
                                      per-table progress of the initial copy (or last backfill)
  source check -dsn DSN               check a source database directly (no API server)

Flags may be written -flag value, -flag=value or --flag=value, before or after the command.)";

// gRPC and absl share the canonical codes. A server that sends no message (UNIMPLEMENTED from a
// service stub) still gets a line that says what failed.
absl::Status FromGrpc(const grpc::Status& status, absl::string_view rpc,
                      absl::string_view endpoint) {
  if (status.ok()) return absl::OkStatus();
  const auto code = static_cast<absl::StatusCode>(status.error_code());
  if (!status.error_message().empty()) return absl::Status(code, status.error_message());
  if (code == absl::StatusCode::kUnimplemented) {
    return absl::Status(code, absl::StrCat("ductstream.v1.", rpc,
                                           " is not implemented by the server at ", endpoint));
  }
  return absl::Status(code, absl::StrCat("ductstream.v1.", rpc, " failed without a message"));
}

absl::StatusOr<std::string> ReadInput(const std::string& path) {
  std::stringstream buffer;
  if (path == "-") {
    buffer << std::cin.rdbuf();
    return buffer.str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  buffer << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return buffer.str();
}

/// Global flags of one invocation.
struct GlobalFlags {
  ConnectionOptions connection;
  std::string timeout = "10s";
  bool json = false;
  bool pretty = false;
};

/// One command's access to the server and to stdout. Lifecycle: one per RunAdmin call; the
/// channel is made on first use, so commands that need no server (source check, usage) never
/// touch the network. Thread-compatible: used by the one thread running the command.
class Session {
 public:
  Session(const GlobalFlags& flags, const ChannelFactory& factory, std::ostream& out)
      : flags_(flags), factory_(factory), out_(out) {}

  bool json() const { return flags_.json || flags_.pretty; }
  std::ostream& out() { return out_; }

  /// Runs one unary call (`rpc` names it in errors) with the deadline and the bearer token.
  template <typename Fn>
  absl::Status Call(absl::string_view rpc, Fn&& fn) {
    DS_RETURN_IF_ERROR(Connect());
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         absl::ToChronoMilliseconds(flags_.connection.timeout));
    if (!flags_.connection.token.empty()) {
      context.AddMetadata("authorization", absl::StrCat("Bearer ", flags_.connection.token));
    }
    return FromGrpc(fn(&context), rpc, flags_.connection.endpoint);
  }

  v1::FlowService::Stub& flows() { return *flows_; }
  v1::CheckpointService::Stub& checkpoints() { return *checkpoints_; }
  v1::DDLService::Stub& ddl() { return *ddl_; }
  v1::StreamService::Stub& streams() { return *streams_; }

  /// -json: the message's proto JSON; otherwise `text`.
  absl::Status Print(const google::protobuf::Message& message, const std::string& text) {
    if (!json()) {
      out_ << text;
      return absl::OkStatus();
    }
    DS_ASSIGN_OR_RETURN(std::string j, ProtoToJson(message, flags_.pretty));
    out_ << j << "\n";
    return absl::OkStatus();
  }

 private:
  absl::Status Connect() {
    if (channel_ != nullptr) return absl::OkStatus();
    DS_ASSIGN_OR_RETURN(channel_, factory_(flags_.connection));
    flows_ = v1::FlowService::NewStub(channel_);
    checkpoints_ = v1::CheckpointService::NewStub(channel_);
    ddl_ = v1::DDLService::NewStub(channel_);
    streams_ = v1::StreamService::NewStub(channel_);
    return absl::OkStatus();
  }

  const GlobalFlags& flags_;
  const ChannelFactory& factory_;
  std::ostream& out_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::FlowService::Stub> flows_;
  std::unique_ptr<v1::CheckpointService::Stub> checkpoints_;
  std::unique_ptr<v1::DDLService::Stub> ddl_;
  std::unique_ptr<v1::StreamService::Stub> streams_;
};

// ---------------------------------------------------------------------------------------------
// flow

absl::Status FlowCreate(Session& s, const std::string& file, bool start) {
  DS_ASSIGN_OR_RETURN(std::string text, ReadInput(file));
  auto request = CreateRequestFromJson(text, start);
  if (!request.ok()) return base::Annotate(request.status(), file);
  v1::Flow flow;
  DS_RETURN_IF_ERROR(s.Call("FlowService/CreateFlow", [&](grpc::ClientContext* c) {
    return s.flows().CreateFlow(c, *request, &flow);
  }));
  return s.Print(flow, CreatedLine(flow));
}

absl::Status FlowGet(Session& s, const std::string& id) {
  v1::GetFlowRequest request;
  request.set_flow_id(id);
  v1::Flow flow;
  DS_RETURN_IF_ERROR(s.Call("FlowService/GetFlow", [&](grpc::ClientContext* c) {
    return s.flows().GetFlow(c, request, &flow);
  }));
  return s.Print(flow, FlowDetails(flow));
}

absl::Status FlowList(Session& s) {
  // Every page, so that `list` means all flows; the JSON is one response with no token.
  v1::ListFlowsResponse all;
  v1::ListFlowsRequest request;
  for (;;) {
    v1::ListFlowsResponse page;
    DS_RETURN_IF_ERROR(s.Call("FlowService/ListFlows", [&](grpc::ClientContext* c) {
      return s.flows().ListFlows(c, request, &page);
    }));
    for (v1::Flow& f : *page.mutable_flows()) *all.add_flows() = std::move(f);
    if (page.next_page_token().empty()) break;
    if (page.next_page_token() == request.page_token()) {
      return absl::InternalError("ListFlows returned the same page token twice");
    }
    request.set_page_token(page.next_page_token());
  }
  return s.Print(all, FlowTable(all.flows()));
}

enum class Transition { kStart, kPause, kResume, kStop };

absl::Status FlowTransition(Session& s, Transition op, const std::string& id) {
  v1::Flow flow;
  static constexpr const char* kRpc[] = {"FlowService/StartFlow", "FlowService/PauseFlow",
                                         "FlowService/ResumeFlow", "FlowService/StopFlow"};
  DS_RETURN_IF_ERROR(s.Call(kRpc[static_cast<int>(op)], [&](grpc::ClientContext* c) {
    switch (op) {
      case Transition::kStart: {
        v1::StartFlowRequest r;
        r.set_flow_id(id);
        return s.flows().StartFlow(c, r, &flow);
      }
      case Transition::kPause: {
        v1::PauseFlowRequest r;
        r.set_flow_id(id);
        return s.flows().PauseFlow(c, r, &flow);
      }
      case Transition::kResume: {
        v1::ResumeFlowRequest r;
        r.set_flow_id(id);
        return s.flows().ResumeFlow(c, r, &flow);
      }
      case Transition::kStop: {
        v1::StopFlowRequest r;
        r.set_flow_id(id);
        return s.flows().StopFlow(c, r, &flow);
      }
    }
    return grpc::Status(grpc::StatusCode::INTERNAL, "unknown transition");
  }));
  return s.Print(flow, TransitionLine(flow));
}

absl::Status FlowDelete(Session& s, const std::string& id) {
  v1::DeleteFlowRequest request;
  request.set_flow_id(id);
  v1::DeleteFlowResponse response;
  DS_RETURN_IF_ERROR(s.Call("FlowService/DeleteFlow", [&](grpc::ClientContext* c) {
    return s.flows().DeleteFlow(c, request, &response);
  }));
  return s.Print(response, response.deleted() ? absl::StrCat("Deleted flow ", id, "\n")
                                              : absl::StrCat("Flow ", id, " was not deleted\n"));
}

// ---------------------------------------------------------------------------------------------
// checkpoint

absl::Status CheckpointGet(Session& s, const std::string& flow_id) {
  v1::GetCheckpointRequest request;
  request.set_flow_id(flow_id);
  v1::FlowCheckpoint checkpoint;
  DS_RETURN_IF_ERROR(s.Call("CheckpointService/GetCheckpoint", [&](grpc::ClientContext* c) {
    return s.checkpoints().GetCheckpoint(c, request, &checkpoint);
  }));
  return s.Print(checkpoint, CheckpointDetails(checkpoint));
}

absl::Status SnapshotStatus(Session& s, const std::string& flow_id, bool backfill) {
  v1::GetSnapshotProgressRequest request;
  request.set_flow_id(flow_id);
  request.set_backfill(backfill);
  v1::SnapshotProgress progress;
  DS_RETURN_IF_ERROR(s.Call("FlowService/GetSnapshotProgress", [&](grpc::ClientContext* c) {
    return s.flows().GetSnapshotProgress(c, request, &progress);
  }));
  std::string text =
      absl::StrCat("Snapshot of flow ", progress.flow_id(), " (", progress.kind(),
                   "): ", progress.status(), ", rows labelled ", progress.lsn(), "\n");
  absl::StrAppend(&text, absl::StrFormat("%-40s %7s %14s %14s %10s %10s\n", "TABLE", "DONE", "ROWS",
                                         "~TOTAL", "MB", "CHUNKS"));
  for (const v1::TableSnapshotProgress& t : progress.tables()) {
    const double pct = t.bytes_total() > 0 ? 100.0 * t.bytes_done() / t.bytes_total() : 100.0;
    absl::StrAppend(&text,
                    absl::StrFormat("%-40s %6.0f%% %14d %14d %10.1f %5d/%-4d\n", t.table(),
                                    std::min(pct, 100.0), t.rows_done(), t.rows_total(),
                                    t.bytes_done() / 1e6, t.chunks_done(), t.chunks_total()));
  }
  return s.Print(progress, text);
}

absl::Status CheckpointList(Session& s) {
  v1::ListCheckpointsRequest request;
  v1::ListCheckpointsResponse response;
  DS_RETURN_IF_ERROR(s.Call("CheckpointService/ListCheckpoints", [&](grpc::ClientContext* c) {
    return s.checkpoints().ListCheckpoints(c, request, &response);
  }));
  return s.Print(response, CheckpointTable(response.checkpoints()));
}

absl::Status CheckpointPut(Session& s, const std::string& flow_id, const std::string& lsn_text) {
  auto lsn = Lsn::Parse(lsn_text);
  if (!lsn.ok()) return base::Annotate(lsn.status(), "-lsn");
  v1::PutCheckpointRequest request;
  request.set_flow_id(flow_id);
  request.mutable_checkpoint()->set_lsn(lsn->ToString());
  v1::FlowCheckpoint checkpoint;
  DS_RETURN_IF_ERROR(s.Call("CheckpointService/PutCheckpoint", [&](grpc::ClientContext* c) {
    return s.checkpoints().PutCheckpoint(c, request, &checkpoint);
  }));
  return s.Print(checkpoint, absl::StrCat("Checkpoint of flow ", checkpoint.flow_id(), " set to ",
                                          checkpoint.checkpoint().lsn(), "\n"));
}

// ---------------------------------------------------------------------------------------------
// ddl, stream

absl::Status DdlList(Session& s, const std::string& status, bool pretty) {
  Repeated<v1::DDLEvent> events;
  if (status == "pending") {
    v1::ListPendingDDLRequest request;
    v1::ListPendingDDLResponse response;
    DS_RETURN_IF_ERROR(s.Call("DDLService/ListPendingDDL", [&](grpc::ClientContext* c) {
      return s.ddl().ListPendingDDL(c, request, &response);
    }));
    events = std::move(*response.mutable_events());
  } else {
    v1::ListDDLRequest request;
    request.set_status(status);
    v1::ListDDLResponse response;
    DS_RETURN_IF_ERROR(s.Call("DDLService/ListDDL", [&](grpc::ClientContext* c) {
      return s.ddl().ListDDL(c, request, &response);
    }));
    events = std::move(*response.mutable_events());
  }
  s.out() << (s.json() ? DdlJson(status, events, pretty) + "\n" : DdlTable(events));
  return absl::OkStatus();
}

struct PullFlags {
  std::string stream;
  std::string group;
  int max = 10;
  int visibility = 30;
  std::string consumer;
};

absl::Status StreamPull(Session& s, const PullFlags& f, bool pretty) {
  v1::StreamPullRequest request;
  request.set_stream(f.stream);
  request.set_consumer_group(f.group);
  request.set_max_messages(f.max);
  request.set_visibility_timeout_seconds(f.visibility);
  request.set_consumer_id(f.consumer);
  v1::StreamPullResponse response;
  DS_RETURN_IF_ERROR(s.Call("StreamService/Pull", [&](grpc::ClientContext* c) {
    return s.streams().Pull(c, request, &response);
  }));
  s.out() << (s.json() ? PullJson(f.stream, f.group, response.messages(), pretty) + "\n"
                       : PullText(response.messages()));
  return absl::OkStatus();
}

absl::Status StreamAck(Session& s, const std::string& stream, const std::string& group,
                       const std::string& ids_text) {
  v1::StreamAckRequest request;
  request.set_stream(stream);
  request.set_consumer_group(group);
  for (absl::string_view part : absl::StrSplit(ids_text, ',', absl::SkipWhitespace())) {
    int64_t id = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &id) || id <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "-ids: \"", part, "\" is not a message id (a comma-separated list, e.g. 1,2,3)"));
    }
    request.add_ids(id);
  }
  if (request.ids().empty()) return absl::InvalidArgumentError("-ids: no message ids given");
  v1::StreamAckResponse response;
  DS_RETURN_IF_ERROR(s.Call("StreamService/Ack", [&](grpc::ClientContext* c) {
    return s.streams().Ack(c, request, &response);
  }));
  return s.Print(response, absl::StrCat("Acked ", response.acked(), " messages\n"));
}

absl::Status StreamReplay(Session& s, const std::string& stream, const std::string& group,
                          const std::string& from_lsn, const std::string& since) {
  v1::StreamReplayRequest request;
  request.set_stream(stream);
  request.set_consumer_group(group);
  if (!from_lsn.empty()) {
    if (!Lsn::Parse(from_lsn).ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("-from-lsn: \"", from_lsn, "\" is not an LSN (X/Y, e.g. 0/16B6C50)"));
    }
    request.set_from_lsn(from_lsn);
  }
  if (!since.empty()) {
    absl::Time t;
    std::string problem;
    if (!absl::ParseTime(absl::RFC3339_full, since, &t, &problem)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "-since: \"", since, "\" is not an RFC 3339 time (e.g. 2025-01-01T00:00:00Z)"));
    }
    const int64_t micros = absl::ToUnixMicros(t);
    request.mutable_since()->set_seconds(micros / 1000000 - (micros % 1000000 < 0 ? 1 : 0));
    request.mutable_since()->set_nanos(
        static_cast<int32_t>(((micros % 1000000) + 1000000) % 1000000 * 1000));
  }
  v1::StreamReplayResponse response;
  DS_RETURN_IF_ERROR(s.Call("StreamService/Replay", [&](grpc::ClientContext* c) {
    return s.streams().Replay(c, request, &response);
  }));
  return s.Print(response, absl::StrCat("Reset ", response.reset(), " deliveries for stream ",
                                        stream, " group ", group, "\n"));
}

// ---------------------------------------------------------------------------------------------
// source (no server)

int SourceCheck(const std::string& dsn, bool json, bool pretty, std::ostream& out,
                std::ostream& err) {
  auto report = postgres::CheckSource(dsn);
  if (!report.ok()) {
    err << ErrorLine(report.status());
    return 1;
  }
  if (json || pretty) {
    nlohmann::json j = {
        {"dsn", base::RedactDsn(dsn)},
        {"version", report->version},
        {"server_version_num", report->server_version_num},
        {"wal_level", report->wal_level},
        {"max_replication_slots", report->max_replication_slots},
        {"used_replication_slots", report->used_replication_slots},
        {"max_wal_senders", report->max_wal_senders},
        {"can_replicate", report->can_replicate},
        {"system_id", report->identity.system_id},
        {"timeline", report->identity.timeline},
        {"xlogpos", report->identity.xlogpos.ToString()},
        {"ready", report->problems.empty()},
        {"problems", report->problems},
    };
    out << j.dump(pretty ? 2 : -1) << "\n";
  } else {
    out << "Source:            " << base::RedactDsn(dsn) << "\n"
        << "Version:           " << report->version << "\n"
        << "wal_level:         " << report->wal_level << "\n"
        << "Replication slots: " << report->used_replication_slots << " used of "
        << report->max_replication_slots << "\n"
        << "WAL senders:       " << report->max_wal_senders << "\n";
    if (report->problems.empty()) {
      out << "System identifier: " << report->identity.system_id << " (timeline "
          << report->identity.timeline << ", WAL at " << report->identity.xlogpos.ToString()
          << ")\n"
          << "Ready for logical replication.\n";
    } else {
      out << "NOT ready for logical replication:\n";
      for (const auto& p : report->problems) out << "- " << p << "\n";
    }
  }
  return report->problems.empty() ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------

// The innermost command named on the command line.
CLI::App* Deepest(CLI::App* app) {
  for (;;) {
    std::vector<CLI::App*> subs = app->get_subcommands();
    if (subs.empty()) return app;
    app = subs.front();
  }
}

std::string CommandPath(const CLI::App* app) {
  std::string path = app->get_name();
  for (const CLI::App* p = app->get_parent(); p != nullptr; p = p->get_parent()) {
    path = absl::StrCat(p->get_name(), " ", path);
  }
  return path;
}

// gRPC core writes its own diagnostics (e.g. every failed TLS handshake) to stderr, which would
// break the one-line error contract; they go to the debug log instead
// (DUCTSTREAM_LOG_LEVEL=debug shows them).
void RouteGrpcLogging() {
  gpr_set_log_function([](gpr_log_func_args* args) {
    static const auto logger = base::GetLogger("grpc");
    logger->debug("{}:{}: {}", args->file, args->line, args->message);
  });
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ConnectionOptions& options) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.insecure) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    if (!options.ca_file.empty()) {
      auto pem = ReadInput(options.ca_file);
      if (!pem.ok()) return base::Annotate(pem.status(), "-ca-file");
      ssl.pem_root_certs = std::move(*pem);
    }
    credentials = grpc::SslCredentials(ssl);
  }
  return grpc::CreateChannel(options.endpoint, credentials);
}

int RunAdmin(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
             const ChannelFactory& channel_factory) {
  RouteGrpcLogging();
  GlobalFlags flags;
  if (const char* token = std::getenv("DUCTSTREAM_API_TOKEN"); token != nullptr) {
    flags.connection.token = token;
  }

  CLI::App app{
      "DuctStream admin CLI: operate flows, checkpoints, DDL and streams over the gRPC API",
      "ductstream-admin"};
  app.set_version_flag("--version", std::string("ductstream-admin ") + DS_VERSION);
  app.footer(kCommandSummary);
  // Global flags are accepted after the command too (Go's flag sets per command had them all).
  app.fallthrough();
  app.add_option("--endpoint", flags.connection.endpoint, "API server host:port")
      ->capture_default_str();
  app.add_flag("--insecure", flags.connection.insecure,
               "plaintext gRPC (default true); -insecure=false uses TLS with the system roots or "
               "-ca-file");
  app.add_option("--ca-file", flags.connection.ca_file, "PEM roots to trust for TLS");
  app.add_option("--token", flags.connection.token,
                 "bearer token sent as `authorization: Bearer` (default $DUCTSTREAM_API_TOKEN)");
  app.add_option("--timeout", flags.timeout, "deadline of each call (Go duration)")
      ->capture_default_str();
  app.add_flag("--json", flags.json, "JSON output");
  app.add_flag("--pretty", flags.pretty, "indented JSON output (implies -json)");

  // Leaf command → what it runs (returns the exit status).
  std::map<const CLI::App*, std::function<int()>> handlers;
  Session session(flags, channel_factory, out);
  auto finish = [&err](const absl::Status& status) {
    if (status.ok()) return 0;
    err << ErrorLine(status);
    return 1;
  };

  // flow
  auto* flow = app.add_subcommand("flow", "Create, inspect and move flows through their lifecycle");
  std::string file;
  bool start = false;
  auto* create = flow->add_subcommand("create", "Create a flow from a flow JSON file");
  create->add_option("--file", file, "flow JSON (example or proto JSON form); - for stdin")
      ->required();
  create->add_flag("--start", start, "start the flow once created");
  handlers[create] = [&] { return finish(FlowCreate(session, file, start)); };

  std::string id;
  auto* get = flow->add_subcommand("get", "Show one flow");
  get->add_option("--id", id, "flow id")->required();
  handlers[get] = [&] { return finish(FlowGet(session, id)); };

  auto* list = flow->add_subcommand("list", "List all flows");
  handlers[list] = [&] { return finish(FlowList(session)); };

  const std::pair<const char*, Transition> transitions[] = {{"start", Transition::kStart},
                                                            {"pause", Transition::kPause},
                                                            {"resume", Transition::kResume},
                                                            {"stop", Transition::kStop}};
  const std::map<std::string, std::string> transition_help = {
      {"start", "Start a created, stopped or failed flow"},
      {"pause", "Pause a running flow (resume continues from its checkpoint)"},
      {"resume", "Resume a paused flow"},
      {"stop", "Stop a flow: its worker drains and exits"}};
  for (const auto& [name, op] : transitions) {
    auto* cmd = flow->add_subcommand(name, transition_help.at(name));
    cmd->add_option("--id", id, "flow id")->required();
    handlers[cmd] = [&, op = op] { return finish(FlowTransition(session, op, id)); };
  }

  auto* del =
      flow->add_subcommand("delete", "Delete a flow (slot, publication and checkpoint stay)");
  del->add_option("--id", id, "flow id")->required();
  handlers[del] = [&] { return finish(FlowDelete(session, id)); };

  // checkpoint
  auto* checkpoint = app.add_subcommand("checkpoint", "Inspect or override flow checkpoints");
  std::string flow_id;
  std::string lsn;
  auto* cp_get = checkpoint->add_subcommand("get", "Show a flow's checkpoint");
  cp_get->add_option("--flow-id", flow_id, "flow id")->required();
  handlers[cp_get] = [&] { return finish(CheckpointGet(session, flow_id)); };
  auto* cp_list = checkpoint->add_subcommand("list", "List checkpoints, most recent first");
  handlers[cp_list] = [&] { return finish(CheckpointList(session)); };
  auto* cp_put = checkpoint->add_subcommand(
      "put", "Set a flow's checkpoint (pause the flow first: a running worker writes its own)");
  cp_put->add_option("--flow-id", flow_id, "flow id")->required();
  cp_put->add_option("--lsn", lsn, "position X/Y")->required();
  handlers[cp_put] = [&] { return finish(CheckpointPut(session, flow_id, lsn)); };

  // ddl
  auto* ddl = app.add_subcommand("ddl", "Captured schema changes and their approval");
  std::string ddl_status = "pending";
  auto* ddl_list = ddl->add_subcommand("list", "List DDL events");
  ddl_list->add_option("--status", ddl_status, "pending, approved, rejected, applied or all")
      ->capture_default_str();
  handlers[ddl_list] = [&] { return finish(DdlList(session, ddl_status, flags.pretty)); };

  // stream
  auto* stream = app.add_subcommand("stream", "Consume the Postgres-backed stream (pgstream)");
  PullFlags pull;
  auto* pull_cmd = stream->add_subcommand("pull", "Claim messages for a consumer group");
  pull_cmd->add_option("--stream", pull.stream, "stream name")->required();
  pull_cmd->add_option("--group", pull.group, "consumer group")->required();
  pull_cmd->add_option("--max", pull.max, "most messages to claim")->capture_default_str();
  pull_cmd->add_option("--visibility", pull.visibility, "visibility timeout in seconds")
      ->capture_default_str();
  pull_cmd->add_option("--consumer", pull.consumer, "consumer id");
  handlers[pull_cmd] = [&] { return finish(StreamPull(session, pull, flags.pretty)); };
  std::string ack_ids;
  auto* ack_cmd = stream->add_subcommand("ack", "Acknowledge claimed messages");
  ack_cmd->add_option("--stream", pull.stream, "stream name")->required();
  ack_cmd->add_option("--group", pull.group, "consumer group")->required();
  ack_cmd->add_option("--ids", ack_ids, "message ids, comma-separated (1,2,3)")->required();
  handlers[ack_cmd] = [&] { return finish(StreamAck(session, pull.stream, pull.group, ack_ids)); };
  std::string from_lsn;
  std::string since;
  auto* replay_cmd = stream->add_subcommand(
      "replay", "Make a group's messages available again (all, or from an LSN or a time)");
  replay_cmd->add_option("--stream", pull.stream, "stream name")->required();
  replay_cmd->add_option("--group", pull.group, "consumer group")->required();
  replay_cmd->add_option("--from-lsn", from_lsn, "replay events at or after this LSN (X/Y)");
  replay_cmd->add_option("--since", since, "replay events created at or after this RFC 3339 time");
  handlers[replay_cmd] = [&] {
    return finish(StreamReplay(session, pull.stream, pull.group, from_lsn, since));
  };

  // snapshot
  auto* snapshot = app.add_subcommand("snapshot", "Progress of a flow's snapshot or backfill");
  bool backfill = false;
  auto* snap_status = snapshot->add_subcommand("status", "Per-table progress of the snapshot");
  snap_status->add_option("--flow-id", flow_id, "flow id")->required();
  snap_status->add_flag("--backfill", backfill, "the last backfill instead of the initial copy");
  handlers[snap_status] = [&] { return finish(SnapshotStatus(session, flow_id, backfill)); };

  // source
  auto* source = app.add_subcommand("source", "Inspect a source PostgreSQL database directly");
  std::string dsn;
  auto* check =
      source->add_subcommand("check", "Check that a database is ready for logical replication");
  check->add_option("--dsn", dsn, "libpq conninfo or URI of the source database")->required();
  handlers[check] = [&] { return SourceCheck(dsn, flags.json, flags.pretty, out, err); };

  std::vector<const char*> cargs;
  for (const auto& a : args) cargs.push_back(a.c_str());
  const std::vector<std::string> normalized =
      base::NormalizeGoStyleFlags(static_cast<int>(cargs.size()), cargs.data());
  cargs.clear();
  for (const auto& a : normalized) cargs.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(cargs.size()), cargs.data());
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e, out, err);
  } catch (const CLI::ExtrasError& e) {
    // An unknown command or a stray argument: the usage of the command that was reached.
    CLI::App* at = Deepest(&app);
    err << "error: " << e.what() << "\n" << at->help();
    return 1;
  } catch (const CLI::ParseError& e) {
    CLI::App* at = Deepest(&app);
    err << "error: " << CommandPath(at) << ": " << e.what() << " (see " << CommandPath(at)
        << " --help)\n";
    return 1;
  }

  CLI::App* at = Deepest(&app);
  auto handler = handlers.find(at);
  if (handler == handlers.end()) {
    err << at->help();
    return 1;
  }
  std::optional<absl::Duration> timeout = flow::ParseDurationOption(flags.timeout);
  if (!timeout.has_value() || *timeout <= absl::ZeroDuration()) {
    err << ErrorLine(absl::InvalidArgumentError(
        absl::StrCat("-timeout: \"", flags.timeout, "\" is not a positive duration")));
    return 1;
  }
  flags.connection.timeout = *timeout;
  return handler->second();
}

}  // namespace ductstream::admin
