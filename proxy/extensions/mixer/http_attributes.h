// The attributes of an HTTP request, collected as Istio's HTTP Mixer filter did
// (istio/proxy control/http attributes_builder): from the request headers and the
// downstream connection when the headers arrive, and from the finished exchange in the
// access-log phase. Every host call costs about a microsecond, so each value is read once
// and maps come in one call.
#ifndef PROXY_EXTENSIONS_MIXER_HTTP_ATTRIBUTES_H_
#define PROXY_EXTENSIONS_MIXER_HTTP_ATTRIBUTES_H_

#include "mixerclient/attributes.h"
#include "proxy/wasm/host.h"

namespace mixer_filter {

inline constexpr char kIstioAttributesHeader[] = "x-istio-attributes";

// request.headers (every header, pseudo-headers included) and request.host, .method, .path,
// .url_path, .query_params, .scheme, .referer, .useragent, .id; context.protocol (grpc for
// application/grpc content, else http). The headers' strings are moved into the bag.
void AddRequestHeaderAttributes(proxy_wasm::HeaderPairs&& headers, mixerclient::Attributes* out);

// source.ip and .port (the downstream peer), connection.mtls, and with mutual TLS the
// principals of both ends and connection.requested_server_name.
void AddDownstreamAttributes(proxy_wasm::Host& host, mixerclient::Attributes* out);

// What a request's stream counted itself, so its report needs fewer host calls.
struct ExchangeFacts {
  int64_t request_time_nanos = 0;    // when the request headers arrived (wall clock)
  int64_t request_header_bytes = 0;  // keys and values, as Envoy's HeaderMap::byteSize
  bool request_body = false;         // the headers did not end the request
  int64_t response_body_bytes = 0;   // what the response body callbacks saw
};

// The sum of the keys' and values' sizes (Envoy's HeaderMap::byteSize).
int64_t HeaderBytes(const proxy_wasm::HeaderPairs& headers);

// After the response: response.code (from :status), .headers, .size, .total_size, .time,
// .duration, request.size, .total_size, context.proxy_error_code (the only properties read:
// response.flags, and request.size for a request with a body).
void AddReportAttributes(proxy_wasm::Host& host, const ExchangeFacts& facts,
                         mixerclient::Attributes* out);

// The destination workload from EDS endpoint metadata istio.workload
// ("<name>;<namespace>[;<app>;<version>;<cluster>]", Istio's format).
void AddWorkloadMetadata(std::string_view workload, mixerclient::Attributes* out);

}  // namespace mixer_filter

#endif  // PROXY_EXTENSIONS_MIXER_HTTP_ATTRIBUTES_H_
