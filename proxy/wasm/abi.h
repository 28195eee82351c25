// The proxy-wasm ABI, version 0.2.1, as the host (Envoy) and a module see it: the enums
// both sides agree on and the host functions a module imports from module "env".
//
// Written from the ABI's specification (proxy-wasm/spec, abi-versions/v0.2.1); only what our
// filters call is declared. The module's own exports (proxy_on_*) are in context.cc.
#ifndef PROXY_WASM_ABI_H_
#define PROXY_WASM_ABI_H_

#include <cstddef>
#include <cstdint>

namespace proxy_wasm {

// What every host function returns.
enum class WasmResult : uint32_t {
  kOk = 0,
  kNotFound = 1,
  kBadArgument = 2,
  kSerializationFailure = 3,
  kParseFailure = 4,
  kBadExpression = 5,
  kInvalidMemoryAccess = 6,
  kEmpty = 7,
  kCasMismatch = 8,
  kResultMismatch = 9,
  kInternalFailure = 10,
  kBrokenConnection = 11,
  kUnimplemented = 12,
};

enum class LogLevel : uint32_t {
  kTrace = 0,
  kDebug = 1,
  kInfo = 2,
  kWarn = 3,
  kError = 4,
  kCritical = 5,
};

enum class HeaderMapType : uint32_t {
  kRequestHeaders = 0,
  kRequestTrailers = 1,
  kResponseHeaders = 2,
  kResponseTrailers = 3,
  kGrpcReceiveInitialMetadata = 4,
  kGrpcReceiveTrailingMetadata = 5,
  kHttpCallResponseHeaders = 6,
  kHttpCallResponseTrailers = 7,
};

enum class BufferType : uint32_t {
  kHttpRequestBody = 0,
  kHttpResponseBody = 1,
  kNetworkDownstreamData = 2,
  kNetworkUpstreamData = 3,
  kHttpCallResponseBody = 4,
  kGrpcReceiveBuffer = 5,
  kVmConfiguration = 6,
  kPluginConfiguration = 7,
  kCallData = 8,
};

// Returned by proxy_on_request_headers / proxy_on_response_headers.
enum class FilterHeadersStatus : uint32_t {
  kContinue = 0,
  kStopIteration = 1,
  kContinueAndEndStream = 2,
  kStopAllIterationAndBuffer = 3,
  kStopAllIterationAndWatermark = 4,
};

// Returned by the body callbacks.
enum class FilterDataStatus : uint32_t {
  kContinue = 0,
  kStopIterationAndBuffer = 1,
  kStopIterationAndWatermark = 2,
  kStopIterationNoBuffer = 3,
};

enum class FilterTrailersStatus : uint32_t {
  kContinue = 0,
  kStopIteration = 1,
};

// Returned by the network (L4) callbacks.
enum class FilterStatus : uint32_t {
  kContinue = 0,
  kStopIteration = 1,
};

enum class StreamType : uint32_t {
  kRequest = 0,
  kResponse = 1,
  kDownstream = 2,
  kUpstream = 3,
};

enum class MetricType : uint32_t {
  kCounter = 0,
  kGauge = 1,
  kHistogram = 2,
};

enum class PeerType : uint32_t {
  kUnknown = 0,
  kLocal = 1,
  kRemote = 2,
};

}  // namespace proxy_wasm

#if defined(__wasm__)

#define PROXY_WASM_IMPORT(name) __attribute__((import_module("env"), import_name(#name)))

extern "C" {

using proxy_wasm::WasmResult;

// Logging and time.
PROXY_WASM_IMPORT(proxy_log)
WasmResult proxy_log(proxy_wasm::LogLevel level, const char* message, size_t message_size);
PROXY_WASM_IMPORT(proxy_get_log_level)
WasmResult proxy_get_log_level(proxy_wasm::LogLevel* level);
PROXY_WASM_IMPORT(proxy_get_current_time_nanoseconds)
WasmResult proxy_get_current_time_nanoseconds(uint64_t* nanoseconds);
PROXY_WASM_IMPORT(proxy_set_tick_period_milliseconds)
WasmResult proxy_set_tick_period_milliseconds(uint32_t period_ms);

// Contexts. Host calls act on the "effective" context: the one whose callback is running,
// unless the module switches (it must, to resume a request from a root-context callback).
PROXY_WASM_IMPORT(proxy_set_effective_context)
WasmResult proxy_set_effective_context(uint32_t context_id);
PROXY_WASM_IMPORT(proxy_done)
WasmResult proxy_done();

// Buffers (configuration, bodies, gRPC messages). The host allocates the copy with the
// module's proxy_on_memory_allocate; the module frees it.
PROXY_WASM_IMPORT(proxy_get_buffer_bytes)
WasmResult proxy_get_buffer_bytes(proxy_wasm::BufferType type, size_t start, size_t max_size,
                                  const char** data, size_t* size);
PROXY_WASM_IMPORT(proxy_get_buffer_status)
WasmResult proxy_get_buffer_status(proxy_wasm::BufferType type, size_t* length, uint32_t* flags);

// Header maps. Pairs are serialized: u32 count, then u32 key size and u32 value size per
// pair, then each key and value followed by a NUL.
PROXY_WASM_IMPORT(proxy_get_header_map_pairs)
WasmResult proxy_get_header_map_pairs(proxy_wasm::HeaderMapType type, const char** data,
                                      size_t* size);
PROXY_WASM_IMPORT(proxy_get_header_map_value)
WasmResult proxy_get_header_map_value(proxy_wasm::HeaderMapType type, const char* key,
                                      size_t key_size, const char** value, size_t* value_size);
PROXY_WASM_IMPORT(proxy_add_header_map_value)
WasmResult proxy_add_header_map_value(proxy_wasm::HeaderMapType type, const char* key,
                                      size_t key_size, const char* value, size_t value_size);
PROXY_WASM_IMPORT(proxy_replace_header_map_value)
WasmResult proxy_replace_header_map_value(proxy_wasm::HeaderMapType type, const char* key,
                                          size_t key_size, const char* value, size_t value_size);
PROXY_WASM_IMPORT(proxy_remove_header_map_value)
WasmResult proxy_remove_header_map_value(proxy_wasm::HeaderMapType type, const char* key,
                                         size_t key_size);

// Properties (request.path, source.address, connection.mtls, ...). The path is its
// segments joined by NUL; the value is raw bytes (strings as is, integers as 8-byte
// little-endian, booleans as one byte).
PROXY_WASM_IMPORT(proxy_get_property)
WasmResult proxy_get_property(const char* path, size_t path_size, const char** value,
                              size_t* value_size);

// Streams.
PROXY_WASM_IMPORT(proxy_continue_stream)
WasmResult proxy_continue_stream(proxy_wasm::StreamType type);
PROXY_WASM_IMPORT(proxy_close_stream)
WasmResult proxy_close_stream(proxy_wasm::StreamType type);
PROXY_WASM_IMPORT(proxy_send_local_response)
WasmResult proxy_send_local_response(uint32_t status_code, const char* details,
                                     size_t details_size, const char* body, size_t body_size,
                                     const char* headers, size_t headers_size,
                                     int32_t grpc_status);

// Calls out. `service` is a serialized envoy.config.core.v3.GrpcService.
PROXY_WASM_IMPORT(proxy_grpc_call)
WasmResult proxy_grpc_call(const char* service, size_t service_size, const char* service_name,
                           size_t service_name_size, const char* method_name,
                           size_t method_name_size, const char* initial_metadata,
                           size_t initial_metadata_size, const char* request,
                           size_t request_size, uint32_t timeout_ms, uint32_t* token);
PROXY_WASM_IMPORT(proxy_grpc_cancel)
WasmResult proxy_grpc_cancel(uint32_t token);

// Metrics (shown in Envoy's /stats and /stats/prometheus).
PROXY_WASM_IMPORT(proxy_define_metric)
WasmResult proxy_define_metric(proxy_wasm::MetricType type, const char* name, size_t name_size,
                               uint32_t* metric_id);
PROXY_WASM_IMPORT(proxy_increment_metric)
WasmResult proxy_increment_metric(uint32_t metric_id, int64_t offset);
PROXY_WASM_IMPORT(proxy_record_metric)
WasmResult proxy_record_metric(uint32_t metric_id, uint64_t value);

}  // extern "C"

#undef PROXY_WASM_IMPORT

#endif  // defined(__wasm__)

#endif  // PROXY_WASM_ABI_H_
