#include "mixerclient/quota_prefetch.h"

#include "gtest/gtest.h"
#include "mixerclient/time_source.h"

namespace mixerclient {
namespace {

constexpr int64_t kMs = kNanosPerMilli;

TEST(TimeBasedCounterTest, CountsTheLastWindowOnly) {
  TimeBasedCounter counter(20, 1000 * kMs);
  counter.Inc(1, 0);
  counter.Inc(2, 500 * kMs);
  EXPECT_EQ(counter.Count(900 * kMs), 3);
  EXPECT_EQ(counter.Count(1200 * kMs), 2);  // the first slot left the window
  EXPECT_EQ(counter.Count(5000 * kMs), 0);
}

TEST(QuotaPrefetchTest, TheFirstRequestIsLentTheMinimumPrefetch) {
  QuotaPrefetch prefetch{PrefetchOptions()};
  const auto d = prefetch.Check(1, 0);
  EXPECT_TRUE(d.admitted);             // lent before Mixer answers (mode OPEN, nothing left)
  EXPECT_EQ(d.prefetch_amount, 10);    // min_prefetch_amount
  EXPECT_NE(d.slot_id, 0u);
  EXPECT_EQ(prefetch.Available(0), 9);
  // While that prefetch is in flight and 9 remain (>= 10/2), no second one goes out.
  const auto d2 = prefetch.Check(1, 1 * kMs);
  EXPECT_TRUE(d2.admitted);
  EXPECT_EQ(d2.prefetch_amount, 0);
}

TEST(QuotaPrefetchTest, AFullGrantKeepsTheLentAmount) {
  QuotaPrefetch prefetch{PrefetchOptions()};
  const auto d = prefetch.Check(1, 0);
  prefetch.OnResponse(d.slot_id, 10, 10, 1000 * kMs, 10 * kMs);
  EXPECT_FALSE(prefetch.closed());
  EXPECT_EQ(prefetch.Available(10 * kMs), 9);
  EXPECT_EQ(prefetch.Available(1011 * kMs), 0);  // the grant's valid_duration ran out
}

TEST(QuotaPrefetchTest, APartialGrantTakesTheShortfallBackAndCloses) {
  QuotaPrefetch prefetch{PrefetchOptions()};
  const auto d = prefetch.Check(1, 0);  // lent 10, used 1
  prefetch.OnResponse(d.slot_id, 10, 3, 0, 1 * kMs);
  EXPECT_TRUE(prefetch.closed());
  EXPECT_EQ(prefetch.Available(1 * kMs), 2);  // 3 granted, 1 used
  EXPECT_TRUE(prefetch.Check(1, 2 * kMs).admitted);
  EXPECT_TRUE(prefetch.Check(1, 3 * kMs).admitted);
  // Spent. Closed: within 500 ms of the last prefetch no new one goes out, so: rejected.
  const auto rejected = prefetch.Check(1, 100 * kMs);
  EXPECT_FALSE(rejected.admitted);
  EXPECT_EQ(rejected.prefetch_amount, 0);
  // After the close-wait window a prefetch goes out again, and nothing is lent while closed.
  const auto retry = prefetch.Check(1, 600 * kMs);
  EXPECT_FALSE(retry.admitted);
  EXPECT_GT(retry.prefetch_amount, 0);
  EXPECT_EQ(retry.slot_id, 0u);
  prefetch.OnResponse(retry.slot_id, retry.prefetch_amount, retry.prefetch_amount, 0, 610 * kMs);
  EXPECT_FALSE(prefetch.closed());
  EXPECT_TRUE(prefetch.Check(1, 620 * kMs).admitted);
}

TEST(QuotaPrefetchTest, AFailedPrefetchCountsAsGranted) {
  QuotaPrefetch prefetch{PrefetchOptions()};
  const auto d = prefetch.Check(1, 0);
  prefetch.OnResponse(d.slot_id, 10, -1, 0, 5 * kMs);
  EXPECT_FALSE(prefetch.closed());
  EXPECT_EQ(prefetch.Available(5 * kMs), 9);
}

TEST(QuotaPrefetchTest, TheDesiredAmountFollowsTheRequestRate) {
  QuotaPrefetch prefetch{PrefetchOptions()};
  auto d = prefetch.Check(1, 0);
  prefetch.OnResponse(d.slot_id, 10, 10, 0, 0);
  // 40 requests in the window: the next prefetch asks for about that many.
  int64_t asked = 0;
  for (int i = 1; i < 40; ++i) {
    d = prefetch.Check(1, i * 10 * kMs);
    if (d.prefetch_amount > 0) {
      asked = d.prefetch_amount;
      prefetch.OnResponse(d.slot_id, d.prefetch_amount, d.prefetch_amount, 0, i * 10 * kMs);
    }
  }
  EXPECT_GT(asked, 10);
}

TEST(QuotaPrefetchTest, LargerAmountsNeedThatMuchAvailable) {
  QuotaPrefetch prefetch{PrefetchOptions()};
  const auto d = prefetch.Check(25, 0);
  EXPECT_EQ(d.prefetch_amount, 25);  // max(amount, desired)
  EXPECT_TRUE(d.admitted);           // lent
  EXPECT_EQ(prefetch.Available(0), 0);
}

}  // namespace
}  // namespace mixerclient
