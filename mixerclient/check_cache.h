// The check cache: Mixer's precondition answers, keyed by the attributes each depended on.
//
// Each answer's referenced attributes give a shape (referenced.h); the cache keeps the
// distinct shapes it has learned and an LRU map from signature to answer. A lookup tries each
// shape in turn and the first entry found wins. An entry lives for the answer's
// valid_duration (no duration: no time limit) and valid_use_count uses (0: not cached).
#ifndef MIXERCLIENT_CHECK_CACHE_H_
#define MIXERCLIENT_CHECK_CACHE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "mixerclient/attributes.h"
#include "mixerclient/lru_cache.h"
#include "mixerclient/messages.h"
#include "mixerclient/options.h"
#include "mixerclient/referenced.h"
#include "mixerclient/status.h"
#include "mixerclient/time_source.h"

namespace mixerclient {

// What a precondition answer gives the request.
struct CheckAnswer {
  Status status;
  std::optional<RouteDirective> route_directive;
};

class CheckCache {
 public:
  CheckCache(const CheckOptions& options, const TimeSource* time);

  bool enabled() const { return options_.num_entries > 0; }

  // A cached answer that fits `attributes`: counts one use of it and returns true. Sets
  // `*refresh` when this hit is the one that should ask Mixer again ahead of the answer
  // running out (once per entry; the new answer replaces it).
  bool Lookup(const Attributes& attributes, CheckAnswer* answer, bool* refresh = nullptr);

  // The answer Mixer's response to a Check of `attributes` gives; kept when it may be.
  // `global_word_count` is the one the request declared (its references use those words).
  CheckAnswer Store(const Attributes& attributes, const CheckResponse& response,
                    int32_t global_word_count);

  // Drops entries whose time is up.
  void RemoveExpired();

  size_t size() const { return entries_.size(); }
  size_t shape_count() const { return shapes_.size(); }
  // Answers that could not be cached (REGEX, bad references, no uses, too many shapes).
  uint64_t uncacheable() const { return uncacheable_; }
  // Why the last answer was not cached ("" when it was).
  const std::string& last_uncacheable_reason() const { return last_reason_; }

 private:
  struct Entry {
    CheckAnswer answer;
    int64_t expire_nanos;  // INT64_MAX: no time limit
    int32_t uses_left;
    int64_t refresh_nanos;  // refresh ahead from this time on (INT64_MAX: not by time)
    int32_t refresh_uses;   // or once this few uses are left (-1: not by uses)
    bool refreshing = false;
  };
  struct Shape {
    uint32_t id;
    Referenced referenced;
  };

  void NotCached(std::string reason);

  CheckOptions options_;
  const TimeSource* time_;
  LruCache<Entry> entries_;
  std::vector<Shape> shapes_;
  std::unordered_map<std::string, uint32_t> shape_ids_;
  uint64_t uncacheable_ = 0;
  std::string last_reason_;
  std::string scratch_;  // signature buffer reused across lookups
};

// The signature prefix that keeps shapes apart (one shape's values never match another's).
void AppendShapeId(uint32_t id, std::string* out);

}  // namespace mixerclient

#endif  // MIXERCLIENT_CHECK_CACHE_H_
