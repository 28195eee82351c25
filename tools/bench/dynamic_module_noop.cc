// A native Envoy dynamic module whose HTTP filter does nothing: the benchmark's measure of
// what Envoy's dynamic-module mechanism itself costs per request, to set beside a wasm
// filter that does nothing (tools/bench/filter_cpu.py). Not a product: built by the
// benchmark with `clang++ -shared -fPIC`.
//
// Envoy 1.40 resolves every hook below by name (all must exist); each one here returns 0,
// which is Continue for the filter hooks. The parameters are left out: in the C calling
// convention a callee may ignore what its caller passes. config_new and filter_new must
// return non-null pointers. The ABI version is the one this Envoy build says it matches.
#include <cstddef>

namespace {
int config_object;
int filter_object;
}  // namespace

#define NOOP_HOOK(name) \
  extern "C" int envoy_dynamic_module_on_http_filter_##name() { return 0; }

extern "C" const char* envoy_dynamic_module_on_program_init() { return "v0.2.0"; }
extern "C" void* envoy_dynamic_module_on_http_filter_config_new() { return &config_object; }
extern "C" void* envoy_dynamic_module_on_http_filter_per_route_config_new() {
  return &config_object;
}
extern "C" void* envoy_dynamic_module_on_http_filter_new() { return &filter_object; }

NOOP_HOOK(config_destroy)
NOOP_HOOK(config_http_callout_done)
NOOP_HOOK(config_http_stream_complete)
NOOP_HOOK(config_http_stream_data)
NOOP_HOOK(config_http_stream_headers)
NOOP_HOOK(config_http_stream_reset)
NOOP_HOOK(config_http_stream_trailers)
NOOP_HOOK(config_scheduled)
NOOP_HOOK(destroy)
NOOP_HOOK(downstream_above_write_buffer_high_watermark)
NOOP_HOOK(downstream_below_write_buffer_low_watermark)
NOOP_HOOK(http_callout_done)
NOOP_HOOK(http_stream_complete)
NOOP_HOOK(http_stream_data)
NOOP_HOOK(http_stream_headers)
NOOP_HOOK(http_stream_reset)
NOOP_HOOK(http_stream_trailers)
NOOP_HOOK(local_reply)
NOOP_HOOK(per_route_config_destroy)
NOOP_HOOK(request_body)
NOOP_HOOK(request_headers)
NOOP_HOOK(request_trailers)
NOOP_HOOK(response_body)
NOOP_HOOK(response_headers)
NOOP_HOOK(response_trailers)
NOOP_HOOK(scheduled)
NOOP_HOOK(stream_complete)
