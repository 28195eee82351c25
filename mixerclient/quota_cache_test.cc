#include "mixerclient/quota_cache.h"

#include "gtest/gtest.h"

namespace mixerclient {
namespace {

constexpr char kQuota[] = "requestcount.quota.istio-system";

CheckResponse Granted(int64_t amount, std::vector<AttributeMatch> matches = {}) {
  CheckResponse r;
  r.precondition.emplace();
  QuotaResult& q = r.quotas[kQuota];
  q.granted_amount = amount;
  q.valid_duration = Duration{1, 0};
  q.referenced_attributes.emplace().attribute_matches = std::move(matches);
  return r;
}

Attributes Productpage() {
  Attributes a;
  a.SetString("destination.service", "productpage.default.svc.cluster.local");  // word 152
  return a;
}

class QuotaCacheTest : public ::testing::Test {
 protected:
  FakeTimeSource time_;
  QuotaCache cache_{QuotaOptions(), &time_};
};

TEST_F(QuotaCacheTest, WithoutACheckCacheHitTheAmountIsAskedAllOrNothing) {
  QuotaCache::Plan plan = cache_.Prepare(Productpage(), {{kQuota, 1}}, /*check_cache_hit=*/false);
  EXPECT_FALSE(plan.decided());
  CheckRequest request;
  plan.AddTo(&request);
  EXPECT_EQ(request.quotas.at(kQuota).amount, 1);
  EXPECT_FALSE(request.quotas.at(kQuota).best_effort);
  CheckResponse none = Granted(0);
  cache_.OnResponse(Productpage(), &none, 222, &plan);
  EXPECT_EQ(plan.status().code(), Code::kResourceExhausted);
  EXPECT_EQ(plan.status().message(), std::string("Quota is exhausted for: ") + kQuota);
  EXPECT_EQ(cache_.size(), 0u);  // nothing cached on this path
}

TEST_F(QuotaCacheTest, AFailedCallLetsTheRequestThrough) {
  QuotaCache::Plan plan = cache_.Prepare(Productpage(), {{kQuota, 1}}, false);
  cache_.OnResponse(Productpage(), nullptr, 222, &plan);
  EXPECT_TRUE(plan.status().ok());
}

TEST_F(QuotaCacheTest, WithACheckCacheHitPoolsArePrefetchedAndCached) {
  QuotaCache::Plan first = cache_.Prepare(Productpage(), {{kQuota, 1}}, true);
  ASSERT_TRUE(first.decided());  // lent from the pending pool
  EXPECT_TRUE(first.status().ok());
  ASSERT_TRUE(first.needs_request());
  CheckRequest request;
  first.AddTo(&request);
  EXPECT_EQ(request.quotas.at(kQuota).amount, 10);
  EXPECT_TRUE(request.quotas.at(kQuota).best_effort);
  // Mixer grants 3 and says the grant depended on destination.service.
  CheckResponse granted = Granted(3, {{152, kExact, "", 0}});
  cache_.OnResponse(Productpage(), &granted, 222, &first);
  EXPECT_EQ(cache_.size(), 1u);
  // 3 granted, 1 used: two more pass from the cache, then the pool is spent (closed mode).
  for (int i = 0; i < 2; ++i) {
    QuotaCache::Plan p = cache_.Prepare(Productpage(), {{kQuota, 1}}, true);
    ASSERT_TRUE(p.decided());
    EXPECT_TRUE(p.status().ok());
  }
  QuotaCache::Plan spent = cache_.Prepare(Productpage(), {{kQuota, 1}}, true);
  EXPECT_TRUE(spent.decided());
  EXPECT_EQ(spent.status().code(), Code::kResourceExhausted);
  // Another service has its own pool.
  Attributes details;
  details.SetString("destination.service", "details.default.svc.cluster.local");
  QuotaCache::Plan other = cache_.Prepare(details, {{kQuota, 1}}, true);
  EXPECT_TRUE(other.status().ok());
}

TEST_F(QuotaCacheTest, IdlePoolsExpire) {
  QuotaCache::Plan plan = cache_.Prepare(Productpage(), {{kQuota, 1}}, true);
  CheckResponse granted = Granted(10, {{152, kExact, "", 0}});
  cache_.OnResponse(Productpage(), &granted, 222, &plan);
  ASSERT_EQ(cache_.size(), 1u);
  time_.AdvanceMillis(600000 - 1);
  cache_.RemoveExpired();
  EXPECT_EQ(cache_.size(), 1u);
  time_.AdvanceMillis(2);
  cache_.RemoveExpired();
  EXPECT_EQ(cache_.size(), 0u);
}

TEST_F(QuotaCacheTest, DisabledCacheAlwaysAsks) {
  QuotaOptions off;
  off.num_entries = 0;
  QuotaCache cache(off, &time_);
  QuotaCache::Plan plan = cache.Prepare(Productpage(), {{kQuota, 2}}, true);
  EXPECT_FALSE(plan.decided());
  CheckResponse granted = Granted(2);
  cache.OnResponse(Productpage(), &granted, 222, &plan);
  EXPECT_TRUE(plan.status().ok());
}

}  // namespace
}  // namespace mixerclient
