// The filter's configuration: Istio's mixer client config (istio.mixer.v1.config.client
// HttpClientConfig and TcpClientConfig, api/mixer/v1/config/client/client_config.proto),
// read from the protobuf JSON form Pilot writes into the Wasm filter's `configuration`.
//
// As protobuf's JSON parser does, both lowerCamelCase and the proto's own field names are
// accepted, and anything unknown or mistyped is an error naming the field: a filter config
// with a mistake is refused (Envoy then rejects the listener and keeps the old one).
#ifndef PROXY_EXTENSIONS_MIXER_CONFIG_H_
#define PROXY_EXTENSIONS_MIXER_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "mixerclient/attributes.h"
#include "mixerclient/quota_cache.h"

namespace mixer_filter {

// NetworkFailPolicy: what a request gets when Mixer cannot be reached.
struct NetworkFailPolicy {
  bool fail_open = true;  // FAIL_OPEN is the proto's zero value
  uint32_t max_retry = 0;
  int64_t base_retry_wait_ms = 80;
  int64_t max_retry_wait_ms = 1000;
};

// StringMatch of a QuotaSpec rule's clause.
struct StringMatch {
  enum class Kind { kExact, kPrefix };
  Kind kind = Kind::kExact;
  std::string value;
  bool Matches(std::string_view text) const;
};

struct QuotaRule {
  // Any one match (all its clauses: attribute name -> string match) selects the rule; a
  // rule without matches always applies.
  std::vector<std::map<std::string, StringMatch>> match;
  std::vector<mixerclient::QuotaRequirement> quotas;
};

struct QuotaSpec {
  std::vector<QuotaRule> rules;
  // The quotas a request with these attributes needs (added to *out).
  void AddRequirements(const mixerclient::Attributes& attributes,
                       std::vector<mixerclient::QuotaRequirement>* out) const;
};

struct ServiceConfig {
  bool disable_check_calls = false;
  bool disable_report_calls = false;
  mixerclient::Attributes mixer_attributes;
  mixerclient::Attributes forward_attributes;
  std::vector<QuotaSpec> quota_spec;
  bool has_network_fail_policy = false;
  NetworkFailPolicy network_fail_policy;
};

struct TransportConfig {
  bool disable_check_cache = false;
  bool disable_quota_cache = false;
  bool disable_report_batch = false;
  NetworkFailPolicy network_fail_policy;
  std::string check_cluster;
  std::string report_cluster;
  uint32_t report_batch_max_entries = 0;  // 0: the client's default
  int64_t report_batch_max_time_ms = 0;   // 0: the client's default
};

struct HttpClientConfig {
  TransportConfig transport;
  std::map<std::string, ServiceConfig> service_configs;
  std::string default_destination_service;
  mixerclient::Attributes mixer_attributes;
  mixerclient::Attributes forward_attributes;
  bool ignore_forwarded_attributes = false;
};

struct TcpClientConfig {
  TransportConfig transport;
  mixerclient::Attributes mixer_attributes;
  bool disable_check_calls = false;
  bool disable_report_calls = false;
  QuotaSpec connection_quota_spec;
  int64_t report_interval_ms = 10000;  // Istio's default; never below 1 s
};

// False with *error ("transport.networkFailPolicy.policy: ...") on any mistake.
bool ParseHttpClientConfig(std::string_view json, HttpClientConfig* out, std::string* error);
bool ParseTcpClientConfig(std::string_view json, TcpClientConfig* out, std::string* error);

}  // namespace mixer_filter

#endif  // PROXY_EXTENSIONS_MIXER_CONFIG_H_
