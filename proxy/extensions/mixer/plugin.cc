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

// A filter that does nothing, for the benchmark that tells the cost of being a wasm filter
// (the VM's callbacks) from the cost of the Mixer filter's work (tools/bench/filter_cpu.py).
class NoopStream : public proxy_wasm::StreamContext {
 public:
  using StreamContext::StreamContext;
};

class NoopRoot : public proxy_wasm::RootContext {
 public:
  using RootContext::RootContext;
  std::unique_ptr<proxy_wasm::StreamContext> NewStream(uint32_t id) override {
    return std::make_unique<NoopStream>(id, this);
  }
};

std::unique_ptr<proxy_wasm::RootContext> NewNoopRoot(uint32_t id, std::string_view root_id,
                                                     proxy_wasm::Host* host) {
  return std::make_unique<NoopRoot>(id, root_id, host);
}

const proxy_wasm::RootRegistration kHttp(kHttpRootId, NewHttpRoot);
const proxy_wasm::RootRegistration kTcp(kTcpRootId, NewTcpRoot);
const proxy_wasm::RootRegistration kNoop("noop", NewNoopRoot);

}  // namespace
}  // namespace mixer_filter
