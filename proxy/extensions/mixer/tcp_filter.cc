#include "proxy/extensions/mixer/tcp_filter.h"

#include <utility>

#include "proxy/extensions/mixer/attribute_names.h"
#include "proxy/extensions/mixer/client_options.h"
#include "proxy/extensions/mixer/http_attributes.h"
#include "proxy/extensions/mixer/properties.h"

namespace mixer_filter {

using mixerclient::Attributes;
using proxy_wasm::FilterStatus;
using proxy_wasm::LogLevel;
using proxy_wasm::StreamType;

namespace {

mixerclient::Timestamp ToTimestamp(int64_t nanos) {
  return mixerclient::Timestamp{nanos / 1000000000, static_cast<int32_t>(nanos % 1000000000)};
}

mixerclient::Duration ToDuration(int64_t nanos) {
  return mixerclient::Duration{nanos / 1000000000, static_cast<int32_t>(nanos % 1000000000)};
}

}  // namespace

TcpRootContext::TcpRootContext(uint32_t id, std::string_view root_id, proxy_wasm::Host* host,
                               const mixerclient::TimeSource* time)
    : RootContext(id, root_id, host), time_(time) {}

TcpRootContext::~TcpRootContext() { client_.reset(); }

bool TcpRootContext::OnConfigure(size_t configuration_size) {
  std::string json;
  if (configuration_size > 0 &&
      !host().GetBuffer(proxy_wasm::BufferType::kPluginConfiguration, 0, configuration_size, &json)) {
    host().Log(LogLevel::kError, "mixer tcp filter: cannot read the plugin configuration");
    return false;
  }
  std::string error;
  if (!Configure(json, &error)) {
    host().Log(LogLevel::kError, "mixer tcp filter config rejected: " + error);
    return false;
  }
  return true;
}

bool TcpRootContext::Configure(std::string_view json, std::string* error) {
  auto config = std::make_unique<TcpClientConfig>();
  if (!ParseTcpClientConfig(json, config.get(), error)) return false;
  const std::string* kind = config->mixer_attributes.GetString(attr::kContextReporterKind);
  std::string prefix = "tcp_mixer_filter";
  if (kind != nullptr && !kind->empty()) prefix += "." + *kind;
  const std::string* uid = config->mixer_attributes.GetString("context.reporter.uid");

  client_.reset();
  transport_ = std::make_unique<GrpcTransport>(&host(), config->transport.check_cluster,
                                               config->transport.report_cluster);
  config_ = std::move(config);
  client_ = std::make_unique<mixerclient::Client>(
      ClientOptionsFor(config_->transport, uid != nullptr ? *uid : "", host(), id()),
      transport_.get(), time_);
  stats_.Define(&host(), prefix);
  host().SetTickPeriod(200);
  return true;
}

void TcpRootContext::OnTick() {
  if (client_ == nullptr) return;
  const int64_t now = time_->NowNanos();
  for (const auto& [id, stream] : streams()) {
    static_cast<TcpStreamContext*>(stream.get())->MaybeReportPeriodically(now);
  }
  client_->Tick();
  stats_.Update(client_->stats());
}

void TcpRootContext::OnGrpcReceive(uint32_t token, size_t message_size) {
  if (transport_ != nullptr) transport_->OnReceive(token, message_size);
}

void TcpRootContext::OnGrpcClose(uint32_t token, uint32_t status_code) {
  if (transport_ != nullptr) transport_->OnClose(token, status_code);
}

bool TcpRootContext::OnDone() {
  if (client_ != nullptr) {
    client_->Flush();
    stats_.Update(client_->stats());
  }
  return true;
}

std::unique_ptr<proxy_wasm::StreamContext> TcpRootContext::NewStream(uint32_t id) {
  return std::make_unique<TcpStreamContext>(id, this);
}

// The connection.

TcpStreamContext::TcpStreamContext(uint32_t id, TcpRootContext* root)
    : StreamContext(id, root), root_(root) {}

FilterStatus TcpStreamContext::OnNewConnection() {
  if (root_->client() == nullptr) return FilterStatus::kContinue;
  const TcpClientConfig& config = root_->config();
  check_ = !config.disable_check_calls;
  report_ = !config.disable_report_calls;
  if (!check_ && !report_) return FilterStatus::kContinue;
  start_nanos_ = root_->time().NowNanos();
  last_report_nanos_ = start_nanos_;
  attributes_.Merge(config.mixer_attributes);
  AddDownstreamAttributes(host(), &attributes_);
  int64_t connection_id = 0;
  if (GetInt64Property(host(), {"connection", "id"}, &connection_id)) {
    const std::string* uid = config.mixer_attributes.GetString("context.reporter.uid");
    attributes_.SetString(attr::kConnectionId,
                          (uid != nullptr ? *uid + "-" : std::string()) + std::to_string(connection_id));
  }
  attributes_.SetString(attr::kContextProtocol, "tcp");
  attributes_.SetTimestamp(attr::kContextTime, ToTimestamp(host().WallTimeNanos()));
  state_ = State::kPassed;
  if (!check_) return FilterStatus::kContinue;

  std::vector<mixerclient::QuotaRequirement> quotas;
  config.connection_quota_spec.AddRequirements(attributes_, &quotas);
  state_ = State::kChecking;
  in_new_connection_ = true;
  TcpRootContext* root = root_;
  const uint32_t id = this->id();
  root->client()->Check(attributes_, quotas, [root, id](const mixerclient::CheckResult& result) {
    auto* stream = static_cast<TcpStreamContext*>(root->FindStream(id));
    if (stream != nullptr && stream->state_ == State::kChecking) {
      stream->CheckDone(result, stream->in_new_connection_);
    }
  });
  in_new_connection_ = false;
  return state_ == State::kPassed ? FilterStatus::kContinue : FilterStatus::kStopIteration;
}

void TcpStreamContext::CheckDone(const mixerclient::CheckResult& result, bool synchronous) {
  check_status_ = result.status;
  attributes_.SetBool(attr::kCheckCacheHit, result.check_cache_hit);
  attributes_.SetBool(attr::kQuotaCacheHit, result.quota_cache_hit);
  if (!synchronous) host().SetEffectiveContext(id());
  if (!result.status.ok()) {
    state_ = State::kDenied;
    root_->stats().IncrementDenied();
    attributes_.SetInt64(attr::kCheckErrorCode, result.status.raw_code());
    attributes_.SetString(attr::kCheckErrorMessage, result.status.ToString());
    host().CloseStream(StreamType::kDownstream);
    return;
  }
  state_ = State::kPassed;
  if (!synchronous) host().ContinueStream(StreamType::kDownstream);
}

FilterStatus TcpStreamContext::OnDownstreamData(size_t data_size, bool) {
  received_ += data_size;
  if (state_ == State::kChecking || state_ == State::kDenied) return FilterStatus::kStopIteration;
  ReportOpenIfDue();
  return FilterStatus::kContinue;
}

FilterStatus TcpStreamContext::OnUpstreamData(size_t data_size, bool) {
  sent_ += data_size;
  ReportOpenIfDue();
  return FilterStatus::kContinue;
}

void TcpStreamContext::ReportOpenIfDue() {
  if (opened_ || !report_ || state_ != State::kPassed) return;
  opened_ = true;
  Report("open", root_->time().NowNanos());
}

void TcpStreamContext::MaybeReportPeriodically(int64_t now_nanos) {
  if (!opened_ || state_ != State::kPassed) return;
  if (now_nanos - last_report_nanos_ < root_->config().report_interval_ms * 1000000) return;
  // The tick runs on the root context: the connection's properties need its own.
  host().SetEffectiveContext(id());
  Report("continue", now_nanos);
}

void TcpStreamContext::Report(const char* event, int64_t now_nanos) {
  if (!upstream_known_) {
    std::string address, ip;
    int64_t port = 0;
    if (GetStringProperty(host(), {"upstream", "address"}, &address) &&
        ParseAddress(address, &ip, &port)) {
      upstream_known_ = true;
      attributes_.SetBytes(attr::kDestinationIp, ip);
      attributes_.SetInt64(attr::kDestinationPort, port);
      std::string workload;
      if (!attributes_.Has(attr::kDestinationWorkloadName) &&
          GetStringProperty(host(), {"xds", "upstream_host_metadata", "filter_metadata", "istio", "workload"},
                            &workload)) {
        AddWorkloadMetadata(workload, &attributes_);
      }
    }
  }
  Attributes report = attributes_;
  report.SetString(attr::kConnectionEvent, event);
  report.SetInt64(attr::kConnectionReceivedBytes, static_cast<int64_t>(received_ - received_reported_));
  report.SetInt64(attr::kConnectionReceivedBytesTotal, static_cast<int64_t>(received_));
  report.SetInt64(attr::kConnectionSentBytes, static_cast<int64_t>(sent_ - sent_reported_));
  report.SetInt64(attr::kConnectionSentBytesTotal, static_cast<int64_t>(sent_));
  report.SetDuration(attr::kConnectionDuration, ToDuration(now_nanos - start_nanos_));
  report.SetTimestamp(attr::kContextTime, ToTimestamp(host().WallTimeNanos()));
  received_reported_ = received_;
  sent_reported_ = sent_;
  last_report_nanos_ = now_nanos;
  root_->client()->Report(report);
}

void TcpStreamContext::Close() {
  if (state_ == State::kClosed || state_ == State::kStart) return;
  const bool passed = state_ == State::kPassed;
  const bool denied = state_ == State::kDenied;
  state_ = State::kClosed;
  if (!report_) return;
  // A denied connection is reported once, closed; one that passed reports its close.
  if (passed || denied) Report("close", root_->time().NowNanos());
}

void TcpStreamContext::OnDownstreamConnectionClose(proxy_wasm::PeerType) { Close(); }
void TcpStreamContext::OnUpstreamConnectionClose(proxy_wasm::PeerType) { Close(); }
void TcpStreamContext::OnLog() { Close(); }

}  // namespace mixer_filter
