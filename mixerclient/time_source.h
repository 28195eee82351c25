// Where the library reads the time: an interface, so the same code runs on Envoy's clock
// inside the WebAssembly sandbox, on the system's clock under Python, and on fake time in tests.
#ifndef MIXERCLIENT_TIME_SOURCE_H_
#define MIXERCLIENT_TIME_SOURCE_H_

#include <cstdint>

namespace mixerclient {

// A monotonic clock in nanoseconds. Only differences between readings are used (cache
// expiry, batch age, quota windows), so the epoch does not matter.
class TimeSource {
 public:
  virtual ~TimeSource();
  virtual int64_t NowNanos() const = 0;
};

// std::chrono::steady_clock (clock_gettime(CLOCK_MONOTONIC); WASI's clock_time_get in wasm).
class SteadyTimeSource final : public TimeSource {
 public:
  ~SteadyTimeSource() override;
  int64_t NowNanos() const override;
};

// Time that moves only when a test says so.
class FakeTimeSource final : public TimeSource {
 public:
  explicit FakeTimeSource(int64_t start_nanos = 1'000'000'000) : now_(start_nanos) {}
  ~FakeTimeSource() override;
  int64_t NowNanos() const override { return now_; }
  void AdvanceMillis(int64_t ms) { now_ += ms * 1'000'000; }
  void AdvanceNanos(int64_t ns) { now_ += ns; }
  void SetNanos(int64_t ns) { now_ = ns; }

 private:
  int64_t now_;
};

constexpr int64_t kNanosPerMilli = 1'000'000;
constexpr int64_t kNanosPerSecond = 1'000'000'000;

}  // namespace mixerclient

#endif  // MIXERCLIENT_TIME_SOURCE_H_
