#include "mixerclient/quota_cache.h"

#include <utility>

#include "mixerclient/check_cache.h"

namespace mixerclient {
namespace {

void AppendName(const std::string& name, std::string* out) {
  AppendShapeId(static_cast<uint32_t>(name.size()), out);
  out->append(name);
}

}  // namespace

bool QuotaCache::Plan::decided() const {
  for (const Item& item : items) {
    if (item.state == Item::State::kPending) return false;
  }
  return true;
}

bool QuotaCache::Plan::needs_request() const {
  for (const Item& item : items) {
    if (item.request_amount > 0) return true;
  }
  return false;
}

Status QuotaCache::Plan::status() const {
  std::string rejected;
  for (const Item& item : items) {
    if (item.state != Item::State::kRejected) continue;
    if (!rejected.empty()) rejected += ",";
    rejected += item.name;
  }
  if (rejected.empty()) return Status::Ok();
  return Status(Code::kResourceExhausted, "Quota is exhausted for: " + rejected);
}

void QuotaCache::Plan::AddTo(CheckRequest* request) const {
  for (const Item& item : items) {
    if (item.request_amount <= 0) continue;
    QuotaParams& params = request->quotas[item.name];
    params.amount = item.request_amount;
    params.best_effort = item.best_effort;
  }
}

QuotaCache::QuotaCache(const QuotaOptions& options, const TimeSource* time)
    : options_(options),
      time_(time),
      pools_(options.num_entries > 0 ? static_cast<size_t>(options.num_entries) : 0) {}

std::shared_ptr<QuotaCache::Pool>* QuotaCache::Find(const std::string& name, PerQuota& per,
                                                     const Attributes& attributes) {
  for (const Shape& shape : per.shapes) {
    scratch_.clear();
    AppendName(name, &scratch_);
    AppendShapeId(shape.id, &scratch_);
    if (!shape.referenced.Signature(attributes, &scratch_)) continue;
    if (std::shared_ptr<Pool>* pool = pools_.Find(scratch_)) return pool;
  }
  return nullptr;
}

QuotaCache::Plan QuotaCache::Prepare(const Attributes& attributes,
                                     const std::vector<QuotaRequirement>& quotas,
                                     bool check_cache_hit) {
  Plan plan;
  const int64_t now = time_->NowNanos();
  for (const QuotaRequirement& q : quotas) {
    Item item;
    item.name = q.name;
    item.amount = q.amount;
    if (!enabled() || !check_cache_hit) {
      item.request_amount = q.amount;
      item.best_effort = false;
      plan.items.push_back(std::move(item));
      continue;
    }
    PerQuota& per = per_quota_[q.name];
    std::shared_ptr<Pool> pool;
    if (std::shared_ptr<Pool>* found = Find(q.name, per, attributes)) {
      pool = *found;
    } else {
      if (!per.pending) per.pending = std::make_shared<Pool>(prefetch_options_);
      pool = per.pending;
      item.pool_is_new = true;
    }
    pool->last_used_nanos = now;
    const QuotaPrefetch::Decision d = pool->prefetch.Check(q.amount, now);
    item.state = d.admitted ? Item::State::kPassed : Item::State::kRejected;
    if (d.prefetch_amount > 0) {
      item.request_amount = d.prefetch_amount;
      item.best_effort = true;
      item.pool = pool;
      item.slot_id = d.slot_id;
    }
    plan.items.push_back(std::move(item));
  }
  return plan;
}

void QuotaCache::Place(const std::string& name, const Attributes& attributes, const QuotaResult& result,
                       int32_t global_word_count, const std::shared_ptr<Pool>& pool) {
  Referenced referenced;
  if (!Referenced::FromProto(result.referenced_attributes.value_or(ReferencedAttributes()), global_word_count,
                             &referenced)
           .ok()) {
    return;  // cannot be keyed: the pool stays pending and serves the next request too
  }
  PerQuota& per = per_quota_[name];
  uint32_t id;
  auto known = per.shape_ids.find(referenced.key());
  if (known != per.shape_ids.end()) {
    id = known->second;
  } else {
    id = static_cast<uint32_t>(per.shapes.size());
    per.shape_ids.emplace(referenced.key(), id);
    per.shapes.push_back(Shape{id, referenced});
  }
  std::string signature;
  AppendName(name, &signature);
  AppendShapeId(id, &signature);
  if (!per.shapes[id].referenced.Signature(attributes, &signature)) return;
  if (pools_.Find(signature) != nullptr) return;  // keep the pool already there
  pools_.Insert(std::move(signature), pool);
  if (per.pending == pool) per.pending.reset();
}

void QuotaCache::OnResponse(const Attributes& attributes, const CheckResponse* response,
                            int32_t global_word_count, Plan* plan) {
  const int64_t now = time_->NowNanos();
  for (Item& item : plan->items) {
    if (item.request_amount <= 0) continue;
    const QuotaResult* result = nullptr;
    if (response != nullptr) {
      auto it = response->quotas.find(item.name);
      if (it != response->quotas.end()) result = &it->second;
    }
    if (!item.pool) {
      // Asked all or nothing with the request: no answer (a failed call, or a quota Mixer
      // did not mention) lets the request through.
      if (item.state == Item::State::kPending) {
        item.state = (result == nullptr || result->granted_amount > 0) ? Item::State::kPassed
                                                                        : Item::State::kRejected;
      }
      continue;
    }
    const int64_t granted = result == nullptr ? -1 : result->granted_amount;
    const int64_t expiration = (result != nullptr && result->valid_duration) ? result->valid_duration->ToNanos() : 0;
    item.pool->prefetch.OnResponse(item.slot_id, item.request_amount, granted, expiration, now);
    if (item.pool_is_new && result != nullptr) Place(item.name, attributes, *result, global_word_count, item.pool);
  }
}

void QuotaCache::RemoveExpired() {
  const int64_t cutoff = time_->NowNanos() - options_.expiration_ms * kNanosPerMilli;
  pools_.RemoveIf([cutoff](const std::string&, const std::shared_ptr<Pool>& pool) {
    return pool->last_used_nanos < cutoff;
  });
}

}  // namespace mixerclient
