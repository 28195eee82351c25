// The TCP Mixer filter (Istio's `mixer` network filter, on the proxy-wasm ABI).
//
// Per connection: Check when it opens (holding its data until the answer; a denial closes
// it), then Report connection.event "open" once data flows, "continue" every report
// interval (10 s by default) with the bytes of that interval, and "close" with the totals
// and the duration when either side closes.
#ifndef PROXY_EXTENSIONS_MIXER_TCP_FILTER_H_
#define PROXY_EXTENSIONS_MIXER_TCP_FILTER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "mixerclient/client.h"
#include "mixerclient/time_source.h"
#include "proxy/extensions/mixer/config.h"
#include "proxy/extensions/mixer/grpc_transport.h"
#include "proxy/extensions/mixer/stats.h"
#include "proxy/wasm/context.h"

namespace mixer_filter {

inline constexpr char kTcpRootId[] = "mixer_tcp";

class TcpRootContext : public proxy_wasm::RootContext {
 public:
  TcpRootContext(uint32_t id, std::string_view root_id, proxy_wasm::Host* host,
                 const mixerclient::TimeSource* time);
  ~TcpRootContext() override;

  bool OnConfigure(size_t configuration_size) override;
  void OnTick() override;
  void OnGrpcReceive(uint32_t token, size_t message_size) override;
  void OnGrpcClose(uint32_t token, uint32_t status_code) override;
  bool OnDone() override;
  std::unique_ptr<proxy_wasm::StreamContext> NewStream(uint32_t id) override;

  bool Configure(std::string_view json, std::string* error);

  const TcpClientConfig& config() const { return *config_; }
  mixerclient::Client* client() const { return client_.get(); }
  const mixerclient::TimeSource& time() const { return *time_; }
  FilterStats& stats() { return stats_; }

 private:
  const mixerclient::TimeSource* time_;
  std::unique_ptr<TcpClientConfig> config_;
  std::unique_ptr<GrpcTransport> transport_;
  std::unique_ptr<mixerclient::Client> client_;
  FilterStats stats_;
};

class TcpStreamContext : public proxy_wasm::StreamContext {
 public:
  TcpStreamContext(uint32_t id, TcpRootContext* root);

  proxy_wasm::FilterStatus OnNewConnection() override;
  proxy_wasm::FilterStatus OnDownstreamData(size_t data_size, bool end_of_stream) override;
  proxy_wasm::FilterStatus OnUpstreamData(size_t data_size, bool end_of_stream) override;
  void OnDownstreamConnectionClose(proxy_wasm::PeerType peer) override;
  void OnUpstreamConnectionClose(proxy_wasm::PeerType peer) override;
  void OnLog() override;

  // From the root's tick: a "continue" report when the interval has passed.
  void MaybeReportPeriodically(int64_t now_nanos);

 private:
  enum class State { kStart, kChecking, kPassed, kDenied, kClosed };

  void CheckDone(const mixerclient::CheckResult& result, bool synchronous);
  void Report(const char* event, int64_t now_nanos);
  void ReportOpenIfDue();
  void Close();

  TcpRootContext* root_;
  State state_ = State::kStart;
  bool in_new_connection_ = false;
  bool check_ = false;
  bool report_ = false;
  bool opened_ = false;  // the "open" report was sent
  bool upstream_known_ = false;
  int64_t start_nanos_ = 0;
  int64_t last_report_nanos_ = 0;
  uint64_t received_ = 0;
  uint64_t sent_ = 0;
  uint64_t received_reported_ = 0;
  uint64_t sent_reported_ = 0;
  mixerclient::Attributes attributes_;
  mixerclient::Status check_status_;
};

}  // namespace mixer_filter

#endif  // PROXY_EXTENSIONS_MIXER_TCP_FILTER_H_
