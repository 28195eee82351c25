#include "proxy/extensions/mixer/callback_clock.h"

#include "gtest/gtest.h"

namespace mixer_filter {
namespace {

// Counts readings of the clock underneath.
class CountingTime final : public mixerclient::TimeSource {
 public:
  int64_t NowNanos() const override {
    ++reads;
    return now;
  }
  int64_t now = 100;
  mutable int reads = 0;
};

TEST(CallbackClockTest, UnheldReadsThrough) {
  CountingTime base;
  CallbackClock clock(&base);
  EXPECT_EQ(clock.NowNanos(), 100);
  base.now = 200;
  EXPECT_EQ(clock.NowNanos(), 200);
  EXPECT_EQ(base.reads, 2);
}

TEST(CallbackClockTest, HeldReadsOnceOnFirstUse) {
  CountingTime base;
  CallbackClock clock(&base);
  {
    CallbackClock::Hold hold(&clock);
    EXPECT_EQ(base.reads, 0);  // nothing read until asked
    base.now = 300;
    EXPECT_EQ(clock.NowNanos(), 300);
    base.now = 400;
    EXPECT_EQ(clock.NowNanos(), 300);
    {
      CallbackClock::Hold inner(&clock);  // the outer reading stands
      EXPECT_EQ(clock.NowNanos(), 300);
    }
    EXPECT_EQ(clock.NowNanos(), 300);
    EXPECT_EQ(base.reads, 1);
  }
  EXPECT_EQ(clock.NowNanos(), 400);
  {
    CallbackClock::Hold again(&clock);  // a new callback reads anew
    base.now = 500;
    EXPECT_EQ(clock.NowNanos(), 500);
  }
}

}  // namespace
}  // namespace mixer_filter
