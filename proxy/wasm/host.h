// Host: the services of the proxy a filter uses (headers, properties, local replies, gRPC
// calls, timers, metrics), as an interface. Inside Envoy it is AbiHost (the proxy-wasm ABI's
// imports, abi_host.cc); in unit tests a fake that records what the filter did. Filters
// depend only on this, so their logic builds and runs natively under gtest.
#ifndef PROXY_WASM_HOST_H_
#define PROXY_WASM_HOST_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/wasm/abi.h"

namespace proxy_wasm {

using HeaderPairs = std::vector<std::pair<std::string, std::string>>;

class Host {
 public:
  virtual ~Host();

  virtual void Log(LogLevel level, std::string_view message) = 0;
  // Wall-clock time (request.time, response.time).
  virtual int64_t WallTimeNanos() = 0;

  // Of the effective context: the stream whose callback is running, unless switched.
  virtual void SetEffectiveContext(uint32_t context_id) = 0;

  // `path` is the property's segments joined by NUL ("request\0path"). False if absent.
  virtual bool GetProperty(std::string_view path, std::string* value) = 0;
  virtual bool GetHeaderPairs(HeaderMapType type, HeaderPairs* pairs) = 0;
  virtual bool GetHeader(HeaderMapType type, std::string_view key, std::string* value) = 0;
  virtual void ReplaceHeader(HeaderMapType type, std::string_view key, std::string_view value) = 0;
  virtual void RemoveHeader(HeaderMapType type, std::string_view key) = 0;
  virtual bool GetBuffer(BufferType type, size_t start, size_t max_size, std::string* data) = 0;

  // Resumes the effective stream (its request after a Pause from the headers callback, or a
  // connection's downstream data) / closes it.
  virtual void ContinueStream(StreamType type) = 0;
  virtual void CloseStream(StreamType type) = 0;
  // Ends the effective stream with a reply of Envoy's own.
  virtual void SendLocalResponse(uint32_t status_code, std::string_view details,
                                 std::string_view body, const HeaderPairs& headers) = 0;

  // A unary gRPC call; the answer comes to the calling root context's OnGrpcReceive or
  // OnGrpcClose with `token`. `service` is a serialized envoy.config.core.v3.GrpcService.
  virtual WasmResult GrpcCall(std::string_view service, std::string_view service_name,
                              std::string_view method, std::string_view request,
                              uint32_t timeout_ms, uint32_t* token) = 0;

  virtual void SetTickPeriod(uint32_t period_ms) = 0;

  // Metrics; false if the host refused the name.
  virtual bool DefineMetric(MetricType type, std::string_view name, uint32_t* id) = 0;
  virtual void IncrementMetric(uint32_t id, int64_t delta) = 0;
  virtual void RecordMetric(uint32_t id, uint64_t value) = 0;
};

// The ABI's header-pair serialization (proxy_get_header_map_pairs, proxy_send_local_response).
std::string SerializeHeaderPairs(const HeaderPairs& pairs);
// False if `data` is not a well-formed serialization.
bool ParseHeaderPairs(std::string_view data, HeaderPairs* pairs);

// "request" + "path" -> "request\0path".
std::string PropertyPath(std::initializer_list<std::string_view> segments);

}  // namespace proxy_wasm

#endif  // PROXY_WASM_HOST_H_
