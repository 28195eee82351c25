// Istio's attribute vocabulary (api/policy/v1beta1/attributes.yaml): the names the filters fill.
#ifndef PROXY_EXTENSIONS_MIXER_ATTRIBUTE_NAMES_H_
#define PROXY_EXTENSIONS_MIXER_ATTRIBUTE_NAMES_H_

#include "mixerclient/attributes.h"

namespace mixer_filter {
namespace attr {

// Each name is looked up in the global dictionary once, when the module starts, rather than
// on every Set: a bag takes these as they are.
using Key = mixerclient::AttributeName::Key;
inline Key Of(std::string_view name) { return mixerclient::AttributeName::KeyFor(name); }

inline const Key kSourceIp = Of("source.ip");
inline const Key kSourcePort = Of("source.port");
inline const Key kSourcePrincipal = Of("source.principal");
inline const Key kSourceUser = Of("source.user");  // deprecated, the same value

inline const Key kDestinationIp = Of("destination.ip");
inline const Key kDestinationPort = Of("destination.port");
inline const Key kDestinationPrincipal = Of("destination.principal");
inline const Key kDestinationWorkloadName = Of("destination.workload.name");
inline const Key kDestinationWorkloadNamespace = Of("destination.workload.namespace");
inline const Key kDestinationLabels = Of("destination.labels");

inline const Key kRequestHeaders = Of("request.headers");
inline const Key kRequestHost = Of("request.host");
inline const Key kRequestMethod = Of("request.method");
inline const Key kRequestPath = Of("request.path");
inline const Key kRequestUrlPath = Of("request.url_path");
inline const Key kRequestQueryParams = Of("request.query_params");
inline const Key kRequestReferer = Of("request.referer");
inline const Key kRequestScheme = Of("request.scheme");
inline const Key kRequestUserAgent = Of("request.useragent");
inline const Key kRequestId = Of("request.id");
inline const Key kRequestTime = Of("request.time");
inline const Key kRequestSize = Of("request.size");
inline const Key kRequestTotalSize = Of("request.total_size");

inline const Key kResponseHeaders = Of("response.headers");
inline const Key kResponseTime = Of("response.time");
inline const Key kResponseSize = Of("response.size");
inline const Key kResponseTotalSize = Of("response.total_size");
inline const Key kResponseDuration = Of("response.duration");
inline const Key kResponseCode = Of("response.code");
inline const Key kResponseGrpcStatus = Of("response.grpc_status");
inline const Key kResponseGrpcMessage = Of("response.grpc_message");

inline const Key kConnectionId = Of("connection.id");
inline const Key kConnectionEvent = Of("connection.event");
inline const Key kConnectionMtls = Of("connection.mtls");
inline const Key kConnectionRequestedServerName = Of("connection.requested_server_name");
inline const Key kConnectionReceivedBytes = Of("connection.received.bytes");
inline const Key kConnectionReceivedBytesTotal = Of("connection.received.bytes_total");
inline const Key kConnectionSentBytes = Of("connection.sent.bytes");
inline const Key kConnectionSentBytesTotal = Of("connection.sent.bytes_total");
inline const Key kConnectionDuration = Of("connection.duration");

inline const Key kContextProtocol = Of("context.protocol");
inline const Key kContextTime = Of("context.time");
inline const Key kContextProxyErrorCode = Of("context.proxy_error_code");
inline const Key kContextReporterKind = Of("context.reporter.kind");

inline const Key kCheckErrorCode = Of("check.error_code");
inline const Key kCheckErrorMessage = Of("check.error_message");
inline const Key kCheckCacheHit = Of("check.cache_hit");
inline const Key kQuotaCacheHit = Of("quota.cache_hit");

}  // namespace attr
}  // namespace mixer_filter

#endif  // PROXY_EXTENSIONS_MIXER_ATTRIBUTE_NAMES_H_
