// FakeHost: a Host that plays Envoy in unit tests. Properties and header maps are what the
// test sets; everything the filter does (gRPC calls, local replies, continues, header edits,
// metrics) is recorded for the test to inspect and answer.
#ifndef PROXY_EXTENSIONS_MIXER_FAKE_HOST_H_
#define PROXY_EXTENSIONS_MIXER_FAKE_HOST_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "proxy/wasm/host.h"

namespace mixer_filter {
namespace testing {

class FakeHost : public proxy_wasm::Host {
 public:
  struct Call {
    std::string service;  // serialized GrpcService
    std::string service_name;
    std::string method;
    std::string request;
    uint32_t timeout_ms = 0;
    uint32_t token = 0;
  };
  struct LocalReply {
    uint32_t context = 0;
    uint32_t code = 0;
    std::string details;
    std::string body;
  };
  struct Metric {
    proxy_wasm::MetricType type;
    std::string name;
    int64_t value = 0;
  };

  // Test controls.
  std::map<std::string, std::string> properties;  // by NUL-joined path
  std::map<proxy_wasm::HeaderMapType, proxy_wasm::HeaderPairs> headers;
  std::map<proxy_wasm::BufferType, std::string> buffers;
  int64_t wall_nanos = 1700000000123456789;
  proxy_wasm::WasmResult grpc_result = proxy_wasm::WasmResult::kOk;

  // What the filter did.
  std::vector<std::string> logs;
  std::map<std::string, int> property_reads;  // by NUL-joined path
  std::map<proxy_wasm::HeaderMapType, int> header_map_reads;  // GetHeaderPairs, by map
  std::vector<Call> grpc_calls;
  std::vector<LocalReply> replies;
  std::vector<uint32_t> continued;  // effective context of each ContinueStream
  std::vector<uint32_t> closed;
  std::vector<Metric> metrics;
  uint32_t effective_context = 0;
  uint32_t tick_period_ms = 0;

  void SetString(std::initializer_list<std::string_view> path, std::string value) {
    properties[proxy_wasm::PropertyPath(path)] = std::move(value);
  }
  void SetInt64(std::initializer_list<std::string_view> path, int64_t v) {
    std::string bytes;
    for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff));
    properties[proxy_wasm::PropertyPath(path)] = bytes;
  }
  void SetBool(std::initializer_list<std::string_view> path, bool v) {
    properties[proxy_wasm::PropertyPath(path)] = std::string(1, v ? '\1' : '\0');
  }
  const std::string* Header(proxy_wasm::HeaderMapType type, std::string_view key) const {
    auto it = headers.find(type);
    if (it == headers.end()) return nullptr;
    for (const auto& [k, v] : it->second) {
      if (k == key) return &v;
    }
    return nullptr;
  }
  int64_t MetricValue(std::string_view name) const {
    for (const Metric& m : metrics) {
      if (m.name == name) return m.value;
    }
    return -1;
  }

  // Host.
  // Every property and header-map read, the host calls that cost the most.
  int PropertyReads() const {
    int n = 0;
    for (const auto& [path, count] : property_reads) n += count;
    return n;
  }

  void Log(proxy_wasm::LogLevel, std::string_view message) override { logs.emplace_back(message); }
  int64_t WallTimeNanos() override { return wall_nanos; }
  void SetEffectiveContext(uint32_t context_id) override { effective_context = context_id; }
  bool GetProperty(std::string_view path, std::string* value) override {
    ++property_reads[std::string(path)];
    auto it = properties.find(std::string(path));
    if (it == properties.end()) return false;
    *value = it->second;
    return true;
  }
  bool GetHeaderPairs(proxy_wasm::HeaderMapType type, proxy_wasm::HeaderPairs* pairs) override {
    // Through the ABI's serialization, as Envoy hands them over.
    ++header_map_reads[type];
    return proxy_wasm::ParseHeaderPairs(proxy_wasm::SerializeHeaderPairs(headers[type]), pairs);
  }
  bool GetHeader(proxy_wasm::HeaderMapType type, std::string_view key, std::string* value) override {
    const std::string* found = Header(type, key);
    if (found == nullptr) return false;
    *value = *found;
    return true;
  }
  void ReplaceHeader(proxy_wasm::HeaderMapType type, std::string_view key, std::string_view value) override {
    RemoveHeader(type, key);
    headers[type].emplace_back(std::string(key), std::string(value));
  }
  void RemoveHeader(proxy_wasm::HeaderMapType type, std::string_view key) override {
    auto& pairs = headers[type];
    for (auto it = pairs.begin(); it != pairs.end();) {
      it = it->first == key ? pairs.erase(it) : it + 1;
    }
  }
  bool GetBuffer(proxy_wasm::BufferType type, size_t start, size_t max_size, std::string* data) override {
    auto it = buffers.find(type);
    if (it == buffers.end()) return false;
    *data = it->second.substr(start, max_size);
    return true;
  }
  void ContinueStream(proxy_wasm::StreamType) override { continued.push_back(effective_context); }
  void CloseStream(proxy_wasm::StreamType) override { closed.push_back(effective_context); }
  void SendLocalResponse(uint32_t status_code, std::string_view details, std::string_view body,
                         const proxy_wasm::HeaderPairs&) override {
    replies.push_back({effective_context, status_code, std::string(details), std::string(body)});
  }
  proxy_wasm::WasmResult GrpcCall(std::string_view service, std::string_view service_name,
                                  std::string_view method, std::string_view request,
                                  uint32_t timeout_ms, uint32_t* token) override {
    if (grpc_result != proxy_wasm::WasmResult::kOk) return grpc_result;
    *token = next_token_++;
    grpc_calls.push_back({std::string(service), std::string(service_name), std::string(method),
                          std::string(request), timeout_ms, *token});
    return proxy_wasm::WasmResult::kOk;
  }
  void SetTickPeriod(uint32_t period_ms) override { tick_period_ms = period_ms; }
  bool DefineMetric(proxy_wasm::MetricType type, std::string_view name, uint32_t* id) override {
    *id = static_cast<uint32_t>(metrics.size());
    metrics.push_back({type, std::string(name), 0});
    return true;
  }
  void IncrementMetric(uint32_t id, int64_t delta) override { metrics.at(id).value += delta; }
  void RecordMetric(uint32_t id, uint64_t value) override { metrics.at(id).value = static_cast<int64_t>(value); }

 private:
  uint32_t next_token_ = 1;
};

}  // namespace testing
}  // namespace mixer_filter

#endif  // PROXY_EXTENSIONS_MIXER_FAKE_HOST_H_
