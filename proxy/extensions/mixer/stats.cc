#include "proxy/extensions/mixer/stats.h"

namespace mixer_filter {

namespace {

using Counter = uint64_t mixerclient::ClientStats::*;

struct CounterField {
  const char* name;
  Counter field;
};

constexpr CounterField kCounters[] = {
    {"total_check_calls", &mixerclient::ClientStats::total_check_calls},
    {"total_check_cache_hits", &mixerclient::ClientStats::total_check_cache_hits},
    {"total_check_cache_misses", &mixerclient::ClientStats::total_check_cache_misses},
    {"total_remote_check_calls", &mixerclient::ClientStats::total_remote_check_calls},
    {"total_remote_quota_prefetch_calls", &mixerclient::ClientStats::total_remote_quota_prefetches},
    {"total_remote_check_refresh_calls", &mixerclient::ClientStats::total_remote_check_refreshes},
    {"total_quota_calls", &mixerclient::ClientStats::total_quota_calls},
    {"total_quota_cache_hits", &mixerclient::ClientStats::total_quota_cache_hits},
    {"check_transport_errors", &mixerclient::ClientStats::check_transport_errors},
    {"check_uncacheable", &mixerclient::ClientStats::check_uncacheable},
    {"total_report_calls", &mixerclient::ClientStats::total_report_calls},
    {"total_remote_report_calls", &mixerclient::ClientStats::total_remote_report_calls},
    {"report_batches_failed", &mixerclient::ClientStats::report_batches_failed},
    {"report_entries_failed", &mixerclient::ClientStats::report_entries_failed},
    {"report_batches_dropped", &mixerclient::ClientStats::report_batches_dropped},
    {"report_entries_dropped", &mixerclient::ClientStats::report_entries_dropped},
};

constexpr const char* kGauges[] = {"check_cache_size", "quota_cache_size", "report_batches_in_flight"};

uint64_t GaugeValue(const mixerclient::ClientStats& stats, size_t i) {
  switch (i) {
    case 0:
      return stats.check_cache_size;
    case 1:
      return stats.quota_cache_size;
    default:
      return stats.report_batches_in_flight < 0 ? 0 : static_cast<uint64_t>(stats.report_batches_in_flight);
  }
}

}  // namespace

FilterStats::Metric FilterStats::DefineOne(proxy_wasm::MetricType type, std::string_view prefix,
                                           std::string_view name) {
  Metric metric;
  std::string full(prefix);
  full.push_back('.');
  full.append(name);
  metric.ok = host_->DefineMetric(type, full, &metric.id);
  return metric;
}

void FilterStats::Define(proxy_wasm::Host* host, std::string_view prefix) {
  host_ = host;
  counters_.clear();
  gauges_.clear();
  for (const CounterField& counter : kCounters) {
    counters_.push_back(DefineOne(proxy_wasm::MetricType::kCounter, prefix, counter.name));
  }
  for (const char* gauge : kGauges) {
    gauges_.push_back(DefineOne(proxy_wasm::MetricType::kGauge, prefix, gauge));
  }
  denied_ = DefineOne(proxy_wasm::MetricType::kCounter, prefix, "check_denied");
}

void FilterStats::Update(const mixerclient::ClientStats& stats) {
  if (host_ == nullptr) return;
  for (size_t i = 0; i < counters_.size(); ++i) {
    Metric& metric = counters_[i];
    const uint64_t value = stats.*(kCounters[i].field);
    if (metric.ok && value > metric.last) {
      host_->IncrementMetric(metric.id, static_cast<int64_t>(value - metric.last));
    }
    metric.last = value;
  }
  for (size_t i = 0; i < gauges_.size(); ++i) {
    Metric& metric = gauges_[i];
    const uint64_t value = GaugeValue(stats, i);
    if (metric.ok && value != metric.last) host_->RecordMetric(metric.id, value);
    metric.last = value;
  }
}

void FilterStats::IncrementDenied() {
  if (host_ != nullptr && denied_.ok) host_->IncrementMetric(denied_.id, 1);
}

}  // namespace mixer_filter
