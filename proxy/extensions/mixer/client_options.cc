#include "proxy/extensions/mixer/client_options.h"

namespace mixer_filter {

mixerclient::ClientOptions ClientOptionsFor(const TransportConfig& transport,
                                            std::string_view reporter_uid, proxy_wasm::Host& host,
                                            uint32_t root_context_id) {
  mixerclient::ClientOptions options;
  if (transport.disable_check_cache) options.check.num_entries = 0;
  options.check.network_fail_open = transport.network_fail_policy.fail_open;
  if (transport.disable_quota_cache) options.quota.num_entries = 0;
  if (transport.disable_report_batch) {
    options.report.max_batch_entries = 1;
  } else if (transport.report_batch_max_entries > 0) {
    options.report.max_batch_entries = static_cast<int32_t>(transport.report_batch_max_entries);
  }
  if (transport.report_batch_max_time_ms > 0) {
    options.report.max_batch_time_ms = static_cast<int32_t>(transport.report_batch_max_time_ms);
  }
  std::string base(reporter_uid);
  base += "-" + std::to_string(host.WallTimeNanos()) + "-" + std::to_string(root_context_id) + "-";
  options.deduplication_id_base = std::move(base);
  return options;
}

}  // namespace mixer_filter
