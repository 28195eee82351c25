// AbiHost: Host on the proxy-wasm ABI's imports (only in the wasm32 build).
#ifndef PROXY_WASM_ABI_HOST_H_
#define PROXY_WASM_ABI_HOST_H_

#include "proxy/wasm/host.h"

namespace proxy_wasm {

class AbiHost final : public Host {
 public:
  // The one host of this module (the imports are process-wide).
  static AbiHost* Get();

  void Log(LogLevel level, std::string_view message) override;
  int64_t WallTimeNanos() override;
  void SetEffectiveContext(uint32_t context_id) override;
  bool GetProperty(std::string_view path, std::string* value) override;
  bool GetHeaderPairs(HeaderMapType type, HeaderPairs* pairs) override;
  bool GetHeader(HeaderMapType type, std::string_view key, std::string* value) override;
  void ReplaceHeader(HeaderMapType type, std::string_view key, std::string_view value) override;
  void RemoveHeader(HeaderMapType type, std::string_view key) override;
  bool GetBuffer(BufferType type, size_t start, size_t max_size, std::string* data) override;
  void ContinueStream(StreamType type) override;
  void CloseStream(StreamType type) override;
  void SendLocalResponse(uint32_t status_code, std::string_view details, std::string_view body,
                         const HeaderPairs& headers) override;
  WasmResult GrpcCall(std::string_view service, std::string_view service_name,
                      std::string_view method, std::string_view request, uint32_t timeout_ms,
                      uint32_t* token) override;
  void SetTickPeriod(uint32_t period_ms) override;
  bool DefineMetric(MetricType type, std::string_view name, uint32_t* id) override;
  void IncrementMetric(uint32_t id, int64_t delta) override;
  void RecordMetric(uint32_t id, uint64_t value) override;
};

}  // namespace proxy_wasm

#endif  // PROXY_WASM_ABI_HOST_H_
