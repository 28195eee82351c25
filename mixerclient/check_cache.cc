#include "mixerclient/check_cache.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "mixerclient/fail_policy.h"

namespace mixerclient {

void AppendShapeId(uint32_t id, std::string* out) {
  while (id >= 0x80) {
    out->push_back(static_cast<char>(static_cast<uint8_t>(id) | 0x80));
    id >>= 7;
  }
  out->push_back(static_cast<char>(id));
}

CheckCache::CheckCache(const CheckOptions& options, const TimeSource* time)
    : options_(options),
      time_(time),
      entries_(options.num_entries > 0 ? static_cast<size_t>(options.num_entries) : 0) {}

bool CheckCache::Lookup(const Attributes& attributes, CheckAnswer* answer, bool* refresh) {
  if (!enabled() || shapes_.empty()) return false;
  const int64_t now = time_->NowNanos();
  for (const Shape& shape : shapes_) {
    scratch_.clear();
    AppendShapeId(shape.id, &scratch_);
    if (!shape.referenced.Signature(attributes, &scratch_)) continue;
    Entry* entry = entries_.Find(scratch_);
    if (entry == nullptr) continue;
    if (now >= entry->expire_nanos || entry->uses_left <= 0) {
      entries_.Erase(scratch_);
      continue;
    }
    *answer = entry->answer;
    --entry->uses_left;
    if (refresh != nullptr && !entry->refreshing &&
        (entry->uses_left <= entry->refresh_uses || now >= entry->refresh_nanos)) {
      entry->refreshing = true;
      *refresh = true;
    }
    if (entry->uses_left == 0) entries_.Erase(scratch_);
    return true;
  }
  return false;
}

void CheckCache::NotCached(std::string reason) {
  ++uncacheable_;
  last_reason_ = std::move(reason);
}

CheckAnswer CheckCache::Store(const Attributes& attributes, const CheckResponse& response,
                              int32_t global_word_count) {
  CheckAnswer answer;
  if (!response.precondition) {
    answer.status = Status(Code::kInvalidArgument, "CheckResponse has no precondition result");
    NotCached("no precondition");
    return answer;
  }
  const PreconditionResult& p = *response.precondition;
  answer.status = StatusFromMixer(p.status.value_or(RpcStatus()), options_.network_fail_open);
  answer.route_directive = p.route_directive;
  if (!enabled()) return answer;
  last_reason_.clear();

  if (p.valid_use_count <= 0) {
    NotCached("valid_use_count is " + std::to_string(p.valid_use_count));
    return answer;
  }
  const int64_t never = std::numeric_limits<int64_t>::max();
  int64_t expire = never;
  int64_t refresh_at = never;
  const double ahead = options_.refresh_fraction;
  if (p.valid_duration) {
    const int64_t ttl = p.valid_duration->ToNanos();
    if (ttl <= 0) {
      NotCached("valid_duration is not positive");
      return answer;
    }
    const int64_t now = time_->NowNanos();
    expire = now + ttl;
    if (ahead > 0) refresh_at = now + ttl - static_cast<int64_t>(static_cast<double>(ttl) * ahead);
  }
  // An answer good for one use has nothing to refresh ahead of (-1: never by uses).
  const int32_t refresh_uses = ahead > 0 && p.valid_use_count > 1
                                   ? std::max(1, static_cast<int32_t>(p.valid_use_count * ahead))
                                   : -1;
  Referenced referenced;
  const Status decoded = Referenced::FromProto(p.referenced_attributes.value_or(ReferencedAttributes()),
                                               global_word_count, &referenced);
  if (!decoded.ok()) {
    NotCached(decoded.message());
    return answer;
  }
  uint32_t id;
  auto known = shape_ids_.find(referenced.key());
  if (known != shape_ids_.end()) {
    id = known->second;
  } else {
    if (shapes_.size() >= static_cast<size_t>(options_.max_shapes)) {
      NotCached("too many referenced-attribute shapes");
      return answer;
    }
    id = static_cast<uint32_t>(shapes_.size());
    shape_ids_.emplace(referenced.key(), id);
    shapes_.push_back(Shape{id, referenced});
  }
  std::string signature;
  AppendShapeId(id, &signature);
  if (!shapes_[id].referenced.Signature(attributes, &signature)) {
    // Mixer said the answer depended on attributes the request does not have (or lacks
    // ones it has): nothing sound to key it on.
    NotCached("the referenced attributes do not fit the request: " + referenced.DebugString());
    return answer;
  }
  entries_.Insert(std::move(signature), Entry{answer, expire, p.valid_use_count, refresh_at, refresh_uses});
  return answer;
}

void CheckCache::RemoveExpired() {
  const int64_t now = time_->NowNanos();
  entries_.RemoveIf([now](const std::string&, const Entry& e) {
    return now >= e.expire_nanos || e.uses_left <= 0;
  });
}

}  // namespace mixerclient
