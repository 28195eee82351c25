// The context layer: the module's objects behind the proxy-wasm callbacks.
//
// Envoy creates one root context per plugin (per filter config, per worker thread's VM),
// and one stream context per HTTP request or TCP connection under it. Each is an object
// here; exports.cc routes every proxy_on_* callback to the object with that context id.
// The classes only talk to the proxy through Host, so filters built on them run natively
// in unit tests with a fake host.
#ifndef PROXY_WASM_CONTEXT_H_
#define PROXY_WASM_CONTEXT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "proxy/wasm/abi.h"
#include "proxy/wasm/host.h"

namespace proxy_wasm {

class RootContext;

// One HTTP request or one TCP connection.
class StreamContext {
 public:
  StreamContext(uint32_t id, RootContext* root) : id_(id), root_(root) {}
  virtual ~StreamContext();
  StreamContext(const StreamContext&) = delete;
  StreamContext& operator=(const StreamContext&) = delete;

  uint32_t id() const { return id_; }
  RootContext* root() const { return root_; }
  Host& host() const;

  // HTTP.
  virtual FilterHeadersStatus OnRequestHeaders(uint32_t headers, bool end_of_stream);
  virtual FilterDataStatus OnRequestBody(size_t body_size, bool end_of_stream);
  virtual FilterHeadersStatus OnResponseHeaders(uint32_t headers, bool end_of_stream);
  virtual FilterDataStatus OnResponseBody(size_t body_size, bool end_of_stream);
  // TCP.
  virtual FilterStatus OnNewConnection();
  virtual FilterStatus OnDownstreamData(size_t data_size, bool end_of_stream);
  virtual FilterStatus OnUpstreamData(size_t data_size, bool end_of_stream);
  virtual void OnDownstreamConnectionClose(PeerType peer);
  virtual void OnUpstreamConnectionClose(PeerType peer);
  // Both: the stream is finished (the access-log phase), then it is gone.
  virtual void OnLog();
  virtual void OnDone();

 private:
  const uint32_t id_;
  RootContext* const root_;
};

// One plugin instance: its configuration and what its streams share.
class RootContext {
 public:
  RootContext(uint32_t id, std::string_view root_id, Host* host)
      : id_(id), root_id_(root_id), host_(host) {}
  virtual ~RootContext();
  RootContext(const RootContext&) = delete;
  RootContext& operator=(const RootContext&) = delete;

  uint32_t id() const { return id_; }
  const std::string& root_id() const { return root_id_; }
  Host& host() const { return *host_; }

  virtual bool OnVmStart(size_t configuration_size);
  // False rejects the configuration (Envoy then refuses the filter config).
  virtual bool OnConfigure(size_t configuration_size);
  virtual void OnTick();
  virtual void OnGrpcReceive(uint32_t token, size_t message_size);
  virtual void OnGrpcClose(uint32_t token, uint32_t status_code);
  // True when the root may be deleted now.
  virtual bool OnDone();

  virtual std::unique_ptr<StreamContext> NewStream(uint32_t id) = 0;

  // The live stream with this id, or nullptr (it may have ended while a call was pending).
  StreamContext* FindStream(uint32_t id) const;
  void AddStream(std::unique_ptr<StreamContext> stream);
  void RemoveStream(uint32_t id);
  size_t stream_count() const { return streams_.size(); }
  const std::unordered_map<uint32_t, std::unique_ptr<StreamContext>>& streams() const {
    return streams_;
  }

 private:
  const uint32_t id_;
  const std::string root_id_;
  Host* const host_;
  std::unordered_map<uint32_t, std::unique_ptr<StreamContext>> streams_;
};

inline Host& StreamContext::host() const { return root_->host(); }

// Root contexts are made by the factory registered for the plugin's root_id (the filter
// config's `root_id`); an empty registered name matches any root_id.
using RootFactory = std::unique_ptr<RootContext> (*)(uint32_t id, std::string_view root_id,
                                                     Host* host);

struct RootRegistration {
  RootRegistration(std::string_view root_id, RootFactory factory);
};

RootFactory FindRootFactory(std::string_view root_id);

}  // namespace proxy_wasm

#endif  // PROXY_WASM_CONTEXT_H_
