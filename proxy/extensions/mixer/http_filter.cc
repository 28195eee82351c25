#include "proxy/extensions/mixer/http_filter.h"

#include <utility>

#include "mixerclient/codec.h"
#include "proxy/extensions/mixer/attribute_names.h"
#include "mixerclient/base64.h"
#include "proxy/extensions/mixer/client_options.h"
#include "proxy/extensions/mixer/http_attributes.h"
#include "proxy/extensions/mixer/properties.h"

namespace mixer_filter {

using mixerclient::Attributes;
using proxy_wasm::FilterDataStatus;
using proxy_wasm::FilterHeadersStatus;
using proxy_wasm::HeaderMapType;
using proxy_wasm::LogLevel;

namespace {

// About what a report carries (~50 attributes), with room to spare.
constexpr size_t kReportCapacity = 64;

// The local reply's response code details (Envoy's %RESPONSE_CODE_DETAILS%), Istio's name.
constexpr char kAccessDenied[] = "mixer_access_denied";

// outbound|9080|v1|reviews.default.svc.cluster.local -> reviews.default.svc.cluster.local;
// inbound|9080|| -> "".
std::string_view ClusterHost(std::string_view cluster) {
  size_t bar = 0;
  for (int i = 0; i < 3; ++i) {
    bar = cluster.find('|', bar);
    if (bar == std::string_view::npos) return {};
    ++bar;
  }
  return cluster.substr(bar);
}

// inbound|9080|... -> 9080, else 0.
int64_t InboundPort(std::string_view cluster) {
  constexpr std::string_view kInbound = "inbound|";
  if (cluster.substr(0, kInbound.size()) != kInbound) return 0;
  int64_t port = 0;
  for (size_t i = kInbound.size(); i < cluster.size() && cluster[i] != '|'; ++i) {
    if (cluster[i] < '0' || cluster[i] > '9') return 0;
    port = port * 10 + (cluster[i] - '0');
  }
  return port;
}

void ApplyHeaderOperations(proxy_wasm::Host& host, HeaderMapType map,
                           const std::vector<mixerclient::HeaderOperation>& operations) {
  for (const auto& op : operations) {
    switch (op.operation) {
      case mixerclient::kRemove:
        host.RemoveHeader(map, op.name);
        break;
      case mixerclient::kAppend: {
        std::string value;
        if (host.GetHeader(map, op.name, &value) && !value.empty()) {
          host.ReplaceHeader(map, op.name, value + "," + op.value);
        } else {
          host.ReplaceHeader(map, op.name, op.value);
        }
        break;
      }
      default:
        host.ReplaceHeader(map, op.name, op.value);
    }
  }
}

}  // namespace

HttpRootContext::HttpRootContext(uint32_t id, std::string_view root_id, proxy_wasm::Host* host,
                                 const mixerclient::TimeSource* time)
    : RootContext(id, root_id, host), clock_(time) {}

HttpRootContext::~HttpRootContext() {
  client_.reset();  // before the transport it uses
}

bool HttpRootContext::OnConfigure(size_t configuration_size) {
  std::string json;
  if (configuration_size > 0 &&
      !host().GetBuffer(proxy_wasm::BufferType::kPluginConfiguration, 0, configuration_size, &json)) {
    host().Log(LogLevel::kError, "mixer filter: cannot read the plugin configuration");
    return false;
  }
  std::string error;
  if (!Configure(json, &error)) {
    host().Log(LogLevel::kError, "mixer filter config rejected: " + error);
    return false;
  }
  return true;
}

bool HttpRootContext::Configure(std::string_view json, std::string* error) {
  auto config = std::make_unique<HttpClientConfig>();
  if (!ParseHttpClientConfig(json, config.get(), error)) return false;
  for (const auto& [name, service] : config->service_configs) {
    if (service.has_network_fail_policy) {
      *error = "serviceConfigs[" + name +
               "].networkFailPolicy: per-service fail policies are not supported; set "
               "transport.networkFailPolicy";
      return false;
    }
  }
  std::map<std::string, std::string> forward_headers;
  std::map<std::string, Attributes> static_attributes;
  for (const auto& [name, service] : config->service_configs) {
    Attributes forward = config->forward_attributes;
    forward.Merge(service.forward_attributes);
    if (!forward.empty()) forward_headers[name] = mixerclient::Base64Encode(mixerclient::EncodeAttributesMessage(forward));
    Attributes statics = config->mixer_attributes;
    statics.Merge(service.mixer_attributes);
    static_attributes[name] = std::move(statics);
  }

  const std::string* kind = config->mixer_attributes.GetString(attr::kContextReporterKind);
  std::string prefix = "http_mixer_filter";
  if (kind != nullptr && !kind->empty()) prefix += "." + *kind;
  const std::string* uid = config->mixer_attributes.GetString("context.reporter.uid");

  // When every cluster resolves to the same service config (none, or one that is also the
  // default), a request need not read its cluster to find it.
  std::optional<std::string> fixed_service;
  if (config->service_configs.empty()) {
    fixed_service = "";
  } else if (config->service_configs.size() == 1 &&
             config->service_configs.begin()->first == config->default_destination_service) {
    fixed_service = config->default_destination_service;
  }

  client_.reset();  // sends its pending batch; its answers in flight are then ignored
  transport_ = std::make_unique<GrpcTransport>(&host(), config->transport.check_cluster,
                                               config->transport.report_cluster);
  config_ = std::move(config);
  forward_headers_ = std::move(forward_headers);
  static_attributes_ = std::move(static_attributes);
  fixed_service_.reset();
  if (fixed_service.has_value()) fixed_service_ = FindService(*fixed_service);
  client_ = std::make_unique<mixerclient::Client>(
      ClientOptionsFor(config_->transport, uid != nullptr ? *uid : "", host(), id()),
      transport_.get(), &clock_);
  stats_.Define(&host(), prefix);
  host().SetTickPeriod(kTickPeriodMs);
  return true;
}

void HttpRootContext::OnTick() {
  if (client_ == nullptr) return;
  client_->Tick();
  stats_.Update(client_->stats());
}

void HttpRootContext::OnGrpcReceive(uint32_t token, size_t message_size) {
  if (transport_ != nullptr) transport_->OnReceive(token, message_size);
}

void HttpRootContext::OnGrpcClose(uint32_t token, uint32_t status_code) {
  if (transport_ != nullptr) transport_->OnClose(token, status_code);
}

bool HttpRootContext::OnDone() {
  if (client_ != nullptr) {
    client_->Flush();
    stats_.Update(client_->stats());
  }
  return true;
}

std::unique_ptr<proxy_wasm::StreamContext> HttpRootContext::NewStream(uint32_t id) {
  return std::make_unique<HttpStreamContext>(id, this);
}

HttpRootContext::Service HttpRootContext::FindService(std::string_view cluster) const {
  Service out;
  if (config_ == nullptr) return out;
  auto find = [&](std::string_view key) -> bool {
    if (key.empty()) return false;
    auto it = config_->service_configs.find(std::string(key));
    if (it == config_->service_configs.end()) return false;
    out.config = &it->second;
    auto header = forward_headers_.find(it->first);
    out.forward_header = header == forward_headers_.end() ? nullptr : &header->second;
    out.static_attributes = &static_attributes_.at(it->first);
    return true;
  };
  if (!find(cluster) && !find(ClusterHost(cluster))) find(config_->default_destination_service);
  return out;
}

// The stream.

FilterHeadersStatus HttpStreamContext::OnRequestHeaders(uint32_t, bool end_of_stream) {
  if (root_->client() == nullptr) return FilterHeadersStatus::kContinue;
  CallbackClock::Hold hold(&root_->clock());  // the check and quota caches read it
  // The cluster picks the service config (unless only one can apply) and gives an inbound
  // request its destination.port.
  std::string cluster;
  const std::optional<HttpRootContext::Service>& fixed = root_->fixed_service();
  if (!fixed.has_value()) GetStringProperty(host(), kClusterNamePath, &cluster);
  const HttpRootContext::Service service = fixed.has_value() ? *fixed : root_->FindService(cluster);
  if (service.config == nullptr ||
      (service.config->disable_check_calls && service.config->disable_report_calls)) {
    // Nothing to check or report: only the next hop's x-istio-attributes to take care of,
    // without reading the whole map. Envoy re-resolves the route after any change to the
    // request headers, so the header is removed only when it is there (asking is cheap).
    std::string incoming;
    if (host().GetHeader(HeaderMapType::kRequestHeaders, kIstioAttributesHeader, &incoming)) {
      host().RemoveHeader(HeaderMapType::kRequestHeaders, kIstioAttributesHeader);
    }
    if (service.forward_header != nullptr) {
      host().ReplaceHeader(HeaderMapType::kRequestHeaders, kIstioAttributesHeader,
                           *service.forward_header);
    }
    return FilterHeadersStatus::kContinue;
  }
  if (fixed.has_value()) GetStringProperty(host(), kClusterNamePath, &cluster);
  proxy_wasm::HeaderPairs headers;
  host().GetHeaderPairs(HeaderMapType::kRequestHeaders, &headers);
  const HttpClientConfig& config = root_->config();

  const std::string* forwarded = nullptr;
  for (const auto& [key, value] : headers) {
    if (key == kIstioAttributesHeader) forwarded = &value;
  }
  if (forwarded != nullptr) {
    // Whatever came in, the next hop gets only what this proxy forwards.
    if (!config.ignore_forwarded_attributes && service.config != nullptr) {
      std::string bytes;
      Attributes incoming;
      if (mixerclient::Base64Decode(*forwarded, &bytes) &&
          mixerclient::DecodeAttributesMessage(bytes, &incoming).ok()) {
        attributes_ = std::move(incoming);
      }
    }
    host().RemoveHeader(HeaderMapType::kRequestHeaders, kIstioAttributesHeader);
  }
  if (service.forward_header != nullptr) {
    host().ReplaceHeader(HeaderMapType::kRequestHeaders, kIstioAttributesHeader,
                         *service.forward_header);
  }
  const bool check = !service.config->disable_check_calls;
  report_ = !service.config->disable_report_calls;

  // Precedence, lowest first: forwarded, static, the request's own.
  // Room for all a report carries, so adding the request's and the response's attributes
  // never moves the bag (a merge into an empty bag is a copy into this room).
  attributes_.Reserve(kReportCapacity);
  attributes_.Merge(*service.static_attributes);
  facts_.request_header_bytes = HeaderBytes(headers);
  AddRequestHeaderAttributes(std::move(headers), &attributes_);
  root_->downstream().Add(host(), &attributes_);
  const int64_t now = host().WallTimeNanos();
  facts_.request_time_nanos = now;
  facts_.request_body = !end_of_stream;
  attributes_.SetTimestamp(attr::kRequestTime,
                           mixerclient::Timestamp{now / 1000000000, static_cast<int32_t>(now % 1000000000)});
  if (const int64_t port = InboundPort(cluster)) attributes_.SetInt64(attr::kDestinationPort, port);

  state_ = State::kPassed;
  if (!check) return FilterHeadersStatus::kContinue;

  std::vector<mixerclient::QuotaRequirement> quotas;
  for (const QuotaSpec& spec : service.config->quota_spec) spec.AddRequirements(attributes_, &quotas);
  state_ = State::kChecking;
  in_headers_ = true;
  HttpRootContext* root = root_;
  const uint32_t id = this->id();
  root->client()->Check(attributes_, quotas, [root, id](const mixerclient::CheckResult& result) {
    // The request may have ended (client gone) while Mixer was thinking.
    auto* stream = static_cast<HttpStreamContext*>(root->FindStream(id));
    if (stream != nullptr && stream->state_ == State::kChecking) {
      stream->CheckDone(result, stream->in_headers_);
    }
  });
  in_headers_ = false;
  return state_ == State::kPassed ? FilterHeadersStatus::kContinue
                                  : FilterHeadersStatus::kStopIteration;
}

void HttpStreamContext::CheckDone(const mixerclient::CheckResult& result, bool synchronous) {
  check_status_ = result.status;
  attributes_.SetBool(attr::kCheckCacheHit, result.check_cache_hit);
  attributes_.SetBool(attr::kQuotaCacheHit, result.quota_cache_hit);
  if (!synchronous) host().SetEffectiveContext(id());
  if (!result.status.ok()) {
    Deny(result.status);
    return;
  }
  if (result.route_directive.has_value()) {
    const mixerclient::RouteDirective& directive = *result.route_directive;
    if (directive.direct_response_code != 0) {
      state_ = State::kDenied;
      host().SendLocalResponse(directive.direct_response_code, kAccessDenied,
                               directive.direct_response_body, {});
      return;
    }
    ApplyHeaderOperations(host(), HeaderMapType::kRequestHeaders,
                          directive.request_header_operations);
    response_header_operations_ = directive.response_header_operations;
  }
  state_ = State::kPassed;
  if (!synchronous) host().ContinueStream(proxy_wasm::StreamType::kRequest);
}

void HttpStreamContext::Deny(const mixerclient::Status& status) {
  state_ = State::kDenied;
  root_->stats().IncrementDenied();
  host().SendLocalResponse(static_cast<uint32_t>(mixerclient::HttpStatusFor(status.code())),
                           kAccessDenied, status.ToString(), {});
}

FilterDataStatus HttpStreamContext::OnRequestBody(size_t, bool) {
  // Hold the body back with the headers until Mixer has answered.
  return state_ == State::kChecking ? FilterDataStatus::kStopIterationAndWatermark
                                    : FilterDataStatus::kContinue;
}

FilterDataStatus HttpStreamContext::OnResponseBody(size_t body_size, bool) {
  facts_.response_body_bytes += static_cast<int64_t>(body_size);  // never buffered: each chunk once
  return FilterDataStatus::kContinue;
}

FilterHeadersStatus HttpStreamContext::OnResponseHeaders(uint32_t, bool) {
  if (!response_header_operations_.empty()) {
    ApplyHeaderOperations(host(), HeaderMapType::kResponseHeaders, response_header_operations_);
  }
  return FilterHeadersStatus::kContinue;
}

void HttpStreamContext::OnLog() {
  if (!report_ || state_ == State::kStart || root_->client() == nullptr) return;
  CallbackClock::Hold hold(&root_->clock());  // the upstream cache and the batch read it
  AddReportAttributes(host(), facts_, &attributes_);
  // A client (outbound) report names the server's workload; a server's config names its own.
  root_->upstream().Add(host(), root_->clock().NowNanos(),
                        !attributes_.Has(attr::kDestinationWorkloadName), &attributes_);
  if (!check_status_.ok()) {
    attributes_.SetInt64(attr::kResponseCode, mixerclient::HttpStatusFor(check_status_.code()));
    attributes_.SetInt64(attr::kCheckErrorCode, check_status_.raw_code());
    attributes_.SetString(attr::kCheckErrorMessage, check_status_.ToString());
  }
  root_->client()->Report(std::move(attributes_));  // the request is over: no copy
  attributes_.Clear();
}

}  // namespace mixer_filter
