// Attributes of a request's connections, read from the host once and kept.
//
// Each host call is a round trip through the VM (a few microseconds), and what a connection
// says about its peers (addresses, mutual TLS, certificates, the upstream workload) is the
// same for every request it carries; Envoy keeps connections open between sidecars. So a
// request reads only the connection's id (and the upstream's address) and gets the rest from
// here when the connection was seen before.
#ifndef PROXY_EXTENSIONS_MIXER_PEER_CACHE_H_
#define PROXY_EXTENSIONS_MIXER_PEER_CACHE_H_

#include <cstdint>
#include <string>
#include <unordered_map>

#include "mixerclient/attributes.h"
#include "proxy/wasm/host.h"

namespace mixer_filter {

// Downstream connections by Envoy's connection id (unique for the process's life).
class DownstreamCache {
 public:
  explicit DownstreamCache(size_t capacity = 1024) : capacity_(capacity) {}
  // source.ip/.port, connection.mtls, with mutual TLS the principals and SNI, into *out.
  void Add(proxy_wasm::Host& host, mixerclient::Attributes* out);
  size_t size() const { return by_id_.size(); }

 private:
  size_t capacity_;
  std::unordered_map<int64_t, mixerclient::Attributes> by_id_;
};

// Upstream hosts by address: destination.ip/.port, and for a client the server's workload
// (EDS metadata) and principal (its certificate). Entries are kept `ttl_nanos`, since an
// address may later belong to another workload.
class UpstreamCache {
 public:
  explicit UpstreamCache(int64_t ttl_nanos = 10'000'000'000, size_t capacity = 1024)
      : ttl_nanos_(ttl_nanos), capacity_(capacity) {}
  // `workload`: also learn the destination workload and principal (a client-side report).
  void Add(proxy_wasm::Host& host, int64_t now_nanos, bool workload, mixerclient::Attributes* out);
  size_t size() const { return by_address_.size(); }

 private:
  struct Entry {
    mixerclient::Attributes attributes;
    bool workload = false;
    int64_t expires = 0;
  };
  int64_t ttl_nanos_;
  size_t capacity_;
  std::unordered_map<std::string, Entry> by_address_;
};

}  // namespace mixer_filter

#endif  // PROXY_EXTENSIONS_MIXER_PEER_CACHE_H_
