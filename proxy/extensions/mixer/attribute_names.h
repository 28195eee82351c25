// Istio's attribute vocabulary (api/policy/v1beta1/attributes.yaml): the names the filters fill.
#ifndef PROXY_EXTENSIONS_MIXER_ATTRIBUTE_NAMES_H_
#define PROXY_EXTENSIONS_MIXER_ATTRIBUTE_NAMES_H_

namespace mixer_filter {
namespace attr {

inline constexpr char kSourceIp[] = "source.ip";
inline constexpr char kSourcePort[] = "source.port";
inline constexpr char kSourcePrincipal[] = "source.principal";
inline constexpr char kSourceUser[] = "source.user";  // deprecated, the same value

inline constexpr char kDestinationIp[] = "destination.ip";
inline constexpr char kDestinationPort[] = "destination.port";
inline constexpr char kDestinationPrincipal[] = "destination.principal";
inline constexpr char kDestinationWorkloadName[] = "destination.workload.name";
inline constexpr char kDestinationWorkloadNamespace[] = "destination.workload.namespace";
inline constexpr char kDestinationLabels[] = "destination.labels";

inline constexpr char kRequestHeaders[] = "request.headers";
inline constexpr char kRequestHost[] = "request.host";
inline constexpr char kRequestMethod[] = "request.method";
inline constexpr char kRequestPath[] = "request.path";
inline constexpr char kRequestUrlPath[] = "request.url_path";
inline constexpr char kRequestQueryParams[] = "request.query_params";
inline constexpr char kRequestReferer[] = "request.referer";
inline constexpr char kRequestScheme[] = "request.scheme";
inline constexpr char kRequestUserAgent[] = "request.useragent";
inline constexpr char kRequestId[] = "request.id";
inline constexpr char kRequestTime[] = "request.time";
inline constexpr char kRequestSize[] = "request.size";
inline constexpr char kRequestTotalSize[] = "request.total_size";

inline constexpr char kResponseHeaders[] = "response.headers";
inline constexpr char kResponseTime[] = "response.time";
inline constexpr char kResponseSize[] = "response.size";
inline constexpr char kResponseTotalSize[] = "response.total_size";
inline constexpr char kResponseDuration[] = "response.duration";
inline constexpr char kResponseCode[] = "response.code";
inline constexpr char kResponseGrpcStatus[] = "response.grpc_status";
inline constexpr char kResponseGrpcMessage[] = "response.grpc_message";

inline constexpr char kConnectionId[] = "connection.id";
inline constexpr char kConnectionEvent[] = "connection.event";
inline constexpr char kConnectionMtls[] = "connection.mtls";
inline constexpr char kConnectionRequestedServerName[] = "connection.requested_server_name";
inline constexpr char kConnectionReceivedBytes[] = "connection.received.bytes";
inline constexpr char kConnectionReceivedBytesTotal[] = "connection.received.bytes_total";
inline constexpr char kConnectionSentBytes[] = "connection.sent.bytes";
inline constexpr char kConnectionSentBytesTotal[] = "connection.sent.bytes_total";
inline constexpr char kConnectionDuration[] = "connection.duration";

inline constexpr char kContextProtocol[] = "context.protocol";
inline constexpr char kContextTime[] = "context.time";
inline constexpr char kContextProxyErrorCode[] = "context.proxy_error_code";
inline constexpr char kContextReporterKind[] = "context.reporter.kind";

inline constexpr char kCheckErrorCode[] = "check.error_code";
inline constexpr char kCheckErrorMessage[] = "check.error_message";
inline constexpr char kCheckCacheHit[] = "check.cache_hit";
inline constexpr char kQuotaCacheHit[] = "quota.cache_hit";

}  // namespace attr
}  // namespace mixer_filter

#endif  // PROXY_EXTENSIONS_MIXER_ATTRIBUTE_NAMES_H_
