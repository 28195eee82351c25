#include "proxy/extensions/mixer/http_filter.h"

#include <gtest/gtest.h>

#include "mixerclient/codec.h"
#include "mixerclient/compressor.h"
#include "mixerclient/base64.h"
#include "proxy/extensions/mixer/fake_host.h"

namespace mixer_filter {
namespace {

using mixerclient::Attributes;
using proxy_wasm::FilterDataStatus;
using proxy_wasm::FilterHeadersStatus;
using proxy_wasm::HeaderMapType;
using testing::FakeHost;

constexpr char kCluster[] = "outbound|9091||mixs";

std::string Config(const std::string& policy, bool inbound, const std::string& extra = "") {
  const std::string kind = inbound ? "inbound" : "outbound";
  const std::string check = inbound ? "false" : "true";
  return R"({"transport": {"checkCluster": ")" + std::string(kCluster) + R"(", "reportCluster": ")" +
         kCluster + R"(", "networkFailPolicy": {"policy": ")" + policy + R"("}},
    "defaultDestinationService": "default",
    "serviceConfigs": {
      "default": {"disableCheckCalls": )" + check + R"(,
        "mixerAttributes": {"attributes": {"destination.service.host": {"stringValue": "ratings.default.svc.cluster.local"}}}},
      "reviews.default.svc.cluster.local": {"disableCheckCalls": )" + check + R"(,
        "mixerAttributes": {"attributes": {"destination.service.host": {"stringValue": "reviews.default.svc.cluster.local"}}},
        "forwardAttributes": {"attributes": {"destination.service.host": {"stringValue": "reviews.default.svc.cluster.local"}}}}
    },
    "mixerAttributes": {"attributes": {
      "context.reporter.kind": {"stringValue": ")" + kind + R"("},
      "context.reporter.uid": {"stringValue": "kubernetes://pod.default"},
      "source.labels": {"stringMapValue": {"entries": {"app": "from-config"}}}}})" +
         std::string(inbound ? "" : R"(,
    "forwardAttributes": {"attributes": {"source.uid": {"stringValue": "kubernetes://pod.default"}}})") +
         extra + "}";
}

class HttpFilterTest : public ::testing::Test {
 protected:
  void Configure(const std::string& json) {
    root_ = std::make_unique<HttpRootContext>(1, kHttpRootId, &host_, &time_);
    host_.buffers[proxy_wasm::BufferType::kPluginConfiguration] = json;
    ASSERT_TRUE(root_->OnConfigure(json.size())) << (host_.logs.empty() ? "" : host_.logs.back());
  }

  HttpStreamContext* Stream(uint32_t id) {
    root_->AddStream(root_->NewStream(id));
    host_.effective_context = id;
    return static_cast<HttpStreamContext*>(root_->FindStream(id));
  }

  void Request(const std::string& cluster, const std::string& path = "/ratings/0",
               const std::string& forwarded = "") {
    host_.SetString({"xds", "cluster_name"}, cluster);
    host_.SetString({"source", "address"}, "127.0.1.5:41000");
    host_.SetBool({"connection", "mtls"}, true);
    host_.SetString({"connection", "uri_san_peer_certificate"},
                    "spiffe://cluster.local/ns/default/sa/bookinfo-reviews");
    host_.headers[HeaderMapType::kRequestHeaders] = {
        {":authority", "ratings:9080"}, {":path", path}, {":method", "GET"},
        {":scheme", "http"}, {"user-agent", "test"}, {"x-request-id", "r-1"}};
    if (!forwarded.empty()) {
      host_.headers[HeaderMapType::kRequestHeaders].emplace_back("x-istio-attributes", forwarded);
    }
  }

  // The last gRPC call, which must be `method`.
  const FakeHost::Call& LastCall(const std::string& method) {
    EXPECT_FALSE(host_.grpc_calls.empty());
    EXPECT_EQ(host_.grpc_calls.back().method, method);
    return host_.grpc_calls.back();
  }

  void AnswerCheck(const FakeHost::Call& call, mixerclient::Code code,
                   const std::string& message = "") {
    mixerclient::CheckResponse response;
    mixerclient::PreconditionResult precondition;
    precondition.status = mixerclient::RpcStatus{static_cast<int32_t>(code), message, {}};
    precondition.valid_duration = mixerclient::Duration{60, 0};
    precondition.valid_use_count = 1000;
    mixerclient::ReferencedAttributes referenced;
    referenced.words = {"request.path"};
    referenced.attribute_matches.push_back({-1, mixerclient::kExact, "", 0});
    precondition.referenced_attributes = referenced;
    response.precondition = precondition;
    const std::string bytes = mixerclient::EncodeCheckResponse(response);
    host_.buffers[proxy_wasm::BufferType::kGrpcReceiveBuffer] = bytes;
    host_.effective_context = root_->id();
    root_->OnGrpcReceive(call.token, bytes.size());
  }

  // The attribute bags of a ReportRequest (delta-encoded entries applied in turn).
  std::vector<Attributes> ReportBags(const FakeHost::Call& call) {
    mixerclient::ReportRequest request;
    EXPECT_TRUE(mixerclient::DecodeReportRequest(call.request, &request).ok());
    std::vector<Attributes> bags;
    Attributes current;
    for (const auto& entry : request.attributes) {
      Attributes delta;
      const auto& words = entry.words.empty() ? request.default_words : entry.words;
      EXPECT_TRUE(mixerclient::Decompress(entry, words, static_cast<int32_t>(request.global_word_count), &delta).ok());
      current.Merge(delta);
      bags.push_back(current);
    }
    return bags;
  }

  FakeHost host_;
  mixerclient::FakeTimeSource time_;
  std::unique_ptr<HttpRootContext> root_;
};

std::string Forwarded(const std::string& version) {
  Attributes forwarded;
  forwarded.SetStringMap("source.labels", {{"app", "reviews"}, {"version", version}});
  forwarded.SetString("source.uid", "kubernetes://reviews-" + version + ".default");
  forwarded.SetString("context.reporter.kind", "outbound");  // static attributes win
  return mixerclient::Base64Encode(mixerclient::EncodeAttributesMessage(forwarded));
}

TEST_F(HttpFilterTest, InboundCollectsForwardedStaticAndRequestAttributesAndPausesForCheck) {
  Configure(Config("FAIL_CLOSE", true));
  EXPECT_EQ(host_.tick_period_ms, kTickPeriodMs);
  HttpStreamContext* stream = Stream(2);
  Request("inbound|9080||", "/ratings/0?a=1&b=2&a=3", Forwarded("v3"));
  EXPECT_EQ(stream->OnRequestHeaders(6, true), FilterHeadersStatus::kStopIteration);
  EXPECT_EQ(stream->OnRequestBody(10, false), FilterDataStatus::kStopIterationAndWatermark);
  // The forwarded header is consumed, not passed on to the app.
  EXPECT_EQ(host_.Header(HeaderMapType::kRequestHeaders, "x-istio-attributes"), nullptr);

  const Attributes& a = stream->attributes();
  EXPECT_EQ(*a.GetString("source.uid"), "kubernetes://reviews-v3.default");  // forwarded
  EXPECT_EQ(*a.GetString("context.reporter.kind"), "inbound");                 // static wins
  // The filter's static source.labels replace the forwarded map: static attributes come later.
  EXPECT_EQ(std::get<mixerclient::StringMap>(*a.Get("source.labels")).at("app"), "from-config");
  EXPECT_EQ(*a.GetString("destination.service.host"), "ratings.default.svc.cluster.local");
  EXPECT_EQ(*a.GetString("request.path"), "/ratings/0?a=1&b=2&a=3");
  EXPECT_EQ(*a.GetString("request.url_path"), "/ratings/0");
  EXPECT_EQ(std::get<mixerclient::StringMap>(*a.Get("request.query_params")),
            (mixerclient::StringMap{{"a", "1"}, {"b", "2"}}));
  EXPECT_EQ(*a.GetString("request.host"), "ratings:9080");
  EXPECT_EQ(*a.GetString("request.method"), "GET");
  EXPECT_EQ(*a.GetString("request.useragent"), "test");
  EXPECT_EQ(*a.GetString("request.id"), "r-1");
  EXPECT_EQ(*a.GetString("context.protocol"), "http");
  EXPECT_EQ(std::get<int64_t>(*a.Get("destination.port")), 9080);
  EXPECT_EQ(std::get<mixerclient::Bytes>(*a.Get("source.ip")).data, std::string("\x7f\x00\x01\x05", 4));
  EXPECT_EQ(std::get<int64_t>(*a.Get("source.port")), 41000);
  EXPECT_TRUE(std::get<bool>(*a.Get("connection.mtls")));
  EXPECT_EQ(*a.GetString("source.principal"), "cluster.local/ns/default/sa/bookinfo-reviews");
  const auto& headers = std::get<mixerclient::StringMap>(*a.Get("request.headers"));
  EXPECT_EQ(headers.at(":path"), "/ratings/0?a=1&b=2&a=3");
  EXPECT_EQ(headers.count("x-istio-attributes"), 0u);

  const FakeHost::Call& call = LastCall("Check");
  EXPECT_EQ(call.service_name, "istio.mixer.v1.Mixer");
  EXPECT_EQ(call.service, EnvoyGrpcService(kCluster));
  EXPECT_EQ(call.timeout_ms, kDefaultCallTimeoutMs);
  mixerclient::CheckRequest request;
  ASSERT_TRUE(mixerclient::DecodeCheckRequest(call.request, &request).ok());
  ASSERT_TRUE(request.attributes.has_value());
  Attributes sent;
  ASSERT_TRUE(mixerclient::Decompress(*request.attributes, request.attributes->words,
                                      static_cast<int32_t>(request.global_word_count), &sent)
                  .ok());
  EXPECT_EQ(sent, a);

  AnswerCheck(call, mixerclient::Code::kOk);
  // Resumed from the root's callback: the stream's context is made effective first.
  EXPECT_EQ(host_.continued, std::vector<uint32_t>{2});
  EXPECT_TRUE(host_.replies.empty());
  EXPECT_EQ(stream->OnRequestBody(10, true), FilterDataStatus::kContinue);
}

TEST_F(HttpFilterTest, ACachedAnswerGoesOnWithoutPausing) {
  Configure(Config("FAIL_CLOSE", true));
  Request("inbound|9080||");
  HttpStreamContext* first = Stream(2);
  ASSERT_EQ(first->OnRequestHeaders(6, true), FilterHeadersStatus::kStopIteration);
  AnswerCheck(LastCall("Check"), mixerclient::Code::kOk);
  const size_t calls = host_.grpc_calls.size();
  HttpStreamContext* second = Stream(3);
  EXPECT_EQ(second->OnRequestHeaders(6, true), FilterHeadersStatus::kContinue);
  EXPECT_EQ(host_.grpc_calls.size(), calls);
  EXPECT_EQ(host_.continued, std::vector<uint32_t>{2});  // only the first was resumed
  EXPECT_TRUE(std::get<bool>(*second->attributes().Get("check.cache_hit")));
}

TEST_F(HttpFilterTest, DenialsAnswerWithIstiosStatusMapping) {
  const std::pair<mixerclient::Code, uint32_t> cases[] = {
      {mixerclient::Code::kPermissionDenied, 403},
      {mixerclient::Code::kResourceExhausted, 429},
      {mixerclient::Code::kUnauthenticated, 401},
      {mixerclient::Code::kUnavailable, 503},
      {mixerclient::Code::kInvalidArgument, 400},
  };
  uint32_t id = 10;
  for (const auto& [code, http] : cases) {
    Configure(Config("FAIL_CLOSE", true));
    host_.replies.clear();
    Request("inbound|9080||", "/p" + std::to_string(id));
    HttpStreamContext* stream = Stream(id);
    ASSERT_EQ(stream->OnRequestHeaders(6, true), FilterHeadersStatus::kStopIteration);
    AnswerCheck(LastCall("Check"), code, "handler.denier.istio-system:Not allowed");
    ASSERT_EQ(host_.replies.size(), 1u);
    EXPECT_EQ(host_.replies[0].context, id);
    EXPECT_EQ(host_.replies[0].code, http);
    EXPECT_EQ(host_.replies[0].details, "mixer_access_denied");
    EXPECT_EQ(host_.replies[0].body,
              mixerclient::CodeName(code) + ": handler.denier.istio-system:Not allowed");
    EXPECT_TRUE(host_.continued.empty());
    ++id;
  }
  EXPECT_EQ(host_.MetricValue("http_mixer_filter.inbound.check_denied"), 1);
}

TEST_F(HttpFilterTest, AnUnreachableMixerFollowsTheFailPolicy) {
  // Fail closed: the transport's UNAVAILABLE is the answer (503).
  Configure(Config("FAIL_CLOSE", true));
  Request("inbound|9080||");
  HttpStreamContext* closed = Stream(2);
  ASSERT_EQ(closed->OnRequestHeaders(6, true), FilterHeadersStatus::kStopIteration);
  host_.effective_context = 1;
  root_->OnGrpcClose(LastCall("Check").token, 14);
  ASSERT_EQ(host_.replies.size(), 1u);
  EXPECT_EQ(host_.replies[0].code, 503u);
  EXPECT_EQ(host_.replies[0].context, 2u);

  // Fail open: served.
  Configure(Config("FAIL_OPEN", true));
  HttpStreamContext* open = Stream(3);
  ASSERT_EQ(open->OnRequestHeaders(6, true), FilterHeadersStatus::kStopIteration);
  host_.effective_context = 1;
  root_->OnGrpcClose(LastCall("Check").token, 4);  // DEADLINE_EXCEEDED
  EXPECT_EQ(host_.replies.size(), 1u);
  EXPECT_EQ(host_.continued, std::vector<uint32_t>{3});

  // A call that cannot even start (no such cluster) is a failure too, answered at once.
  Configure(Config("FAIL_CLOSE", true));
  host_.grpc_result = proxy_wasm::WasmResult::kBadArgument;
  HttpStreamContext* refused = Stream(4);
  EXPECT_EQ(refused->OnRequestHeaders(6, true), FilterHeadersStatus::kStopIteration);
  ASSERT_EQ(host_.replies.size(), 2u);
  EXPECT_EQ(host_.replies[1].code, 503u);
  EXPECT_EQ(host_.replies[1].context, 4u);
}

TEST_F(HttpFilterTest, AnswerForAFinishedRequestIsDropped) {
  Configure(Config("FAIL_CLOSE", true));
  Request("inbound|9080||");
  HttpStreamContext* stream = Stream(2);
  ASSERT_EQ(stream->OnRequestHeaders(6, true), FilterHeadersStatus::kStopIteration);
  root_->RemoveStream(2);  // the client went away
  AnswerCheck(LastCall("Check"), mixerclient::Code::kPermissionDenied);
  EXPECT_TRUE(host_.replies.empty());
  EXPECT_TRUE(host_.continued.empty());
}

TEST_F(HttpFilterTest, OutboundForwardsItsAttributesAndReportsWithoutChecking) {
  Configure(Config("FAIL_CLOSE", false));
  Request("outbound|9080|v2|reviews.default.svc.cluster.local", "/reviews/0",
          "Zm9yZ2Vk");  // whatever the app sent is replaced
  HttpStreamContext* stream = Stream(2);
  EXPECT_EQ(stream->OnRequestHeaders(6, true), FilterHeadersStatus::kContinue);
  EXPECT_TRUE(host_.grpc_calls.empty());
  const std::string* header = host_.Header(HeaderMapType::kRequestHeaders, "x-istio-attributes");
  ASSERT_NE(header, nullptr);
  std::string bytes;
  ASSERT_TRUE(mixerclient::Base64Decode(*header, &bytes));
  Attributes forwarded;
  ASSERT_TRUE(mixerclient::DecodeAttributesMessage(bytes, &forwarded).ok());
  Attributes expected;
  expected.SetString("source.uid", "kubernetes://pod.default");
  expected.SetString("destination.service.host", "reviews.default.svc.cluster.local");
  EXPECT_EQ(forwarded, expected);
  // The destination service's config was chosen by the cluster's host.
  EXPECT_EQ(*stream->attributes().GetString("destination.service.host"),
            "reviews.default.svc.cluster.local");

  // Sizes and the duration come from what the stream saw, not from properties.
  host_.SetInt64({"response", "flags"}, 0);
  host_.wall_nanos += 2500000;
  EXPECT_EQ(stream->OnResponseBody(1000, false), FilterDataStatus::kContinue);
  EXPECT_EQ(stream->OnResponseBody(234, true), FilterDataStatus::kContinue);
  host_.SetString({"upstream", "address"}, "127.0.1.5:15006");
  host_.SetString({"xds", "upstream_host_metadata", "filter_metadata", "istio", "workload"},
                  "reviews-v2;default;reviews;v2;Kubernetes");
  host_.SetString({"upstream", "uri_san_peer_certificate"},
                  "spiffe://cluster.local/ns/default/sa/bookinfo-reviews");
  host_.headers[HeaderMapType::kResponseHeaders] = {{":status", "200"}, {"content-type", "application/json"}};
  stream->OnLog();
  EXPECT_TRUE(host_.grpc_calls.empty());  // batched
  time_.AdvanceMillis(1100);
  root_->OnTick();
  const std::vector<Attributes> bags = ReportBags(LastCall("Report"));
  ASSERT_EQ(bags.size(), 1u);
  const Attributes& r = bags[0];
  EXPECT_EQ(std::get<int64_t>(*r.Get("response.code")), 200);
  EXPECT_EQ(std::get<int64_t>(*r.Get("response.size")), 1234);
  EXPECT_EQ(std::get<int64_t>(*r.Get("request.size")), 0);  // the headers ended the request
  // Header bytes as Envoy counts them (keys and values), plus the body.
  EXPECT_EQ(std::get<int64_t>(*r.Get("response.total_size")), 7 + 3 + 12 + 16 + 1234);
  EXPECT_GT(std::get<int64_t>(*r.Get("request.total_size")), 0);
  EXPECT_EQ(std::get<mixerclient::Duration>(*r.Get("response.duration")), (mixerclient::Duration{0, 2500000}));
  EXPECT_EQ(*r.GetString("context.proxy_error_code"), "-");
  EXPECT_EQ(*r.GetString("context.reporter.kind"), "outbound");
  EXPECT_EQ(std::get<mixerclient::Bytes>(*r.Get("destination.ip")).data, std::string("\x7f\x00\x01\x05", 4));
  EXPECT_EQ(std::get<int64_t>(*r.Get("destination.port")), 15006);
  EXPECT_EQ(*r.GetString("destination.workload.name"), "reviews-v2");
  EXPECT_EQ(*r.GetString("destination.workload.namespace"), "default");
  EXPECT_EQ(std::get<mixerclient::StringMap>(*r.Get("destination.labels")),
            (mixerclient::StringMap{{"app", "reviews"}, {"version", "v2"}}));
  EXPECT_EQ(*r.GetString("destination.principal"), "cluster.local/ns/default/sa/bookinfo-reviews");
  EXPECT_EQ(std::get<mixerclient::StringMap>(*r.Get("response.headers")).at("content-type"),
            "application/json");
  EXPECT_EQ(host_.MetricValue("http_mixer_filter.outbound.total_report_calls"), 1);
  EXPECT_EQ(host_.MetricValue("http_mixer_filter.outbound.total_remote_report_calls"), 1);
}

TEST_F(HttpFilterTest, AConnectionsPeersAreReadOnceForAllItsRequests) {
  Configure(Config("FAIL_CLOSE", false));
  Request("outbound|9080|v2|reviews.default.svc.cluster.local");
  host_.SetInt64({"connection", "id"}, 7);
  host_.SetString({"upstream", "address"}, "127.0.1.5:15006");
  host_.SetString({"xds", "upstream_host_metadata", "filter_metadata", "istio", "workload"},
                  "reviews-v2;default;reviews;v2;Kubernetes");
  for (uint32_t id = 2; id < 5; ++id) {
    HttpStreamContext* stream = Stream(id);
    stream->OnRequestHeaders(6, true);
    stream->OnLog();
  }
  EXPECT_EQ(host_.property_reads[proxy_wasm::PropertyPath({"connection", "id"})], 3);
  EXPECT_EQ(host_.property_reads[proxy_wasm::PropertyPath({"source", "address"})], 1);
  EXPECT_EQ(host_.property_reads[proxy_wasm::PropertyPath({"connection", "mtls"})], 1);
  EXPECT_EQ(host_.property_reads[proxy_wasm::PropertyPath({"upstream", "address"})], 3);
  EXPECT_EQ(host_.property_reads[proxy_wasm::PropertyPath(
                {"xds", "upstream_host_metadata", "filter_metadata", "istio", "workload"})],
            1);
  // Never read: the stream counted them itself.
  EXPECT_EQ(host_.property_reads.count(proxy_wasm::PropertyPath({"response", "size"})), 0u);
  EXPECT_EQ(host_.property_reads.count(proxy_wasm::PropertyPath({"request", "duration"})), 0u);
  // A new connection is read again.
  host_.SetInt64({"connection", "id"}, 8);
  Stream(9)->OnRequestHeaders(6, true);
  EXPECT_EQ(host_.property_reads[proxy_wasm::PropertyPath({"source", "address"})], 2);
}

TEST_F(HttpFilterTest, ADeniedRequestIsReportedWithTheCheckError) {
  Configure(Config("FAIL_CLOSE", true));
  Request("inbound|9080||");
  HttpStreamContext* stream = Stream(2);
  ASSERT_EQ(stream->OnRequestHeaders(6, true), FilterHeadersStatus::kStopIteration);
  AnswerCheck(LastCall("Check"), mixerclient::Code::kResourceExhausted, "Quota is exhausted");
  host_.SetInt64({"response", "code"}, 429);
  host_.effective_context = 2;
  stream->OnLog();
  root_->OnDone();  // flushes
  const std::vector<Attributes> bags = ReportBags(LastCall("Report"));
  ASSERT_EQ(bags.size(), 1u);
  EXPECT_EQ(std::get<int64_t>(*bags[0].Get("response.code")), 429);
  EXPECT_EQ(std::get<int64_t>(*bags[0].Get("check.error_code")), 8);
  EXPECT_EQ(*bags[0].GetString("check.error_message"), "RESOURCE_EXHAUSTED: Quota is exhausted");
}

TEST_F(HttpFilterTest, QuotaSpecsOfTheServiceAreAskedWithTheCheck) {
  Configure(Config("FAIL_CLOSE", true).replace(
      Config("FAIL_CLOSE", true).find(R"("default": {"disableCheckCalls": false,)"),
      std::string(R"("default": {"disableCheckCalls": false,)").size(),
      R"("default": {"disableCheckCalls": false, "quotaSpec": [{"rules": [{"quotas": [{"quota": "requestcountquota", "charge": 1}]}]}],)"));
  Request("inbound|9080||");
  HttpStreamContext* stream = Stream(2);
  ASSERT_EQ(stream->OnRequestHeaders(6, true), FilterHeadersStatus::kStopIteration);
  mixerclient::CheckRequest request;
  ASSERT_TRUE(mixerclient::DecodeCheckRequest(LastCall("Check").request, &request).ok());
  ASSERT_EQ(request.quotas.count("requestcountquota"), 1u);
  EXPECT_EQ(request.quotas.at("requestcountquota").amount, 1);
}

TEST_F(HttpFilterTest, ABadConfigIsRefusedAndTheOldOneKept) {
  Configure(Config("FAIL_CLOSE", true));
  const std::string bad = R"({"transport": {"networkFailPolicy": {"policy": "SOMETIMES"}}})";
  host_.buffers[proxy_wasm::BufferType::kPluginConfiguration] = bad;
  EXPECT_FALSE(root_->OnConfigure(bad.size()));
  ASSERT_FALSE(host_.logs.empty());
  EXPECT_NE(host_.logs.back().find("mixer filter config rejected: transport.networkFailPolicy.policy"),
            std::string::npos)
      << host_.logs.back();
  EXPECT_FALSE(root_->config().transport.network_fail_policy.fail_open);
  EXPECT_EQ(root_->config().transport.check_cluster, kCluster);
}

TEST_F(HttpFilterTest, ChecksAndReportsTurnedOffLeaveTheRequestAlone) {
  Configure(R"({"serviceConfigs": {"default": {"disableCheckCalls": true, "disableReportCalls": true}},
               "defaultDestinationService": "default"})");
  Request("inbound|9080||", "/", Forwarded("v1"));
  HttpStreamContext* stream = Stream(2);
  EXPECT_EQ(stream->OnRequestHeaders(6, true), FilterHeadersStatus::kContinue);
  stream->OnLog();
  root_->OnDone();
  EXPECT_TRUE(host_.grpc_calls.empty());
  EXPECT_EQ(host_.Header(HeaderMapType::kRequestHeaders, "x-istio-attributes"), nullptr);
  // Only one service config can apply, so neither the cluster nor the headers were read.
  EXPECT_EQ(host_.PropertyReads(), 0);
  EXPECT_EQ(host_.header_map_reads[HeaderMapType::kRequestHeaders], 0);
  EXPECT_TRUE(stream->attributes().empty());
}

TEST_F(HttpFilterTest, AnIdleServiceStillForwardsItsAttributes) {
  // The cluster picks the service (two configs), whose checks and reports are off but
  // which forwards attributes: the next hop gets exactly those, whatever came in.
  Configure(R"({"serviceConfigs": {
      "default": {"disableCheckCalls": true, "disableReportCalls": true},
      "reviews.default.svc.cluster.local": {"disableCheckCalls": true, "disableReportCalls": true,
        "forwardAttributes": {"attributes": {"source.uid": {"stringValue": "kubernetes://pod.default"}}}}},
    "defaultDestinationService": "default"})");
  Request("outbound|9080|v2|reviews.default.svc.cluster.local", "/", Forwarded("v1"));
  HttpStreamContext* stream = Stream(2);
  EXPECT_EQ(stream->OnRequestHeaders(6, true), FilterHeadersStatus::kContinue);
  int headers = 0;
  for (const auto& [key, value] : host_.headers[HeaderMapType::kRequestHeaders]) {
    headers += key == "x-istio-attributes" ? 1 : 0;
  }
  EXPECT_EQ(headers, 1);
  std::string bytes;
  ASSERT_TRUE(mixerclient::Base64Decode(*host_.Header(HeaderMapType::kRequestHeaders, "x-istio-attributes"), &bytes));
  Attributes forwarded;
  ASSERT_TRUE(mixerclient::DecodeAttributesMessage(bytes, &forwarded).ok());
  Attributes expected;
  expected.SetString("source.uid", "kubernetes://pod.default");
  EXPECT_EQ(forwarded, expected);
  EXPECT_EQ(host_.property_reads[proxy_wasm::PropertyPath({"xds", "cluster_name"})], 1);
  EXPECT_EQ(host_.header_map_reads[HeaderMapType::kRequestHeaders], 0);
}

TEST_F(HttpFilterTest, AReportedRequestReadsEachValueOnce) {
  // An inbound sidecar's shape: one service config, also the default. Per request: the
  // cluster (for destination.port), the connection's id, the upstream's address and the
  // response flags; each header map once. The connection's peers only the first time.
  Configure(R"({"serviceConfigs": {"inbound|9080||": {"disableCheckCalls": true}},
               "defaultDestinationService": "inbound|9080||",
               "transport": {"checkCluster": "c", "reportCluster": "c"}})");
  Request("inbound|9080||");
  host_.SetInt64({"connection", "id"}, 7);
  host_.SetInt64({"response", "flags"}, 0);
  host_.headers[HeaderMapType::kResponseHeaders] = {{":status", "200"}};
  for (uint32_t id = 2; id < 5; ++id) {
    HttpStreamContext* stream = Stream(id);
    EXPECT_EQ(stream->OnRequestHeaders(6, true), FilterHeadersStatus::kContinue);
    EXPECT_EQ(std::get<int64_t>(*stream->attributes().Get("destination.port")), 9080);
    stream->OnLog();
    root_->RemoveStream(id);
  }
  EXPECT_EQ(host_.property_reads[proxy_wasm::PropertyPath({"xds", "cluster_name"})], 3);
  EXPECT_EQ(host_.property_reads[proxy_wasm::PropertyPath({"connection", "id"})], 3);
  EXPECT_EQ(host_.property_reads[proxy_wasm::PropertyPath({"upstream", "address"})], 3);
  EXPECT_EQ(host_.property_reads[proxy_wasm::PropertyPath({"response", "flags"})], 3);
  EXPECT_EQ(host_.property_reads[proxy_wasm::PropertyPath({"connection", "mtls"})], 1);
  EXPECT_EQ(host_.header_map_reads[HeaderMapType::kRequestHeaders], 3);
  EXPECT_EQ(host_.header_map_reads[HeaderMapType::kResponseHeaders], 3);
  // + once: source.address, mtls, both certificates, the requested server name.
  EXPECT_EQ(host_.PropertyReads(), 3 * 4 + 5);
}

}  // namespace
}  // namespace mixer_filter
