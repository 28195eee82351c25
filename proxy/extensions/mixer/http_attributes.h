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
// application/grpc content, else http).
void AddRequestHeaderAttributes(const proxy_wasm::HeaderPairs& headers,
                                mixerclient::Attributes* out);

// source.ip and .port (the downstream peer), connection.mtls, and with mutual TLS the
// principals of both ends and connection.requested_server_name.
void AddDownstreamAttributes(proxy_wasm::Host& host, mixerclient::Attributes* out);

// After the response: response.code, .headers, .size, .total_size, .time, .duration,
// request.size, .total_size, context.proxy_error_code, the upstream's destination.ip and
// .port, and what the upstream endpoint's metadata says about the destination workload when
// the filter config did not (a client-side report).
void AddReportAttributes(proxy_wasm::Host& host, mixerclient::Attributes* out);

// The destination workload from EDS endpoint metadata istio.workload
// ("<name>;<namespace>[;<app>;<version>;<cluster>]", Istio's format).
void AddWorkloadMetadata(std::string_view workload, mixerclient::Attributes* out);

}  // namespace mixer_filter

#endif  // PROXY_EXTENSIONS_MIXER_HTTP_ATTRIBUTES_H_
