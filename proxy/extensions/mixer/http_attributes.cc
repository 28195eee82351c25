#include "proxy/extensions/mixer/http_attributes.h"

#include "proxy/extensions/mixer/attribute_names.h"
#include "proxy/extensions/mixer/properties.h"

namespace mixer_filter {

using mixerclient::Attributes;
using proxy_wasm::HeaderMapType;
using proxy_wasm::HeaderPairs;
using proxy_wasm::Host;

namespace {

void AddQueryParams(std::string_view query, Attributes* out) {
  mixerclient::StringMap params;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    std::string key(item.substr(0, eq));
    std::string value(eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1));
    params.emplace(std::move(key), std::move(value));  // the first of repeated keys wins
  }
  if (!params.empty()) out->SetStringMap(attr::kRequestQueryParams, std::move(params));
}

}  // namespace

void AddRequestHeaderAttributes(HeaderPairs&& headers, Attributes* out) {
  mixerclient::StringMap map;
  const std::string* authority = nullptr;
  const std::string* path = nullptr;
  const std::string* scheme = nullptr;
  bool grpc = false;
  for (auto& [key, value] : headers) {
    if (key == kIstioAttributesHeader) continue;
    // Moved in when new (neither string is moved from otherwise).
    auto [it, inserted] = map.try_emplace(std::move(key), std::move(value));
    if (!inserted) {
      it->second.append(",").append(value);  // repeated headers join, as Envoy joins them
      continue;
    }
    const std::string& name = it->first;
    const std::string& stored = it->second;
    if (name == ":authority") {
      authority = &stored;
    } else if (name == ":path") {
      path = &stored;
    } else if (name == ":scheme") {
      scheme = &stored;
    } else if (name == ":method") {
      out->SetString(attr::kRequestMethod, stored);
    } else if (name == "referer") {
      out->SetString(attr::kRequestReferer, stored);
    } else if (name == "user-agent") {
      out->SetString(attr::kRequestUserAgent, stored);
    } else if (name == "x-request-id") {
      out->SetString(attr::kRequestId, stored);
    } else if (name == "content-type") {
      grpc = stored.compare(0, 16, "application/grpc") == 0;
    }
  }
  out->SetString(attr::kRequestHost, authority != nullptr ? *authority : "");
  out->SetString(attr::kRequestScheme, scheme != nullptr ? *scheme : "http");
  const std::string_view full_path = path != nullptr ? std::string_view(*path) : std::string_view();
  out->SetString(attr::kRequestPath, full_path);
  const size_t question = full_path.find('?');
  out->SetString(attr::kRequestUrlPath, full_path.substr(0, question));
  if (question != std::string_view::npos) AddQueryParams(full_path.substr(question + 1), out);
  out->SetString(attr::kContextProtocol, grpc ? "grpc" : "http");
  out->SetStringMap(attr::kRequestHeaders, std::move(map));
}

void AddDownstreamAttributes(Host& host, Attributes* out) {
  std::string address;
  std::string ip;
  int64_t port = 0;
  if (GetStringProperty(host, {"source", "address"}, &address) && ParseAddress(address, &ip, &port)) {
    out->SetBytes(attr::kSourceIp, ip);
    out->SetInt64(attr::kSourcePort, port);
  }
  bool mtls = false;
  GetBoolProperty(host, {"connection", "mtls"}, &mtls);
  out->SetBool(attr::kConnectionMtls, mtls);
  if (!mtls) return;
  std::string uri;
  if (GetStringProperty(host, {"connection", "uri_san_peer_certificate"}, &uri) && !uri.empty()) {
    const std::string principal = PrincipalFromUri(uri);
    out->SetString(attr::kSourcePrincipal, principal);
    out->SetString(attr::kSourceUser, principal);
  }
  if (GetStringProperty(host, {"connection", "uri_san_local_certificate"}, &uri) && !uri.empty()) {
    out->SetString(attr::kDestinationPrincipal, PrincipalFromUri(uri));
  }
  std::string sni;
  if (GetStringProperty(host, {"connection", "requested_server_name"}, &sni) && !sni.empty()) {
    out->SetString(attr::kConnectionRequestedServerName, sni);
  }
}

void AddWorkloadMetadata(std::string_view workload, Attributes* out) {
  std::string_view parts[5];
  size_t count = 0;
  while (count < 5) {
    const size_t semi = workload.find(';');
    parts[count++] = workload.substr(0, semi);
    if (semi == std::string_view::npos) break;
    workload.remove_prefix(semi + 1);
  }
  if (!parts[0].empty()) out->SetString(attr::kDestinationWorkloadName, parts[0]);
  if (count > 1 && !parts[1].empty()) out->SetString(attr::kDestinationWorkloadNamespace, parts[1]);
  if (out->Has(attr::kDestinationLabels)) return;
  mixerclient::StringMap labels;
  if (count > 2 && !parts[2].empty()) labels["app"] = std::string(parts[2]);
  if (count > 3 && !parts[3].empty()) labels["version"] = std::string(parts[3]);
  if (!labels.empty()) out->SetStringMap(attr::kDestinationLabels, std::move(labels));
}

int64_t HeaderBytes(const HeaderPairs& headers) {
  int64_t bytes = 0;
  for (const auto& [key, value] : headers) bytes += static_cast<int64_t>(key.size() + value.size());
  return bytes;
}

namespace {

int64_t ParseStatus(const std::string& text) {
  if (text.size() != 3) return 0;
  int64_t code = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return 0;
    code = code * 10 + (c - '0');
  }
  return code;
}

}  // namespace

void AddReportAttributes(Host& host, const ExchangeFacts& facts, Attributes* out) {
  const int64_t now = host.WallTimeNanos();
  out->SetTimestamp(attr::kResponseTime,
                    mixerclient::Timestamp{now / 1000000000, static_cast<int32_t>(now % 1000000000)});
  int64_t value = 0;
  if (facts.request_time_nanos > 0) {
    const int64_t elapsed = now - facts.request_time_nanos;
    out->SetDuration(attr::kResponseDuration,
                     mixerclient::Duration{elapsed / 1000000000, static_cast<int32_t>(elapsed % 1000000000)});
  } else if (GetInt64Property(host, kRequestDurationPath, &value)) {
    out->SetDuration(attr::kResponseDuration,
                     mixerclient::Duration{value / 1000000000, static_cast<int32_t>(value % 1000000000)});
  }

  int64_t code = 0;
  int64_t response_header_bytes = 0;
  HeaderPairs headers;
  if (host.GetHeaderPairs(HeaderMapType::kResponseHeaders, &headers)) {
    response_header_bytes = HeaderBytes(headers);
    mixerclient::StringMap map;
    for (auto& [key, header] : headers) {
      if (key == ":status") code = ParseStatus(header);
      auto [it, inserted] = map.try_emplace(std::move(key), std::move(header));
      if (!inserted) it->second.append(",").append(header);
    }
    out->SetStringMap(attr::kResponseHeaders, std::move(map));
  }
  if (code == 0) GetInt64Property(host, kResponseCodePath, &code);  // no response headers
  if (code != 0) out->SetInt64(attr::kResponseCode, code);

  int64_t request_size = 0;
  if (facts.request_body) GetInt64Property(host, kRequestSizePath, &request_size);
  out->SetInt64(attr::kRequestSize, request_size);
  out->SetInt64(attr::kRequestTotalSize, facts.request_header_bytes + request_size);
  out->SetInt64(attr::kResponseSize, facts.response_body_bytes);
  out->SetInt64(attr::kResponseTotalSize, response_header_bytes + facts.response_body_bytes);

  if (GetInt64Property(host, kResponseFlagsPath, &value)) {
    out->SetString(attr::kContextProxyErrorCode, ResponseFlagsText(static_cast<uint64_t>(value)));
  }
  const std::string* protocol = out->GetString(attr::kContextProtocol);
  if (protocol != nullptr && *protocol == "grpc" &&
      GetInt64Property(host, kResponseGrpcStatusPath, &value)) {
    out->SetInt64(attr::kResponseGrpcStatus, value);
  }
}

}  // namespace mixer_filter
