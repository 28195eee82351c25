// FilterStats: mixerclient's counters exported as Envoy metrics, so /stats and
// /stats/prometheus show what the filter did (Istio's http_mixer_filter.* and
// tcp_mixer_filter.* statistics): checks, cache hits, remote calls, transport errors,
// reports sent, failed and dropped.
//
// Counters add up across the VMs of all worker threads; gauges (cache sizes, batches in
// flight) are each VM's own, which is exact with one worker.
#ifndef PROXY_EXTENSIONS_MIXER_STATS_H_
#define PROXY_EXTENSIONS_MIXER_STATS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mixerclient/client.h"
#include "proxy/wasm/host.h"

namespace mixer_filter {

class FilterStats {
 public:
  // Defines the metrics "<prefix>.<name>" (e.g. http_mixer_filter.inbound.total_check_calls).
  void Define(proxy_wasm::Host* host, std::string_view prefix);
  // Exports what changed since the last call.
  void Update(const mixerclient::ClientStats& stats);
  // Local replies after a denied check, by the filter rather than the client.
  void IncrementDenied();
  bool defined() const { return host_ != nullptr; }

 private:
  struct Metric {
    uint32_t id = 0;
    bool ok = false;
    uint64_t last = 0;
  };
  Metric DefineOne(proxy_wasm::MetricType type, std::string_view prefix, std::string_view name);

  proxy_wasm::Host* host_ = nullptr;
  std::vector<Metric> counters_;
  std::vector<Metric> gauges_;
  Metric denied_;
};

}  // namespace mixer_filter

#endif  // PROXY_EXTENSIONS_MIXER_STATS_H_
