// GrpcTransport: mixerclient's Transport on the proxy's gRPC client (proxy_grpc_call), so
// Check and Report reach mixs through an Envoy cluster (HTTP/2) that Pilot configures.
//
// Answers arrive on the root context with the call's token; the transport keeps each
// call's callback until then. Calls that cannot start (no such cluster) fail at once with
// UNAVAILABLE, so the fail policy decides, as for an unreachable Mixer.
#ifndef PROXY_EXTENSIONS_MIXER_GRPC_TRANSPORT_H_
#define PROXY_EXTENSIONS_MIXER_GRPC_TRANSPORT_H_

#include <cstdint>
#include <string>
#include <unordered_map>

#include "mixerclient/transport.h"
#include "proxy/wasm/host.h"

namespace mixer_filter {

inline constexpr char kMixerService[] = "istio.mixer.v1.Mixer";
// How long a call to Mixer may take (istio/proxy's gRPC transport used 5 s).
inline constexpr uint32_t kDefaultCallTimeoutMs = 5000;

// A serialized envoy.config.core.v3.GrpcService naming an Envoy cluster.
std::string EnvoyGrpcService(std::string_view cluster);

class GrpcTransport final : public mixerclient::Transport {
 public:
  GrpcTransport(proxy_wasm::Host* host, std::string check_cluster, std::string report_cluster,
                uint32_t timeout_ms = kDefaultCallTimeoutMs);
  ~GrpcTransport() override;

  void Check(std::string request, mixerclient::TransportDone done) override;
  void Report(std::string request, mixerclient::TransportDone done) override;

  // From the root context's proxy_on_grpc_receive / proxy_on_grpc_close.
  void OnReceive(uint32_t token, size_t message_size);
  void OnClose(uint32_t token, uint32_t status_code);

  size_t pending() const { return pending_.size(); }

 private:
  void Call(const std::string& service, std::string_view method, const std::string& request,
            mixerclient::TransportDone done);

  proxy_wasm::Host* host_;
  std::string check_service_;
  std::string report_service_;
  uint32_t timeout_ms_;
  std::unordered_map<uint32_t, mixerclient::TransportDone> pending_;
};

}  // namespace mixer_filter

#endif  // PROXY_EXTENSIONS_MIXER_GRPC_TRANSPORT_H_
