#include "proxy/extensions/mixer/grpc_transport.h"

#include <utility>

#include "mixerclient/wire.h"

namespace mixer_filter {

using mixerclient::Code;
using mixerclient::Status;

std::string EnvoyGrpcService(std::string_view cluster) {
  std::string out;
  mixerclient::WireWriter writer(&out);
  const size_t envoy_grpc = writer.BeginMessage(1);  // GrpcService.envoy_grpc
  writer.BytesField(1, cluster);                     // EnvoyGrpc.cluster_name
  writer.EndMessage(envoy_grpc);
  return out;
}

GrpcTransport::GrpcTransport(proxy_wasm::Host* host, std::string check_cluster,
                             std::string report_cluster, uint32_t timeout_ms)
    : host_(host),
      check_service_(check_cluster.empty() ? std::string() : EnvoyGrpcService(check_cluster)),
      report_service_(report_cluster.empty() ? std::string() : EnvoyGrpcService(report_cluster)),
      timeout_ms_(timeout_ms) {}

GrpcTransport::~GrpcTransport() = default;

void GrpcTransport::Check(std::string request, mixerclient::TransportDone done) {
  Call(check_service_, "Check", request, std::move(done));
}

void GrpcTransport::Report(std::string request, mixerclient::TransportDone done) {
  Call(report_service_, "Report", request, std::move(done));
}

void GrpcTransport::Call(const std::string& service, std::string_view method,
                         const std::string& request, mixerclient::TransportDone done) {
  if (service.empty()) {
    done(Status(Code::kUnavailable, "no Mixer server is configured"), {});
    return;
  }
  uint32_t token = 0;
  const proxy_wasm::WasmResult result =
      host_->GrpcCall(service, kMixerService, method, request, timeout_ms_, &token);
  if (result != proxy_wasm::WasmResult::kOk) {
    done(Status(Code::kUnavailable, "cannot call Mixer (proxy_grpc_call result " +
                                        std::to_string(static_cast<uint32_t>(result)) + ")"),
         {});
    return;
  }
  pending_[token] = std::move(done);
}

void GrpcTransport::OnReceive(uint32_t token, size_t message_size) {
  auto it = pending_.find(token);
  if (it == pending_.end()) return;
  mixerclient::TransportDone done = std::move(it->second);
  pending_.erase(it);
  std::string message;
  if (!host_->GetBuffer(proxy_wasm::BufferType::kGrpcReceiveBuffer, 0, message_size, &message)) {
    done(Status(Code::kInternal, "cannot read Mixer's answer"), {});
    return;
  }
  done(Status::Ok(), message);
}

void GrpcTransport::OnClose(uint32_t token, uint32_t status_code) {
  auto it = pending_.find(token);
  if (it == pending_.end()) return;  // answered already
  mixerclient::TransportDone done = std::move(it->second);
  pending_.erase(it);
  if (status_code == 0) {
    done(Status(Code::kUnknown, "Mixer closed the call without an answer"), {});
    return;
  }
  std::string message;
  // proxy_get_status would give the message; the code is what the fail policy needs.
  done(Status(static_cast<Code>(status_code), "Mixer call failed with gRPC status " +
                                                  std::to_string(status_code)),
       message);
}

}  // namespace mixer_filter
