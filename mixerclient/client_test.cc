#include "mixerclient/client.h"

#include <deque>

#include "gtest/gtest.h"
#include "mixerclient/codec.h"
#include "mixerclient/global_dictionary.h"

namespace mixerclient {
namespace {

// A transport that holds each call until the test answers it.
class FakeMixer {
 public:
  struct Call {
    std::string request;
    TransportDone done;
  };
  FakeMixer()
      : transport_([this](std::string r, TransportDone d) { checks.push_back({std::move(r), std::move(d)}); },
                   [this](std::string r, TransportDone d) { reports.push_back({std::move(r), std::move(d)}); }) {}
  Transport* transport() { return &transport_; }

  CheckRequest NextCheck() {
    CheckRequest r;
    EXPECT_TRUE(DecodeCheckRequest(checks.front().request, &r).ok());
    return r;
  }
  void AnswerCheck(const CheckResponse& response) {
    Call call = std::move(checks.front());
    checks.pop_front();
    call.done(Status::Ok(), EncodeCheckResponse(response));
  }
  void FailCheck(Status status) {
    Call call = std::move(checks.front());
    checks.pop_front();
    call.done(status, "");
  }

  std::deque<Call> checks;
  std::deque<Call> reports;

 private:
  FunctionTransport transport_;
};

CheckResponse Answer(int32_t code, std::vector<AttributeMatch> matches = {{17, kExact, "", 0}}) {
  CheckResponse r;
  PreconditionResult& p = r.precondition.emplace();
  p.status = RpcStatus{code, code ? "Not allowed" : "", {}};
  p.valid_use_count = 200;
  p.valid_duration = Duration{10, 0};
  p.referenced_attributes.emplace().attribute_matches = std::move(matches);
  return r;
}

Attributes Request(const std::string& path) {
  Attributes a;
  a.SetString("request.path", path);
  a.SetString("destination.service", "productpage.default.svc.cluster.local");
  return a;
}

class ClientTest : public ::testing::Test {
 protected:
  std::unique_ptr<Client> Make(ClientOptions options = ClientOptions()) {
    if (options.deduplication_id_base.empty()) options.deduplication_id_base = "test-";
    return std::make_unique<Client>(options, mixer_.transport(), &time_);
  }
  FakeTimeSource time_;
  FakeMixer mixer_;
};

TEST_F(ClientTest, AMissGoesToMixerAndTheAnswerIsCached) {
  auto client = Make();
  std::vector<CheckResult> results;
  client->Check(Request("/a"), {}, [&](const CheckResult& r) { results.push_back(r); });
  ASSERT_EQ(mixer_.checks.size(), 1u);
  const CheckRequest sent = mixer_.NextCheck();
  EXPECT_EQ(sent.global_word_count, 222u);
  EXPECT_EQ(sent.deduplication_id, "test-0");
  EXPECT_TRUE(sent.attributes.has_value());
  EXPECT_TRUE(results.empty());
  mixer_.AnswerCheck(Answer(7));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status.code(), Code::kPermissionDenied);
  EXPECT_FALSE(results[0].check_cache_hit);

  client->Check(Request("/a"), {}, [&](const CheckResult& r) { results.push_back(r); });
  ASSERT_EQ(results.size(), 2u);  // answered at once
  EXPECT_TRUE(results[1].check_cache_hit);
  EXPECT_EQ(results[1].status.code(), Code::kPermissionDenied);
  EXPECT_TRUE(mixer_.checks.empty());
  client->Check(Request("/b"), {}, [&](const CheckResult& r) { results.push_back(r); });
  EXPECT_EQ(mixer_.checks.size(), 1u);
  EXPECT_EQ(mixer_.NextCheck().deduplication_id, "test-1");
  const ClientStats stats = client->stats();
  EXPECT_EQ(stats.total_check_calls, 3u);
  EXPECT_EQ(stats.total_check_cache_hits, 1u);
  EXPECT_EQ(stats.total_remote_check_calls, 2u);
}

TEST_F(ClientTest, BusyTrafficIsServedFromTheCacheWhileItsAnswerIsRefreshedAhead) {
  auto client = Make();
  std::vector<CheckResult> results;
  auto done = [&](const CheckResult& r) { results.push_back(r); };
  client->Check(Request("/a"), {}, done);
  mixer_.AnswerCheck(Answer(0));  // 200 uses: refreshed when 20 are left
  for (int i = 0; i < 179; ++i) client->Check(Request("/a"), {}, done);
  EXPECT_TRUE(mixer_.checks.empty());
  client->Check(Request("/a"), {}, done);  // the 180th use: answered, and asked again
  ASSERT_EQ(results.size(), 181u);
  EXPECT_TRUE(results.back().check_cache_hit);
  ASSERT_EQ(mixer_.checks.size(), 1u);
  EXPECT_EQ(mixer_.NextCheck().deduplication_id, "test-1");
  // Until Mixer answers, the old answer keeps serving; no request waits.
  for (int i = 0; i < 10; ++i) client->Check(Request("/a"), {}, done);
  EXPECT_EQ(results.size(), 191u);
  EXPECT_EQ(mixer_.checks.size(), 1u);
  mixer_.AnswerCheck(Answer(7));  // the new answer replaces the old one
  for (int i = 0; i < 100; ++i) client->Check(Request("/a"), {}, done);
  ASSERT_EQ(results.size(), 291u);
  EXPECT_EQ(results.back().status.code(), Code::kPermissionDenied);
  EXPECT_TRUE(mixer_.checks.empty());
  const ClientStats stats = client->stats();
  EXPECT_EQ(stats.total_remote_check_calls, 1u);
  EXPECT_EQ(stats.total_remote_check_refreshes, 1u);
  EXPECT_EQ(stats.total_check_cache_misses, 1u);
}

TEST_F(ClientTest, AFailedRefreshLeavesTheOldAnswerToRunOut) {
  auto client = Make();
  std::vector<CheckResult> results;
  auto done = [&](const CheckResult& r) { results.push_back(r); };
  client->Check(Request("/a"), {}, done);
  mixer_.AnswerCheck(Answer(0));
  for (int i = 0; i < 180; ++i) client->Check(Request("/a"), {}, done);
  mixer_.FailCheck(Status(Code::kUnavailable, "connection refused"));
  for (int i = 0; i < 20; ++i) client->Check(Request("/a"), {}, done);  // the last 20 uses
  EXPECT_TRUE(mixer_.checks.empty());
  client->Check(Request("/a"), {}, done);  // run out: this one asks and waits
  EXPECT_EQ(results.size(), 201u);
  ASSERT_EQ(mixer_.checks.size(), 1u);
  mixer_.AnswerCheck(Answer(0));
  EXPECT_EQ(results.size(), 202u);
  EXPECT_EQ(client->stats().total_remote_check_calls, 2u);
}

TEST_F(ClientTest, FailOpenLetsRequestsThroughWhenMixerIsDown) {
  auto client = Make();
  CheckResult result;
  client->Check(Request("/a"), {}, [&](const CheckResult& r) { result = r; });
  mixer_.FailCheck(Status(Code::kUnavailable, "connection refused"));
  EXPECT_TRUE(result.status.ok());
  EXPECT_EQ(client->stats().check_transport_errors, 1u);
  // Nothing was cached: the next request asks again.
  client->Check(Request("/a"), {}, [&](const CheckResult& r) { result = r; });
  EXPECT_EQ(mixer_.checks.size(), 1u);
}

TEST_F(ClientTest, FailCloseRejectsWithUnavailable) {
  ClientOptions options;
  options.check.network_fail_open = false;
  auto client = Make(options);
  CheckResult result;
  client->Check(Request("/a"), {}, [&](const CheckResult& r) { result = r; });
  mixer_.FailCheck(Status(Code::kDeadlineExceeded, "deadline"));
  EXPECT_EQ(result.status.code(), Code::kUnavailable);
  EXPECT_EQ(HttpStatusFor(result.status.code()), 503);
  EXPECT_NE(result.status.message().find("DEADLINE_EXCEEDED"), std::string::npos);
}

TEST_F(ClientTest, AGarbledAnswerIsAFailure) {
  ClientOptions options;
  options.check.network_fail_open = false;
  auto client = Make(options);
  CheckResult result;
  client->Check(Request("/a"), {}, [&](const CheckResult& r) { result = r; });
  FakeMixer::Call call = std::move(mixer_.checks.front());
  mixer_.checks.pop_front();
  call.done(Status::Ok(), std::string("\x12\x05", 2));
  EXPECT_EQ(result.status.code(), Code::kUnavailable);
}

TEST_F(ClientTest, QuotaIsAskedWithTheCheckThenServedFromThePool) {
  auto client = Make();
  const std::vector<QuotaRequirement> quota = {{"requestcount.quota.istio-system", 1}};
  CheckResult result;
  client->Check(Request("/a"), quota, [&](const CheckResult& r) { result = r; });
  CheckRequest sent = mixer_.NextCheck();
  EXPECT_EQ(sent.quotas.at("requestcount.quota.istio-system").amount, 1);
  EXPECT_FALSE(sent.quotas.at("requestcount.quota.istio-system").best_effort);
  CheckResponse ok = Answer(0);
  ok.quotas["requestcount.quota.istio-system"].granted_amount = 1;
  mixer_.AnswerCheck(ok);
  EXPECT_TRUE(result.status.ok());

  // A check cache hit: quota comes from a prefetched pool; the answer is immediate and a
  // best-effort prefetch goes out behind it.
  result = CheckResult();
  client->Check(Request("/a"), quota, [&](const CheckResult& r) { result = r; });
  EXPECT_TRUE(result.status.ok());
  EXPECT_TRUE(result.check_cache_hit);
  EXPECT_TRUE(result.quota_cache_hit);
  ASSERT_EQ(mixer_.checks.size(), 1u);
  sent = mixer_.NextCheck();
  EXPECT_EQ(sent.quotas.at("requestcount.quota.istio-system").amount, 10);
  EXPECT_TRUE(sent.quotas.at("requestcount.quota.istio-system").best_effort);
  CheckResponse none = Answer(0);
  none.quotas["requestcount.quota.istio-system"].granted_amount = 0;
  mixer_.AnswerCheck(none);
  EXPECT_EQ(client->stats().total_remote_quota_prefetches, 1u);
  // The lent amount was taken back: the pool is empty, so the next request is rejected.
  client->Check(Request("/a"), quota, [&](const CheckResult& r) { result = r; });
  EXPECT_EQ(result.status.code(), Code::kResourceExhausted);
  EXPECT_EQ(HttpStatusFor(result.status.code()), 429);
}

TEST_F(ClientTest, ReportsAreBatchedAndSentOnTick) {
  auto client = Make();
  client->Report(Request("/a"));
  client->Report(Request("/b"));
  EXPECT_TRUE(mixer_.reports.empty());
  EXPECT_EQ(client->Tick(), 1000);
  time_.AdvanceMillis(1000);
  EXPECT_EQ(client->Tick(), -1);
  ASSERT_EQ(mixer_.reports.size(), 1u);
  ReportRequest sent;
  ASSERT_TRUE(DecodeReportRequest(mixer_.reports.front().request, &sent).ok());
  EXPECT_EQ(sent.attributes.size(), 2u);
  mixer_.reports.front().done(Status::Ok(), "");
  EXPECT_EQ(client->stats().total_remote_report_calls, 1u);
  EXPECT_EQ(client->stats().report_batches_in_flight, 0);
}

TEST_F(ClientTest, ReportsNeverPileUpWhileMixerIsSlow) {
  ClientOptions options;
  options.report.max_batch_entries = 1;
  options.report.max_in_flight_batches = 2;
  auto client = Make(options);
  for (int i = 0; i < 5; ++i) client->Report(Request("/" + std::to_string(i)));
  EXPECT_EQ(mixer_.reports.size(), 2u);
  ClientStats stats = client->stats();
  EXPECT_EQ(stats.report_batches_dropped, 3u);
  EXPECT_EQ(stats.report_entries_dropped, 3u);
  mixer_.reports.front().done(Status(Code::kUnavailable, "down"), "");
  stats = client->stats();
  EXPECT_EQ(stats.report_batches_failed, 1u);
  EXPECT_EQ(stats.report_batches_in_flight, 1);
}

TEST_F(ClientTest, ADictionaryMismatchFallsBackToTheBaseWords) {
  auto client = Make();
  CheckResult result;
  client->Check(Request("/a"), {}, [&](const CheckResult& r) { result = r; });
  mixer_.FailCheck(Status(Code::kInvalidArgument, "invalid attributes: inconsistent global dictionary versions used"));
  EXPECT_EQ(client->stats().global_word_count, kBaseGlobalWordCount);
  client->Check(Request("/a"), {}, [&](const CheckResult& r) { result = r; });
  EXPECT_EQ(mixer_.NextCheck().global_word_count, 111u);
}

TEST_F(ClientTest, AnswersAfterTheClientIsGoneAreIgnored) {
  auto client = Make();
  bool called = false;
  client->Check(Request("/a"), {}, [&](const CheckResult&) { called = true; });
  client->Report(Request("/a"));
  client.reset();  // flushes the pending report
  EXPECT_EQ(mixer_.reports.size(), 1u);
  mixer_.AnswerCheck(Answer(0));
  mixer_.reports.front().done(Status::Ok(), "");
  EXPECT_FALSE(called);
}

TEST_F(ClientTest, DeduplicationIdsAreUniquePerClient) {
  ClientOptions options;
  Client a(options, mixer_.transport(), &time_);
  a.Check(Request("/a"), {}, [](const CheckResult&) {});
  const std::string first = mixer_.NextCheck().deduplication_id;
  mixer_.AnswerCheck(Answer(0));
  time_.AdvanceNanos(1);
  Client b(options, mixer_.transport(), &time_);
  b.Check(Request("/a"), {}, [](const CheckResult&) {});
  const std::string second = mixer_.NextCheck().deduplication_id;
  EXPECT_NE(first, second);
  EXPECT_EQ(first.substr(first.size() - 2), "-0");
}

}  // namespace
}  // namespace mixerclient
