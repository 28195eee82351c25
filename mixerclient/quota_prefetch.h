// Quota prefetch: admit requests against quota fetched ahead from Mixer, and decide when to
// fetch more (Istio's prefetch algorithm, mixerclient's prefetch/README.md).
//
// Granted amounts sit in a FIFO of slots, each with an expiry. The amount wanted per predict
// window (1 s) is the number of units asked in the last window, at least min_prefetch_amount
// (10). A prefetch is sent when what is available drops below half of that with no prefetch
// in flight, or below the amount asked. While the mode is OPEN (the last prefetch was granted
// in full) and nothing is available, the prefetched amount is lent before Mixer grants it
// (for at most 60 s), so a request never waits on quota; a partial grant takes the shortfall
// back and switches to CLOSE, where no new prefetch goes out while one is in flight or within
// the close-wait window (500 ms) of the last. A failed prefetch counts as granted in full
// (fail open).
#ifndef MIXERCLIENT_QUOTA_PREFETCH_H_
#define MIXERCLIENT_QUOTA_PREFETCH_H_

#include <cstdint>
#include <deque>
#include <vector>

namespace mixerclient {

struct PrefetchOptions {
  int64_t predict_window_ms = 1000;
  int64_t min_prefetch_amount = 10;
  int64_t close_wait_window_ms = 500;
  // Expiry of an amount lent before it is granted, and of a grant with no valid_duration.
  int64_t max_expiration_ms = 60000;
  // Slots of the request counter over the predict window.
  int32_t counter_slots = 20;
};

// Units counted over a sliding window, in fixed time slots.
class TimeBasedCounter {
 public:
  TimeBasedCounter(int32_t slots, int64_t window_nanos);
  void Inc(int64_t amount, int64_t now_nanos);
  int64_t Count(int64_t now_nanos) const;

 private:
  struct Bucket {
    int64_t tick = -1;
    int64_t count = 0;
  };
  int64_t slot_nanos_;
  std::vector<Bucket> buckets_;
};

class QuotaPrefetch {
 public:
  struct Decision {
    bool admitted = false;
    // > 0: ask Mixer for this much (best effort) and report the answer to OnResponse.
    int64_t prefetch_amount = 0;
    uint64_t slot_id = 0;  // pass back to OnResponse
  };

  QuotaPrefetch(const PrefetchOptions& options);

  Decision Check(int64_t amount, int64_t now_nanos);

  // Mixer's answer to a prefetch: `granted` < 0 means the call failed. `expiration_nanos`
  // <= 0 means the answer had no valid_duration.
  void OnResponse(uint64_t slot_id, int64_t requested, int64_t granted, int64_t expiration_nanos,
                  int64_t now_nanos);

  int64_t Available(int64_t now_nanos) const;
  bool closed() const { return mode_ == Mode::kClose; }
  int32_t in_flight() const { return in_flight_; }

 private:
  enum class Mode { kOpen, kClose };
  struct Slot {
    int64_t available;
    int64_t expire_nanos;
    uint64_t id;
  };

  bool HasAtLeast(int64_t amount, int64_t now) const;
  // Takes `amount` from the oldest live slots; returns what could not be taken.
  int64_t Take(int64_t amount, int64_t now);
  void MaybePrefetch(int64_t amount, int64_t now, Decision* decision);
  Slot* FindSlot(uint64_t id);

  PrefetchOptions options_;
  TimeBasedCounter counter_;
  std::deque<Slot> slots_;
  Mode mode_ = Mode::kOpen;
  int64_t last_prefetch_nanos_ = 0;
  int32_t in_flight_ = 0;
  uint64_t next_slot_id_ = 0;
};

}  // namespace mixerclient

#endif  // MIXERCLIENT_QUOTA_PREFETCH_H_
