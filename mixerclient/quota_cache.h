// The quota cache: a prefetch pool (quota_prefetch.h) per quota and referenced-attribute
// signature, found the same way as check cache entries (referenced.h).
//
// As in Istio, the cache is used only when the Check itself was answered from the check
// cache: a Check that goes to Mixer may be denied, and units taken from a pool for a denied
// request could not be given back. Such Checks (and every Check when the cache is disabled)
// ask Mixer for the amount itself, all or nothing (best_effort false), and a connection
// error lets the request through (quota fails open).
#ifndef MIXERCLIENT_QUOTA_CACHE_H_
#define MIXERCLIENT_QUOTA_CACHE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "mixerclient/attributes.h"
#include "mixerclient/lru_cache.h"
#include "mixerclient/messages.h"
#include "mixerclient/options.h"
#include "mixerclient/quota_prefetch.h"
#include "mixerclient/referenced.h"
#include "mixerclient/status.h"
#include "mixerclient/time_source.h"

namespace mixerclient {

// A quota a request needs (QuotaSpec's rules[].quotas[]: quota, charge).
struct QuotaRequirement {
  std::string name;
  int64_t amount = 1;
};

class QuotaCache {
 public:
  struct Pool;

  // One quota's part in one Check.
  struct Item {
    enum class State { kPassed, kRejected, kPending };
    std::string name;
    int64_t amount = 0;
    State state = State::kPending;
    // > 0: put {request_amount, best_effort} for this quota in the CheckRequest.
    int64_t request_amount = 0;
    bool best_effort = false;
    std::shared_ptr<Pool> pool;  // set for prefetches
    uint64_t slot_id = 0;
    bool pool_is_new = false;    // the pool is not in the cache yet; its answer places it
  };

  struct Plan {
    std::vector<Item> items;
    // Every quota was decided without Mixer (prefetches may still go out).
    bool decided() const;
    // Whether the CheckRequest must carry quotas.
    bool needs_request() const;
    // RESOURCE_EXHAUSTED naming the rejected quotas, or OK (pending items count as passed).
    Status status() const;
    void AddTo(CheckRequest* request) const;
  };

  QuotaCache(const QuotaOptions& options, const TimeSource* time);

  bool enabled() const { return options_.num_entries > 0; }

  Plan Prepare(const Attributes& attributes, const std::vector<QuotaRequirement>& quotas,
               bool check_cache_hit);

  // Applies Mixer's answer (nullptr: the call failed) to the plan's items; `attributes`
  // are the request's, `global_word_count` the one it declared.
  void OnResponse(const Attributes& attributes, const CheckResponse* response,
                  int32_t global_word_count, Plan* plan);

  // Drops pools unused for expiration_ms.
  void RemoveExpired();

  size_t size() const { return pools_.size(); }

 private:
  struct Shape {
    uint32_t id;
    Referenced referenced;
  };
  struct PerQuota {
    std::vector<Shape> shapes;
    std::unordered_map<std::string, uint32_t> shape_ids;
    std::shared_ptr<Pool> pending;  // the pool used until Mixer's answer places it
  };

  std::shared_ptr<Pool>* Find(const std::string& name, PerQuota& per, const Attributes& attributes);
  void Place(const std::string& name, const Attributes& attributes, const QuotaResult& result,
             int32_t global_word_count, const std::shared_ptr<Pool>& pool);

  QuotaOptions options_;
  PrefetchOptions prefetch_options_;
  const TimeSource* time_;
  LruCache<std::shared_ptr<Pool>> pools_;
  std::map<std::string, PerQuota> per_quota_;
  std::string scratch_;
};

struct QuotaCache::Pool {
  explicit Pool(const PrefetchOptions& options) : prefetch(options) {}
  QuotaPrefetch prefetch;
  int64_t last_used_nanos = 0;
};

}  // namespace mixerclient

#endif  // MIXERCLIENT_QUOTA_CACHE_H_
