// The HTTP Mixer filter (Istio's `mixer` HTTP filter, on the proxy-wasm ABI).
//
// Per request: collect the attributes when the request headers arrive (forwarded ones from
// the client sidecar's x-istio-attributes first, then the static ones of the filter config
// and of the destination service, then those of the request itself); put this proxy's
// forward attributes on the request for the next sidecar; Check, pausing the request until
// the answer (none when the check cache answers at once); on a denial answer with Envoy's
// local reply (403 PERMISSION_DENIED, 429 RESOURCE_EXHAUSTED, 503 UNAVAILABLE, ...). When the
// exchange is over (the access-log phase) add the response's attributes and Report into the
// client's batch, which proxy_on_tick flushes.
#ifndef PROXY_EXTENSIONS_MIXER_HTTP_FILTER_H_
#define PROXY_EXTENSIONS_MIXER_HTTP_FILTER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mixerclient/client.h"
#include "mixerclient/time_source.h"
#include "proxy/extensions/mixer/callback_clock.h"
#include "proxy/extensions/mixer/config.h"
#include "proxy/extensions/mixer/grpc_transport.h"
#include "proxy/extensions/mixer/http_attributes.h"
#include "proxy/extensions/mixer/peer_cache.h"
#include "proxy/extensions/mixer/stats.h"
#include "proxy/wasm/context.h"

namespace mixer_filter {

inline constexpr char kHttpRootId[] = "mixer";
// How often the root's tick flushes a due report batch and exports statistics.
inline constexpr uint32_t kTickPeriodMs = 200;

class HttpRootContext : public proxy_wasm::RootContext {
 public:
  HttpRootContext(uint32_t id, std::string_view root_id, proxy_wasm::Host* host,
                  const mixerclient::TimeSource* time);
  ~HttpRootContext() override;

  bool OnConfigure(size_t configuration_size) override;
  void OnTick() override;
  void OnGrpcReceive(uint32_t token, size_t message_size) override;
  void OnGrpcClose(uint32_t token, uint32_t status_code) override;
  bool OnDone() override;
  std::unique_ptr<proxy_wasm::StreamContext> NewStream(uint32_t id) override;

  // Configures from the JSON text directly (what OnConfigure does with the plugin
  // configuration buffer); false with *error on a bad config, which changes nothing.
  bool Configure(std::string_view json, std::string* error);

  // What a request needs from its root.
  struct Service {
    const ServiceConfig* config = nullptr;  // nullptr: checks and reports are off
    const std::string* forward_header = nullptr;  // x-istio-attributes value, or nullptr
    // The filter's mixer_attributes with the service's over them, merged once.
    const mixerclient::Attributes* static_attributes = nullptr;
  };
  // The service config for an upstream cluster: by the cluster's name, then by its host
  // (outbound|<port>|<subset>|<host>), then the default destination service.
  Service FindService(std::string_view cluster) const;
  // The service config every request gets whatever its cluster (no service configs, or only
  // the default destination's), found once at configure time; empty when it depends on the cluster.
  const std::optional<Service>& fixed_service() const { return fixed_service_; }

  const HttpClientConfig& config() const { return *config_; }
  mixerclient::Client* client() const { return client_.get(); }
  FilterStats& stats() { return stats_; }
  DownstreamCache& downstream() { return downstream_; }
  UpstreamCache& upstream() { return upstream_; }
  // The clock the client and the caches read; streams hold it for a callback's length.
  CallbackClock& clock() { return clock_; }

 private:
  struct Configured;

  CallbackClock clock_;
  std::unique_ptr<HttpClientConfig> config_;
  std::map<std::string, std::string> forward_headers_;  // by service config key
  std::map<std::string, mixerclient::Attributes> static_attributes_;  // by service config key
  std::optional<Service> fixed_service_;
  std::unique_ptr<GrpcTransport> transport_;
  std::unique_ptr<mixerclient::Client> client_;
  FilterStats stats_;
  DownstreamCache downstream_;
  UpstreamCache upstream_;
};

class HttpStreamContext : public proxy_wasm::StreamContext {
 public:
  HttpStreamContext(uint32_t id, HttpRootContext* root) : StreamContext(id, root), root_(root) {}

  proxy_wasm::FilterHeadersStatus OnRequestHeaders(uint32_t headers, bool end_of_stream) override;
  proxy_wasm::FilterDataStatus OnRequestBody(size_t body_size, bool end_of_stream) override;
  proxy_wasm::FilterHeadersStatus OnResponseHeaders(uint32_t headers, bool end_of_stream) override;
  proxy_wasm::FilterDataStatus OnResponseBody(size_t body_size, bool end_of_stream) override;
  void OnLog() override;

  const mixerclient::Attributes& attributes() const { return attributes_; }

 private:
  enum class State { kStart, kChecking, kPassed, kDenied };

  void CollectAttributes(const HttpRootContext::Service& service, bool* check, bool* report);
  // Called once with Check's answer; `synchronous` while OnRequestHeaders still runs.
  void CheckDone(const mixerclient::CheckResult& result, bool synchronous);
  void Deny(const mixerclient::Status& status);

  HttpRootContext* root_;
  State state_ = State::kStart;
  bool report_ = false;
  bool in_headers_ = false;
  mixerclient::Attributes attributes_;
  ExchangeFacts facts_;
  mixerclient::Status check_status_;
  std::vector<mixerclient::HeaderOperation> response_header_operations_;
};

}  // namespace mixer_filter

#endif  // PROXY_EXTENSIONS_MIXER_HTTP_FILTER_H_
