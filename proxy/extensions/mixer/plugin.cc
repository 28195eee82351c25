// The module's filters, by the root_id their Envoy filter config names: "mixer" for the
// HTTP filter (envoy.filters.http.wasm), "mixer_tcp" for the TCP one
// (envoy.filters.network.wasm). Only in the wasm32 build.
#include <memory>

#include "mixerclient/time_source.h"
#include "proxy/extensions/mixer/http_filter.h"
#include "proxy/extensions/mixer/tcp_filter.h"
#include "proxy/wasm/context.h"

namespace mixer_filter {
namespace {

// WASI's monotonic clock, which Envoy provides to the sandbox.
const mixerclient::TimeSource* Clock() {
  static const mixerclient::SteadyTimeSource* clock = new mixerclient::SteadyTimeSource();
  return clock;
}

std::unique_ptr<proxy_wasm::RootContext> NewHttpRoot(uint32_t id, std::string_view root_id,
                                                     proxy_wasm::Host* host) {
  return std::make_unique<HttpRootContext>(id, root_id, host, Clock());
}

std::unique_ptr<proxy_wasm::RootContext> NewTcpRoot(uint32_t id, std::string_view root_id,
                                                    proxy_wasm::Host* host) {
  return std::make_unique<TcpRootContext>(id, root_id, host, Clock());
}

const proxy_wasm::RootRegistration kHttp(kHttpRootId, NewHttpRoot);
const proxy_wasm::RootRegistration kTcp(kTcpRootId, NewTcpRoot);

}  // namespace
}  // namespace mixer_filter
