#include "mixerclient/time_source.h"

#include "gtest/gtest.h"

namespace mixerclient {
namespace {

TEST(TimeSourceTest, FakeTimeMovesOnlyWhenTold) {
  FakeTimeSource time(5);
  EXPECT_EQ(time.NowNanos(), 5);
  time.AdvanceMillis(2);
  EXPECT_EQ(time.NowNanos(), 5 + 2 * kNanosPerMilli);
  time.SetNanos(1);
  EXPECT_EQ(time.NowNanos(), 1);
}

TEST(TimeSourceTest, SteadyTimeIsMonotonic) {
  SteadyTimeSource time;
  const TimeSource& source = time;
  const int64_t a = source.NowNanos();
  const int64_t b = source.NowNanos();
  EXPECT_LE(a, b);
}

}  // namespace
}  // namespace mixerclient
