// The Mixer HTTP filter's own CPU per request, natively, with a fake host that answers at
// once: what the filter's logic (attribute collection, mixerclient's check cache and report
// batching) costs apart from the ABI's host calls and V8. Compare with the per-request CPU
// the data-plane benchmark measures in Envoy (tools/bench/dataplane.py).
//   bazel run -c opt //proxy/extensions/mixer/bench:filter_bench
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <memory>
#include <string>

#include "mixerclient/codec.h"
#include "mixerclient/time_source.h"
#include "proxy/extensions/mixer/fake_host.h"
#include "proxy/extensions/mixer/http_filter.h"

using mixer_filter::HttpRootContext;
using mixer_filter::HttpStreamContext;
using mixer_filter::testing::FakeHost;
using proxy_wasm::HeaderMapType;

namespace {

std::string Config(bool inbound, bool cache) {
  std::string kind = inbound ? "inbound" : "outbound";
  return std::string(R"({"transport": {"checkCluster": "c", "reportCluster": "c", "disableCheckCache": )") +
         (cache ? "false" : "true") + R"(},
    "defaultDestinationService": "default",
    "serviceConfigs": {"default": {"disableCheckCalls": )" + (inbound ? "false" : "true") + R"(,
      "mixerAttributes": {"attributes": {
        "destination.service.host": {"stringValue": "details.default.svc.cluster.local"},
        "destination.service.name": {"stringValue": "details"},
        "destination.service.namespace": {"stringValue": "default"},
        "destination.service.uid": {"stringValue": "istio://default/services/details"}}}}},
    "mixerAttributes": {"attributes": {
      "context.reporter.kind": {"stringValue": ")" + kind + R"("},
      "context.reporter.uid": {"stringValue": "kubernetes://details-v1.default"},
      "destination.uid": {"stringValue": "kubernetes://details-v1.default"},
      "destination.namespace": {"stringValue": "default"},
      "destination.workload.name": {"stringValue": "details-v1"},
      "destination.workload.namespace": {"stringValue": "default"},
      "destination.labels": {"stringMapValue": {"entries": {"app": "details", "version": "v1"}}}}},
    "forwardAttributes": {"attributes": {
      "source.uid": {"stringValue": "kubernetes://productpage-v1.default"},
      "source.labels": {"stringMapValue": {"entries": {"app": "productpage", "version": "v1"}}},
      "source.workload.name": {"stringValue": "productpage-v1"}}}})";
}

void Answer(FakeHost& host, HttpRootContext& root) {
  for (const auto& call : host.grpc_calls) {
    std::string response;
    if (call.method == "Check") {
      mixerclient::CheckResponse check;
      mixerclient::PreconditionResult precondition;
      precondition.status = mixerclient::RpcStatus{0, "", {}};
      precondition.valid_duration = mixerclient::Duration{10, 0};
      precondition.valid_use_count = 1000000;
      precondition.referenced_attributes = mixerclient::ReferencedAttributes{};
      check.precondition = precondition;
      response = mixerclient::EncodeCheckResponse(check);
    }
    host.buffers[proxy_wasm::BufferType::kGrpcReceiveBuffer] = response;
    root.OnGrpcReceive(call.token, response.size());
  }
  host.grpc_calls.clear();
}

void Run(const char* name, bool inbound, bool cache, int n) {
  FakeHost host;
  mixerclient::FakeTimeSource time;
  HttpRootContext root(1, "mixer", &host, &time);
  std::string error;
  if (!root.Configure(Config(inbound, cache), &error)) {
    std::printf("config: %s\n", error.c_str());
    return;
  }
  host.SetString({"xds", "cluster_name"}, inbound ? "inbound|9080||" : "outbound|9080||details.default.svc.cluster.local");
  host.SetString({"source", "address"}, "127.0.1.2:51234");
  host.SetBool({"connection", "mtls"}, true);
  host.SetInt64({"connection", "id"}, 42);  // one kept-alive connection, as between sidecars
  host.SetString({"connection", "uri_san_peer_certificate"}, "spiffe://cluster.local/ns/default/sa/bookinfo-productpage");
  host.SetString({"connection", "uri_san_local_certificate"}, "spiffe://cluster.local/ns/default/sa/bookinfo-details");
  host.SetInt64({"response", "code"}, 200);
  host.SetInt64({"request", "size"}, 0);
  host.SetInt64({"response", "size"}, 178);
  host.SetInt64({"request", "total_size"}, 240);
  host.SetInt64({"response", "total_size"}, 350);
  host.SetInt64({"request", "duration"}, 1500000);
  host.SetInt64({"response", "flags"}, 0);
  host.SetString({"upstream", "address"}, "127.0.1.3:9080");
  const proxy_wasm::HeaderPairs request = {
      {":authority", "details:9080"}, {":path", "/details/0"}, {":method", "GET"}, {":scheme", "http"},
      {"user-agent", "hey/0.0.1"}, {"accept-encoding", "gzip"}, {"x-forwarded-proto", "http"},
      {"x-request-id", "2f4e5c3a-0c8b-4b5e-9d7e-123456789abc"},
      {"x-envoy-expected-rq-timeout-ms", "15000"}};
  const proxy_wasm::HeaderPairs response = {{":status", "200"}, {"content-type", "application/json"},
                                            {"content-length", "178"}, {"date", "Wed, 02 Dec 2026 16:00:00 GMT"},
                                            {"server", "envoy"}, {"x-envoy-upstream-service-time", "1"}};
  uint32_t id = 100;
  auto one = [&]() {
    host.headers[HeaderMapType::kRequestHeaders] = request;
    host.headers[HeaderMapType::kResponseHeaders] = response;
    root.AddStream(root.NewStream(id));
    auto* stream = static_cast<HttpStreamContext*>(root.FindStream(id));
    stream->OnRequestHeaders(9, true);
    Answer(host, root);
    stream->OnResponseHeaders(6, true);
    stream->OnLog();
    root.RemoveStream(id);
    ++id;
    time.AdvanceNanos(1000000);  // 1000 requests a second
    if (id % 200 == 0) {
      root.OnTick();
      Answer(host, root);
    }
  };
  for (int i = 0; i < 2000; ++i) one();  // warm
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) one();
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  std::printf("%-34s %7.2f us per request\n", name, us / n);
}

}  // namespace

// With an argument (inbound, nocache, outbound) only that case runs, e.g. under
// `perf stat -e instructions:u`, which counts the same on a busy machine as on an idle one.
int main(int argc, char** argv) {
  const std::string only = argc > 1 ? argv[1] : "";
  const int n = argc > 2 ? std::atoi(argv[2]) : 50000;
  if (only.empty() || only == "inbound") Run("inbound: check (cache hit) + report", true, true, n);
  if (only.empty() || only == "nocache") Run("inbound: check (no cache) + report", true, false, n);
  if (only.empty() || only == "outbound") Run("outbound: report only", false, true, n);
  return 0;
}
