// A deterministic run through the whole library: compression, the wire codec, the check and
// quota caches, report batching. Built natively and for wasm32-wasi; wasm_test.py runs both
// and compares what they print byte for byte (the wasm build is 32-bit: a size or
// endianness slip would show), and the reactor build links the way the Envoy filter does.
#include <cstdio>
#include <string>
#include <vector>

#include "mixerclient/client.h"
#include "mixerclient/codec.h"
#include "mixerclient/compressor.h"

namespace mixerclient {
namespace {

std::string Hex(std::string_view s) {
  static const char d[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

Attributes Request(const std::string& version) {
  Attributes a;
  a.SetStringMap("source.labels", {{"app", "reviews"}, {"version", version}});
  a.SetStringMap("destination.labels", {{"app", "ratings"}});
  a.SetString("destination.service.host", "ratings.default.svc.cluster.local");
  a.SetString("request.path", "/ratings/0");
  a.SetInt64("destination.port", 9080);
  a.SetDouble("x.ratio", -0.25);
  a.SetBool("connection.mtls", true);
  a.SetBytes("source.ip", std::string("\x7f\x00\x01\x05", 4));
  a.SetTimestamp("request.time", Timestamp{1700000000, 123456789});
  a.SetDuration("response.duration", Duration{0, 2500000});
  return a;
}

}  // namespace

// Appends one line per step to *out; returns the number of failed expectations.
int RunSelfTest(std::string* out) {
  int failures = 0;
  const auto expect = [&](bool ok, const char* what) {
    if (!ok) {
      ++failures;
      *out += std::string("FAIL ") + what + "\n";
    }
  };
  FakeTimeSource time;
  std::vector<std::string> checks, reports;
  std::vector<TransportDone> pending;
  FunctionTransport transport(
      [&](std::string r, TransportDone d) {
        checks.push_back(std::move(r));
        pending.push_back(std::move(d));
      },
      [&](std::string r, TransportDone d) {
        reports.push_back(std::move(r));
        d(Status::Ok(), "");
      });
  ClientOptions options;
  options.deduplication_id_base = "selftest-";
  Client client(options, &transport, &time);

  int answered = 0;
  Status last;
  const auto done = [&](const CheckResult& r) {
    ++answered;
    last = r.status;
  };
  client.Check(Request("v3"), {{"requestcount.quota.istio-system", 1}}, done);
  expect(checks.size() == 1, "a miss goes to Mixer");
  *out += "check_request " + Hex(checks.back()) + "\n";

  CheckResponse deny;
  PreconditionResult& p = deny.precondition.emplace();
  p.status = RpcStatus{7, "Not allowed", {}};
  p.valid_use_count = 200;
  p.valid_duration = Duration{10, 0};
  ReferencedAttributes& ref = p.referenced_attributes.emplace();
  ref.words = {"version", "app"};
  ref.attribute_matches = {{5, kExact, "", -1}, {156, kExact, "", -2}};
  const std::string deny_bytes = EncodeCheckResponse(deny);
  *out += "check_response " + Hex(deny_bytes) + "\n";
  pending.back()(Status::Ok(), deny_bytes);
  expect(answered == 1 && last.code() == Code::kPermissionDenied, "the denial reaches the caller");

  Attributes again = Request("v3");
  again.SetString("request.path", "/ratings/1");
  client.Check(again, {}, done);
  expect(answered == 2 && checks.size() == 1 && last.code() == Code::kPermissionDenied, "a cache hit");

  for (int i = 0; i < 3; ++i) {
    Attributes r = Request(i == 2 ? "v2" : "v3");
    r.SetInt64("response.code", i == 0 ? 200 : 403);
    client.Report(r);
  }
  time.AdvanceMillis(1000);
  client.Tick();
  expect(reports.size() == 1, "the batch is sent after max_batch_time_ms");
  if (!reports.empty()) *out += "report_request " + Hex(reports.back()) + "\n";

  ReportRequest decoded;
  expect(!reports.empty() && DecodeReportRequest(reports.back(), &decoded).ok(), "the batch decodes");
  expect(decoded.attributes.size() == 3, "three entries");
  Attributes state;
  for (const CompressedAttributes& entry : decoded.attributes) {
    Attributes delta;
    expect(Decompress(entry, decoded.default_words, static_cast<int32_t>(decoded.global_word_count), &delta).ok(),
           "an entry decompresses");
    state.Merge(delta);
  }
  *out += "last_report " + state.DebugString() + "\n";
  *out += "attributes_message " + Hex(EncodeAttributesMessage(Request("v1"))) + "\n";
  const ClientStats stats = client.stats();
  *out += "stats checks=" + std::to_string(stats.total_check_calls) + " hits=" +
          std::to_string(stats.total_check_cache_hits) + " reports=" + std::to_string(stats.total_report_calls) + "\n";
  return failures;
}

}  // namespace mixerclient

#ifdef MIXERCLIENT_WASM_REACTOR
// What a proxy-wasm module looks like to its host: no main, exported entry points.
extern "C" __attribute__((export_name("mixerclient_selftest"))) int mixerclient_selftest() {
  std::string out;
  return mixerclient::RunSelfTest(&out);
}
#else
int main() {
  std::string out;
  const int failures = mixerclient::RunSelfTest(&out);
  std::fputs(out.c_str(), stdout);
  std::printf("%s\n", failures == 0 ? "selftest ok" : "selftest FAILED");
  return failures == 0 ? 0 : 1;
}
#endif
