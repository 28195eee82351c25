#include "proxy/extensions/mixer/tcp_filter.h"

#include <gtest/gtest.h>

#include "mixerclient/codec.h"
#include "mixerclient/compressor.h"
#include "proxy/extensions/mixer/fake_host.h"

namespace mixer_filter {
namespace {

using mixerclient::Attributes;
using proxy_wasm::FilterStatus;
using testing::FakeHost;

constexpr char kConfig[] = R"({
  "transport": {"checkCluster": "mixs", "reportCluster": "mixs", "networkFailPolicy": {"policy": "FAIL_CLOSE"}},
  "mixerAttributes": {"attributes": {
    "context.reporter.kind": {"stringValue": "inbound"},
    "context.reporter.uid": {"stringValue": "kubernetes://db.default"},
    "destination.workload.name": {"stringValue": "db"}}},
  "reportInterval": "2s"
})";

class TcpFilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::make_unique<TcpRootContext>(1, kTcpRootId, &host_, &time_);
    std::string error;
    ASSERT_TRUE(root_->Configure(kConfig, &error)) << error;
    host_.SetString({"source", "address"}, "10.0.0.9:5000");
    host_.SetBool({"connection", "mtls"}, false);
    host_.SetInt64({"connection", "id"}, 42);
    host_.SetString({"upstream", "address"}, "10.0.0.20:3306");
  }

  TcpStreamContext* Connection(uint32_t id) {
    root_->AddStream(root_->NewStream(id));
    host_.effective_context = id;
    return static_cast<TcpStreamContext*>(root_->FindStream(id));
  }

  void AnswerCheck(mixerclient::Code code) {
    ASSERT_FALSE(host_.grpc_calls.empty());
    ASSERT_EQ(host_.grpc_calls.back().method, "Check");
    mixerclient::CheckResponse response;
    mixerclient::PreconditionResult precondition;
    precondition.status = mixerclient::RpcStatus{static_cast<int32_t>(code), "no", {}};
    precondition.valid_duration = mixerclient::Duration{10, 0};
    precondition.valid_use_count = 100;
    precondition.referenced_attributes = mixerclient::ReferencedAttributes{};
    response.precondition = precondition;
    const std::string bytes = mixerclient::EncodeCheckResponse(response);
    host_.buffers[proxy_wasm::BufferType::kGrpcReceiveBuffer] = bytes;
    host_.effective_context = 1;
    root_->OnGrpcReceive(host_.grpc_calls.back().token, bytes.size());
  }

  std::vector<Attributes> Reports() {
    std::vector<Attributes> bags;
    for (const auto& call : host_.grpc_calls) {
      if (call.method != "Report") continue;
      mixerclient::ReportRequest request;
      EXPECT_TRUE(mixerclient::DecodeReportRequest(call.request, &request).ok());
      Attributes current;
      for (const auto& entry : request.attributes) {
        Attributes delta;
        EXPECT_TRUE(mixerclient::Decompress(entry, entry.words.empty() ? request.default_words : entry.words,
                                            static_cast<int32_t>(request.global_word_count), &delta)
                        .ok());
        current.Merge(delta);
        bags.push_back(current);
      }
    }
    return bags;
  }

  FakeHost host_;
  mixerclient::FakeTimeSource time_;
  std::unique_ptr<TcpRootContext> root_;
};

TEST_F(TcpFilterTest, ChecksOnConnectThenReportsOpenContinueAndClose) {
  TcpStreamContext* connection = Connection(2);
  EXPECT_EQ(connection->OnNewConnection(), FilterStatus::kStopIteration);
  EXPECT_EQ(connection->OnDownstreamData(100, false), FilterStatus::kStopIteration);  // held
  AnswerCheck(mixerclient::Code::kOk);
  EXPECT_EQ(host_.continued, std::vector<uint32_t>{2});

  host_.effective_context = 2;
  EXPECT_EQ(connection->OnDownstreamData(50, false), FilterStatus::kContinue);
  EXPECT_EQ(connection->OnUpstreamData(300, false), FilterStatus::kContinue);
  time_.AdvanceMillis(1000);
  host_.effective_context = 1;
  root_->OnTick();  // not yet: the interval is 2 s
  time_.AdvanceMillis(1500);
  root_->OnTick();
  host_.effective_context = 2;
  connection->OnDownstreamData(7, false);
  time_.AdvanceMillis(500);
  connection->OnDownstreamConnectionClose(proxy_wasm::PeerType::kRemote);
  connection->OnLog();  // closing twice reports once
  root_->OnDone();

  const std::vector<Attributes> reports = Reports();
  ASSERT_EQ(reports.size(), 3u);
  const char* events[] = {"open", "continue", "close"};
  const int64_t received[] = {150, 0, 7};
  const int64_t sent[] = {0, 300, 0};
  for (size_t i = 0; i < 3; ++i) {
    const Attributes& r = reports[i];
    EXPECT_EQ(*r.GetString("connection.event"), events[i]);
    EXPECT_EQ(std::get<int64_t>(*r.Get("connection.received.bytes")), received[i]) << events[i];
    EXPECT_EQ(std::get<int64_t>(*r.Get("connection.sent.bytes")), sent[i]) << events[i];
    EXPECT_EQ(*r.GetString("context.protocol"), "tcp");
    EXPECT_EQ(*r.GetString("connection.id"), "kubernetes://db.default-42");
    EXPECT_EQ(std::get<int64_t>(*r.Get("destination.port")), 3306);
  }
  EXPECT_EQ(std::get<int64_t>(*reports[2].Get("connection.received.bytes_total")), 157);
  EXPECT_EQ(std::get<int64_t>(*reports[2].Get("connection.sent.bytes_total")), 300);
  EXPECT_EQ(std::get<mixerclient::Duration>(*reports[2].Get("connection.duration")),
            (mixerclient::Duration{3, 0}));
}

TEST_F(TcpFilterTest, ADeniedConnectionIsClosedAndReportedOnce) {
  TcpStreamContext* connection = Connection(2);
  ASSERT_EQ(connection->OnNewConnection(), FilterStatus::kStopIteration);
  AnswerCheck(mixerclient::Code::kPermissionDenied);
  EXPECT_EQ(host_.closed, std::vector<uint32_t>{2});
  EXPECT_TRUE(host_.continued.empty());
  host_.effective_context = 2;
  EXPECT_EQ(connection->OnDownstreamData(10, false), FilterStatus::kStopIteration);
  connection->OnDownstreamConnectionClose(proxy_wasm::PeerType::kLocal);
  root_->OnDone();
  const std::vector<Attributes> reports = Reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(*reports[0].GetString("connection.event"), "close");
  EXPECT_EQ(std::get<int64_t>(*reports[0].Get("check.error_code")), 7);
  EXPECT_EQ(host_.MetricValue("tcp_mixer_filter.inbound.check_denied"), 1);
}

TEST_F(TcpFilterTest, AConnectionClosedDuringTheCheckIsForgotten) {
  TcpStreamContext* connection = Connection(2);
  ASSERT_EQ(connection->OnNewConnection(), FilterStatus::kStopIteration);
  connection->OnDownstreamConnectionClose(proxy_wasm::PeerType::kRemote);
  AnswerCheck(mixerclient::Code::kOk);
  EXPECT_TRUE(host_.continued.empty());
  root_->OnDone();
  EXPECT_TRUE(Reports().empty());
}

}  // namespace
}  // namespace mixer_filter
