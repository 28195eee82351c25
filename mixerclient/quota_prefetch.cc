#include "mixerclient/quota_prefetch.h"

#include <algorithm>

#include "mixerclient/time_source.h"

namespace mixerclient {

TimeBasedCounter::TimeBasedCounter(int32_t slots, int64_t window_nanos)
    : slot_nanos_(std::max<int64_t>(1, window_nanos / std::max(1, slots))),
      buckets_(static_cast<size_t>(std::max(1, slots))) {}

void TimeBasedCounter::Inc(int64_t amount, int64_t now_nanos) {
  const int64_t tick = now_nanos / slot_nanos_;
  Bucket& b = buckets_[static_cast<size_t>(tick % static_cast<int64_t>(buckets_.size()))];
  if (b.tick != tick) b = Bucket{tick, 0};
  b.count += amount;
}

int64_t TimeBasedCounter::Count(int64_t now_nanos) const {
  const int64_t tick = now_nanos / slot_nanos_;
  const int64_t n = static_cast<int64_t>(buckets_.size());
  int64_t total = 0;
  for (const Bucket& b : buckets_) {
    if (b.tick >= 0 && b.tick <= tick && tick - b.tick < n) total += b.count;
  }
  return total;
}

QuotaPrefetch::QuotaPrefetch(const PrefetchOptions& options)
    : options_(options),
      counter_(options.counter_slots, options.predict_window_ms * kNanosPerMilli) {}

int64_t QuotaPrefetch::Available(int64_t now) const {
  int64_t total = 0;
  for (const Slot& s : slots_) {
    if (now < s.expire_nanos) total += s.available;
  }
  return total;
}

bool QuotaPrefetch::HasAtLeast(int64_t amount, int64_t now) const {
  int64_t total = 0;
  for (const Slot& s : slots_) {
    if (now < s.expire_nanos) {
      total += s.available;
      if (total >= amount) return true;
    }
  }
  return total >= amount;
}

int64_t QuotaPrefetch::Take(int64_t amount, int64_t now) {
  while (!slots_.empty() && amount > 0) {
    Slot& head = slots_.front();
    if (now < head.expire_nanos && head.available > 0) {
      const int64_t d = std::min(head.available, amount);
      head.available -= d;
      amount -= d;
      if (head.available > 0) return 0;
    }
    slots_.pop_front();  // spent or expired
  }
  return amount;
}

QuotaPrefetch::Slot* QuotaPrefetch::FindSlot(uint64_t id) {
  for (Slot& s : slots_) {
    if (s.id == id) return &s;
  }
  return nullptr;
}

void QuotaPrefetch::MaybePrefetch(int64_t amount, int64_t now, Decision* decision) {
  if (mode_ == Mode::kClose &&
      (in_flight_ > 0 || now - last_prefetch_nanos_ < options_.close_wait_window_ms * kNanosPerMilli)) {
    return;
  }
  const int64_t available = Available(now);
  const int64_t desired = std::max(counter_.Count(now), options_.min_prefetch_amount);
  if ((available < desired / 2 && in_flight_ == 0) || available < amount) {
    const int64_t request = std::max(amount, desired);
    decision->prefetch_amount = request;
    if (available == 0 && mode_ == Mode::kOpen) {
      // Lend the amount now; the answer corrects it.
      decision->slot_id = ++next_slot_id_;
      slots_.push_back(Slot{request, now + options_.max_expiration_ms * kNanosPerMilli, decision->slot_id});
    }
    last_prefetch_nanos_ = now;
    ++in_flight_;
  }
}

QuotaPrefetch::Decision QuotaPrefetch::Check(int64_t amount, int64_t now) {
  Decision decision;
  MaybePrefetch(amount, now, &decision);
  counter_.Inc(amount, now);
  if (amount == 1) {
    decision.admitted = Take(1, now) == 0;
  } else {
    decision.admitted = HasAtLeast(amount, now);
    if (decision.admitted) Take(amount, now);
  }
  return decision;
}

void QuotaPrefetch::OnResponse(uint64_t slot_id, int64_t requested, int64_t granted,
                               int64_t expiration_nanos, int64_t now) {
  if (in_flight_ > 0) --in_flight_;
  if (granted < 0) {  // the call failed: fail open
    granted = requested;
    expiration_nanos = options_.max_expiration_ms * kNanosPerMilli;
  }
  if (expiration_nanos <= 0) expiration_nanos = options_.max_expiration_ms * kNanosPerMilli;
  if (slot_id != 0) {
    Slot* slot = FindSlot(slot_id);
    if (granted < requested) {
      int64_t shortfall = requested - granted;
      if (slot != nullptr) {
        const int64_t d = std::min(slot->available, shortfall);
        slot->available -= d;
        shortfall -= d;
      }
      if (shortfall > 0) Take(shortfall, now);  // the lent units already used: take from others
      slot = FindSlot(slot_id);                 // Take may have dropped it
    }
    if (slot != nullptr && slot->available > 0) slot->expire_nanos = now + expiration_nanos;
  } else if (granted > 0) {
    slots_.push_back(Slot{granted, now + expiration_nanos, ++next_slot_id_});
  }
  mode_ = granted == requested ? Mode::kOpen : Mode::kClose;
}

}  // namespace mixerclient
