#include "proxy/wasm/abi_host.h"

#include <cstdlib>

namespace proxy_wasm {

namespace {

// Takes ownership of a buffer the host allocated through proxy_on_memory_allocate.
void TakeBuffer(const char* data, size_t size, std::string* out) {
  if (data == nullptr) {
    out->clear();
    return;
  }
  out->assign(data, size);
  ::free(const_cast<char*>(data));
}

}  // namespace

AbiHost* AbiHost::Get() {
  static AbiHost* host = new AbiHost();
  return host;
}

void AbiHost::Log(LogLevel level, std::string_view message) {
  proxy_log(level, message.data(), message.size());
}

int64_t AbiHost::WallTimeNanos() {
  uint64_t nanos = 0;
  proxy_get_current_time_nanoseconds(&nanos);
  return static_cast<int64_t>(nanos);
}

void AbiHost::SetEffectiveContext(uint32_t context_id) { proxy_set_effective_context(context_id); }

bool AbiHost::GetProperty(std::string_view path, std::string* value) {
  const char* data = nullptr;
  size_t size = 0;
  if (proxy_get_property(path.data(), path.size(), &data, &size) != WasmResult::kOk) {
    return false;
  }
  TakeBuffer(data, size, value);
  return true;
}

bool AbiHost::GetHeaderPairs(HeaderMapType type, HeaderPairs* pairs) {
  const char* data = nullptr;
  size_t size = 0;
  if (proxy_get_header_map_pairs(type, &data, &size) != WasmResult::kOk) return false;
  if (data == nullptr) {
    pairs->clear();
    return true;
  }
  // Parsed where the host put it: no copy of the whole map first.
  const bool ok = ParseHeaderPairs(std::string_view(data, size), pairs);
  ::free(const_cast<char*>(data));
  return ok;
}

bool AbiHost::GetHeader(HeaderMapType type, std::string_view key, std::string* value) {
  const char* data = nullptr;
  size_t size = 0;
  if (proxy_get_header_map_value(type, key.data(), key.size(), &data, &size) != WasmResult::kOk) {
    return false;
  }
  TakeBuffer(data, size, value);
  return true;
}

void AbiHost::ReplaceHeader(HeaderMapType type, std::string_view key, std::string_view value) {
  proxy_replace_header_map_value(type, key.data(), key.size(), value.data(), value.size());
}

void AbiHost::RemoveHeader(HeaderMapType type, std::string_view key) {
  proxy_remove_header_map_value(type, key.data(), key.size());
}

bool AbiHost::GetBuffer(BufferType type, size_t start, size_t max_size, std::string* out) {
  const char* data = nullptr;
  size_t size = 0;
  if (proxy_get_buffer_bytes(type, start, max_size, &data, &size) != WasmResult::kOk) {
    return false;
  }
  TakeBuffer(data, size, out);
  return true;
}

void AbiHost::ContinueStream(StreamType type) { proxy_continue_stream(type); }

void AbiHost::CloseStream(StreamType type) { proxy_close_stream(type); }

void AbiHost::SendLocalResponse(uint32_t status_code, std::string_view details,
                                std::string_view body, const HeaderPairs& headers) {
  const std::string pairs = SerializeHeaderPairs(headers);
  proxy_send_local_response(status_code, details.data(), details.size(), body.data(), body.size(),
                            pairs.data(), pairs.size(), -1);
}

WasmResult AbiHost::GrpcCall(std::string_view service, std::string_view service_name,
                             std::string_view method, std::string_view request,
                             uint32_t timeout_ms, uint32_t* token) {
  // No initial metadata: an empty serialized map is just a zero count.
  static const std::string kNoMetadata = SerializeHeaderPairs({});
  return proxy_grpc_call(service.data(), service.size(), service_name.data(), service_name.size(),
                         method.data(), method.size(), kNoMetadata.data(), kNoMetadata.size(),
                         request.data(), request.size(), timeout_ms, token);
}

void AbiHost::SetTickPeriod(uint32_t period_ms) { proxy_set_tick_period_milliseconds(period_ms); }

bool AbiHost::DefineMetric(MetricType type, std::string_view name, uint32_t* id) {
  return proxy_define_metric(type, name.data(), name.size(), id) == WasmResult::kOk;
}

void AbiHost::IncrementMetric(uint32_t id, int64_t delta) { proxy_increment_metric(id, delta); }

void AbiHost::RecordMetric(uint32_t id, uint64_t value) { proxy_record_metric(id, value); }

}  // namespace proxy_wasm
