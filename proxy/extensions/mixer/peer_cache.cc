#include "proxy/extensions/mixer/peer_cache.h"

#include "proxy/extensions/mixer/attribute_names.h"
#include "proxy/extensions/mixer/http_attributes.h"
#include "proxy/extensions/mixer/properties.h"

namespace mixer_filter {

void DownstreamCache::Add(proxy_wasm::Host& host, mixerclient::Attributes* out) {
  int64_t id = 0;
  if (!GetInt64Property(host, kConnectionIdPath, &id)) {
    AddDownstreamAttributes(host, out);
    return;
  }
  auto it = by_id_.find(id);
  if (it == by_id_.end()) {
    if (by_id_.size() >= capacity_) by_id_.clear();  // connections come and go; start over
    mixerclient::Attributes connection;
    AddDownstreamAttributes(host, &connection);
    it = by_id_.emplace(id, std::move(connection)).first;
  }
  out->Merge(it->second);
}

void UpstreamCache::Add(proxy_wasm::Host& host, int64_t now_nanos, bool workload,
                        mixerclient::Attributes* out) {
  std::string address;
  if (!GetStringProperty(host, kUpstreamAddressPath, &address)) return;
  auto it = by_address_.find(address);
  if (it == by_address_.end() || it->second.expires < now_nanos || (workload && !it->second.workload)) {
    if (it == by_address_.end() && by_address_.size() >= capacity_) by_address_.clear();
    Entry entry;
    entry.expires = now_nanos + ttl_nanos_;
    entry.workload = workload;
    std::string ip;
    int64_t port = 0;
    if (ParseAddress(address, &ip, &port)) {
      entry.attributes.SetBytes(attr::kDestinationIp, ip);
      entry.attributes.SetInt64(attr::kDestinationPort, port);
    }
    if (workload) {
      std::string metadata;
      if (GetStringProperty(host, {"xds", "upstream_host_metadata", "filter_metadata", "istio", "workload"},
                            &metadata)) {
        AddWorkloadMetadata(metadata, &entry.attributes);
      }
      std::string uri;
      if (GetStringProperty(host, {"upstream", "uri_san_peer_certificate"}, &uri) && !uri.empty()) {
        entry.attributes.SetString(attr::kDestinationPrincipal, PrincipalFromUri(uri));
      }
    }
    it = by_address_.insert_or_assign(address, std::move(entry)).first;
  }
  for (const auto& [name, value] : it->second.attributes.values()) {
    // A server's own config names its workload (and its labels); the upstream's never
    // overrides that, only its address does.
    const mixerclient::AttributeName::Key key = name.key();
    if (mixerclient::CompareNames(key, attr::kDestinationIp) == 0 ||
        mixerclient::CompareNames(key, attr::kDestinationPort) == 0 || !out->Has(key)) {
      out->Set(key, value);
    }
  }
}

}  // namespace mixer_filter
