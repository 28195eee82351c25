// CallbackClock: the steady clock as one host callback sees it.
//
// Within one callback the check cache, the quota cache, the upstream cache and the report
// batch each ask for the time, and inside Envoy each asking is a host call (WASI's
// clock_time_get). Their windows are milliseconds to seconds, so the microseconds between
// those readings matter to none of them: while a Hold lives the clock is read once, on first
// use, and that reading is the answer for the rest of the callback.
#ifndef PROXY_EXTENSIONS_MIXER_CALLBACK_CLOCK_H_
#define PROXY_EXTENSIONS_MIXER_CALLBACK_CLOCK_H_

#include <cstdint>

#include "mixerclient/time_source.h"

namespace mixer_filter {

class CallbackClock final : public mixerclient::TimeSource {
 public:
  // `base` must outlive the clock.
  explicit CallbackClock(const mixerclient::TimeSource* base) : base_(base) {}
  ~CallbackClock() override;

  int64_t NowNanos() const override {
    if (!held_) return base_->NowNanos();
    if (!have_) {
      now_ = base_->NowNanos();
      have_ = true;
    }
    return now_;
  }

  // For its lifetime (a callback's), every reading repeats the first.
  class Hold {
   public:
    explicit Hold(CallbackClock* clock) : clock_(clock), was_held_(clock->held_) {
      if (!was_held_) {
        clock_->held_ = true;
        clock_->have_ = false;
      }
    }
    ~Hold() {
      if (!was_held_) clock_->held_ = false;
    }
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;

   private:
    CallbackClock* clock_;
    bool was_held_;  // inside another Hold: that one's reading stands
  };

 private:
  const mixerclient::TimeSource* base_;
  // The reading, cached while held (NowNanos is const, as TimeSource's is).
  mutable bool held_ = false;
  mutable bool have_ = false;
  mutable int64_t now_ = 0;
};

}  // namespace mixer_filter

#endif  // PROXY_EXTENSIONS_MIXER_CALLBACK_CLOCK_H_
