// Micro-benchmark of the native core: the cost of one Check with a warm cache (with and
// without quota), of one Check that misses (compress, encode, decode the answer, store it),
// and of one Report (delta against the previous one, compression into the batch, and its
// share of encoding the batch when it is sent). Bookinfo-sized attributes: 30 attributes,
// request headers and labels as string maps.
//
//   bazel run -c opt //mixerclient/bench:client_bench [-- --seconds 1 --json out.json]
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "mixerclient/client.h"
#include "mixerclient/codec.h"

namespace mixerclient {
namespace {

Attributes BookinfoRequest(int i) {
  Attributes a;
  a.SetString("source.uid", "kubernetes://reviews-v3-7d9c8b7f4-x2lk.default");
  a.SetString("source.namespace", "default");
  a.SetString("source.principal", "cluster.local/ns/default/sa/bookinfo-reviews");
  a.SetString("source.workload.name", "reviews-v3");
  a.SetString("source.workload.namespace", "default");
  a.SetStringMap("source.labels", {{"app", "reviews"}, {"version", "v3"}, {"pod-template-hash", "7d9c8b7f4"}});
  a.SetString("destination.uid", "kubernetes://ratings-v1-6c7b5d9f8-9qwe.default");
  a.SetString("destination.namespace", "default");
  a.SetString("destination.service.host", "ratings.default.svc.cluster.local");
  a.SetString("destination.service.name", "ratings");
  a.SetString("destination.service.namespace", "default");
  a.SetString("destination.workload.name", "ratings-v1");
  a.SetStringMap("destination.labels", {{"app", "ratings"}, {"version", "v1"}});
  a.SetBytes("destination.ip", std::string("\x7f\x00\x01\x07", 4));
  a.SetInt64("destination.port", 9080);
  a.SetBytes("source.ip", std::string("\x7f\x00\x01\x06", 4));
  a.SetString("request.path", "/ratings/" + std::to_string(i % 7));
  a.SetString("request.url_path", "/ratings/" + std::to_string(i % 7));
  a.SetString("request.host", "ratings:9080");
  a.SetString("request.method", "GET");
  a.SetString("request.scheme", "http");
  a.SetString("request.useragent", "python-requests/2.31.0");
  a.SetString("request.id", "a3f1c2e4-" + std::to_string(i));
  a.SetInt64("request.size", 0);
  a.SetTimestamp("request.time", Timestamp{1764680000 + i / 1000, (i % 1000) * 1000000});
  a.SetStringMap("request.headers", {{":authority", "ratings:9080"},
                                     {":method", "GET"},
                                     {":path", "/ratings/" + std::to_string(i % 7)},
                                     {"accept", "*/*"},
                                     {"accept-encoding", "gzip, deflate"},
                                     {"user-agent", "python-requests/2.31.0"},
                                     {"x-b3-sampled", "1"},
                                     {"x-b3-spanid", "0123456789abcdef"},
                                     {"x-b3-traceid", "0123456789abcdef0123456789abcdef"},
                                     {"x-request-id", "a3f1c2e4-" + std::to_string(i)}});
  a.SetString("context.protocol", "http");
  a.SetString("context.reporter.kind", "inbound");
  a.SetString("context.reporter.uid", "kubernetes://ratings-v1-6c7b5d9f8-9qwe.default");
  a.SetBool("connection.mtls", true);
  return a;
}

void AddResponse(Attributes* a, int i) {
  a->SetInt64("response.code", i % 50 == 0 ? 503 : 200);
  a->SetInt64("response.size", 48);
  a->SetDuration("response.duration", Duration{0, 1500000 + (i % 13) * 10000});
  a->SetTimestamp("response.time", Timestamp{1764680000 + i / 1000, (i % 1000) * 1000000 + 1500000});
  a->SetStringMap("response.headers", {{":status", "200"}, {"content-type", "application/json"}, {"server", "envoy"}});
}

// Mixer's answer to the deny-label sample: it read source.labels["version"] and
// destination.labels["app"], and found source.principal absent... (a typical shape).
std::string DenyLabelAnswer(int32_t code) {
  CheckResponse r;
  PreconditionResult& p = r.precondition.emplace();
  p.status = RpcStatus{code, code ? "Not allowed" : "", {}};
  p.valid_duration = Duration{10, 0};
  p.valid_use_count = 1 << 30;
  ReferencedAttributes& ref = p.referenced_attributes.emplace();
  ref.words = {"version", "app"};
  ref.attribute_matches = {{5, kExact, "", -1}, {156, kExact, "", -2}, {155, kExact, "", 0}};
  QuotaResult& q = r.quotas["requestcount.quota.istio-system"];
  q.granted_amount = 1 << 30;
  q.valid_duration = Duration{60, 0};
  q.referenced_attributes.emplace().attribute_matches = {{193, kExact, "", 0}};
  return EncodeCheckResponse(r);
}

// This thread's CPU time: on a shared machine, wall time would count other processes' turns.
double Seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Result {
  const char* name;
  double ns_per_op;
  long ops;
};

template <typename Op>
Result Measure(const char* name, double seconds, Op&& op) {
  for (int i = 0; i < 1000; ++i) op(i);  // warm up
  long ops = 0;
  const double start = Seconds();
  double now = start;
  while (now - start < seconds) {
    for (int i = 0; i < 1000; ++i) op(static_cast<int>(ops + i));
    ops += 1000;
    now = Seconds();
  }
  return Result{name, (now - start) * 1e9 / static_cast<double>(ops), ops};
}

}  // namespace
}  // namespace mixerclient

int main(int argc, char** argv) {
  using namespace mixerclient;
  double seconds = 1.0;
  const char* json = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) seconds = std::atof(argv[++i]);
    else if (std::strcmp(argv[i], "--json") == 0 && i + 1 < argc) json = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--seconds S] [--json FILE]\n", argv[0]);
      return 2;
    }
  }

  SteadyTimeSource time;
  const std::string allow = DenyLabelAnswer(0);
  size_t report_bytes = 0, report_batches = 0;
  FunctionTransport transport([&](std::string, TransportDone done) { done(Status::Ok(), allow); },
                              [&](std::string request, TransportDone done) {
                                report_bytes += request.size();
                                ++report_batches;
                                done(Status::Ok(), "");
                              });
  std::vector<Attributes> requests;
  for (int i = 0; i < 64; ++i) requests.push_back(BookinfoRequest(i));
  const std::vector<QuotaRequirement> quota = {{"requestcount.quota.istio-system", 1}};
  std::vector<Result> results;
  long checks_ok = 0;
  CheckDone done = [&](const CheckResult& r) { checks_ok += r.status.ok(); };

  {
    Client client(ClientOptions(), &transport, &time);
    client.Check(requests[0], {}, done);  // fills the cache
    results.push_back(Measure("check, warm cache", seconds, [&](int i) { client.Check(requests[i & 63], {}, done); }));
    const ClientStats s = client.stats();
    if (s.total_remote_check_calls != 1) std::fprintf(stderr, "warning: %llu remote checks\n", (unsigned long long)s.total_remote_check_calls);
  }
  {
    Client client(ClientOptions(), &transport, &time);
    client.Check(requests[0], quota, done);
    client.Check(requests[0], quota, done);  // the quota pool is prefetched behind this one
    results.push_back(
        Measure("check + quota, warm caches", seconds, [&](int i) { client.Check(requests[i & 63], quota, done); }));
  }
  {
    ClientOptions off;
    off.check.num_entries = 0;
    Client client(off, &transport, &time);
    results.push_back(Measure("check, cache disabled (encode, decode)", seconds,
                              [&](int i) { client.Check(requests[i & 63], {}, done); }));
  }
  std::vector<Attributes> reports;
  for (int i = 0; i < 64; ++i) {
    reports.push_back(requests[i]);
    AddResponse(&reports.back(), i);
  }
  {
    // Each report is a fresh bag (a copy here; the filter builds one per request), moved in.
    Client client(ClientOptions(), &transport, &time);
    results.push_back(Measure("report (batched, delta-encoded)", seconds, [&](int i) { client.Report(reports[i & 63]); }));
    client.Flush();
    results.push_back(Measure("  of which: copying the bag", seconds, [&](int i) {
      Attributes copy = reports[i & 63];
      if (copy.empty()) std::abort();
    }));
  }
  const double bytes_per_report = report_batches ? static_cast<double>(report_bytes) / (report_batches * 1000.0) : 0;

  std::printf("mixerclient native micro-benchmark (%s), %.1f s of CPU per case\n", "Bookinfo-sized attributes", seconds);
  for (const Result& r : results) std::printf("  %-40s %9.0f CPU ns/op  (%ld ops)\n", r.name, r.ns_per_op, r.ops);
  std::printf("  %-40s %9.0f bytes/report (1000-report batches)\n", "report batch size", bytes_per_report);
  if (json != nullptr) {
    FILE* f = std::fopen(json, "w");
    if (f == nullptr) {
      std::perror(json);
      return 1;
    }
    std::fprintf(f, "{\n  \"benchmark\": \"mixerclient_native\",\n  \"ns_per_op\": {\n");
    for (size_t i = 0; i < results.size(); ++i) {
      std::fprintf(f, "    \"%s\": %.1f%s\n", results[i].name, results[i].ns_per_op, i + 1 < results.size() ? "," : "");
    }
    std::fprintf(f, "  },\n  \"bytes_per_report\": %.1f\n}\n", bytes_per_report);
    std::fclose(f);
  }
  return checks_ok > 0 ? 0 : 1;
}
