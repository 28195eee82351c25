#include "mixerclient/client.h"

#include <algorithm>
#include <utility>

#include "mixerclient/check_cache.h"
#include "mixerclient/codec.h"
#include "mixerclient/compressed_writer.h"
#include "mixerclient/fail_policy.h"
#include "mixerclient/global_dictionary.h"
#include "mixerclient/report_batch.h"

namespace mixerclient {
namespace {

// Expired entries are swept at most this often (a sweep walks the whole cache).
constexpr int64_t kSweepIntervalNanos = kNanosPerSecond;

uint64_t Mix(uint64_t x) {  // splitmix64's finalizer
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

std::string Hex(uint64_t v) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) out[static_cast<size_t>(i)] = kDigits[v & 15];
  return out;
}

}  // namespace

struct Client::State {
  State(const ClientOptions& o, Transport* t, const TimeSource* clock)
      : options(o),
        transport(t),
        time(clock),
        check_cache(o.check, clock),
        quota_cache(o.quota, clock),
        batch(o.report, clock, [this](std::string request, int32_t entries) {
          SendReport(std::move(request), entries);
        }),
        global_word_count(GlobalDictionary::Size()),
        last_sweep(clock->NowNanos()) {
    dedup_base = o.deduplication_id_base;
    if (dedup_base.empty()) {
      dedup_base = Hex(Mix(static_cast<uint64_t>(clock->NowNanos()) ^ reinterpret_cast<uintptr_t>(this))) + "-";
    }
  }

  // One Check that went to the transport.
  struct Pending {
    Attributes attributes;
    QuotaCache::Plan plan;
    CheckDone done;  // empty for a background quota prefetch
    bool check_hit = false;
    bool refresh = false;  // asked ahead of a cached answer running out: only the cache learns
    CheckAnswer cached;
    int32_t global_word_count = 0;
  };

  void RefreshAhead(const Attributes& attributes);

  void SendReport(std::string request, int32_t entries);
  void OnCheckAnswer(Pending& pending, const Status& status, std::string_view response);
  void OnTransportError(const Status& status) {
    if (IsDictionaryMismatch(status)) global_word_count = std::min(global_word_count, kBaseGlobalWordCount);
  }

  ClientOptions options;
  Transport* transport;
  const TimeSource* time;
  CheckCache check_cache;
  QuotaCache quota_cache;
  ReportBatch batch;
  int32_t global_word_count;
  int64_t last_sweep;
  std::string dedup_base;
  uint64_t dedup_counter = 0;
  ClientStats stats;
  std::weak_ptr<State> self;
};

void Client::State::SendReport(std::string request, int32_t entries) {
  if (stats.report_batches_in_flight >= options.report.max_in_flight_batches) {
    ++stats.report_batches_dropped;
    stats.report_entries_dropped += static_cast<uint64_t>(entries);
    return;
  }
  ++stats.report_batches_in_flight;
  ++stats.total_remote_report_calls;
  std::weak_ptr<State> weak = self;
  transport->Report(std::move(request), [weak, entries](const Status& status, std::string_view) {
    std::shared_ptr<State> state = weak.lock();
    if (!state) return;
    --state->stats.report_batches_in_flight;
    if (!status.ok()) {
      ++state->stats.report_batches_failed;
      state->stats.report_entries_failed += static_cast<uint64_t>(entries);
      state->OnTransportError(status);
    }
  });
}

void Client::State::RefreshAhead(const Attributes& attributes) {
  ++stats.total_remote_check_refreshes;
  std::string request = EncodeCheckRequestFor(attributes, global_word_count,
                                              dedup_base + std::to_string(dedup_counter++), {});
  auto pending = std::make_shared<Pending>();
  pending->attributes = attributes;
  pending->refresh = true;
  pending->global_word_count = global_word_count;
  std::weak_ptr<State> weak = self;
  transport->Check(std::move(request), [weak, pending](const Status& status, std::string_view response) {
    std::shared_ptr<State> state = weak.lock();
    if (state) state->OnCheckAnswer(*pending, status, response);
  });
}

void Client::State::OnCheckAnswer(Pending& pending, const Status& status, std::string_view bytes) {
  CheckResponse response;
  Status transport_status = status;
  if (transport_status.ok()) {
    const Status decoded = DecodeCheckResponse(bytes, &response);
    if (!decoded.ok()) transport_status = Status(Code::kUnavailable, "undecodable answer from Mixer: " + decoded.message());
  }
  if (!transport_status.ok()) {
    ++stats.check_transport_errors;
    OnTransportError(transport_status);
  }
  const CheckResponse* answer = transport_status.ok() ? &response : nullptr;
  if (pending.refresh) {
    // A failed refresh leaves the old answer to run out; the next miss asks again.
    if (answer != nullptr) check_cache.Store(pending.attributes, response, pending.global_word_count);
    return;
  }
  quota_cache.OnResponse(pending.attributes, answer, pending.global_word_count, &pending.plan);
  if (!pending.done) return;  // a background prefetch: the request was answered already

  CheckResult result;
  result.check_cache_hit = pending.check_hit;
  if (pending.check_hit) {
    result.status = pending.cached.status;
    result.route_directive = pending.cached.route_directive;
  } else if (answer == nullptr) {
    result.status = options.check.network_fail_open
                        ? Status::Ok()
                        : Status(Code::kUnavailable, "Mixer check failed: " + transport_status.ToString());
  } else {
    CheckAnswer fresh = check_cache.Store(pending.attributes, response, pending.global_word_count);
    result.status = std::move(fresh.status);
    result.route_directive = std::move(fresh.route_directive);
  }
  if (result.status.ok()) result.status = pending.plan.status();
  pending.done(result);
}

Client::Client(const ClientOptions& options, Transport* transport, const TimeSource* time)
    : state_(std::make_shared<State>(options, transport, time)) {
  state_->self = state_;
}

Client::~Client() { state_->batch.Flush(); }

void Client::Check(const Attributes& attributes, const std::vector<QuotaRequirement>& quotas, CheckDone done) {
  State& s = *state_;
  ++s.stats.total_check_calls;
  CheckAnswer cached;
  bool refresh = false;
  const bool check_hit = s.check_cache.Lookup(attributes, &cached, &refresh);
  ++(check_hit ? s.stats.total_check_cache_hits : s.stats.total_check_cache_misses);
  if (refresh) s.RefreshAhead(attributes);
  if (check_hit && !cached.status.ok()) {
    CheckResult result;
    result.status = std::move(cached.status);
    result.check_cache_hit = true;
    done(result);
    return;
  }
  QuotaCache::Plan plan = s.quota_cache.Prepare(attributes, quotas, check_hit);
  if (!quotas.empty()) ++s.stats.total_quota_calls;
  const bool quota_hit = !quotas.empty() && plan.decided();
  if (quota_hit) ++s.stats.total_quota_cache_hits;
  if (check_hit && plan.decided()) {
    CheckResult result;
    result.status = plan.status();
    if (result.status.ok()) result.status = cached.status;
    result.check_cache_hit = true;
    result.quota_cache_hit = quota_hit;
    result.route_directive = cached.route_directive;
    done(result);
    if (!plan.needs_request()) return;
    done = nullptr;  // what follows only refills quota pools
  }

  CheckRequest quotas_only;  // the request's quotas; its attributes are written directly
  plan.AddTo(&quotas_only);
  std::string request = EncodeCheckRequestFor(attributes, s.global_word_count,
                                              s.dedup_base + std::to_string(s.dedup_counter++), quotas_only.quotas);
  ++(done ? s.stats.total_remote_check_calls : s.stats.total_remote_quota_prefetches);

  auto pending = std::make_shared<State::Pending>();
  // The answer is keyed on the request's attributes: keep a copy only if a cache will need it.
  bool keep = s.check_cache.enabled() && !check_hit;
  for (const QuotaCache::Item& item : plan.items) keep = keep || item.pool_is_new;
  if (keep) pending->attributes = attributes;
  pending->plan = std::move(plan);
  pending->done = std::move(done);
  pending->check_hit = check_hit;
  pending->cached = std::move(cached);
  pending->global_word_count = s.global_word_count;
  std::weak_ptr<State> weak = state_;
  s.transport->Check(std::move(request), [weak, pending](const Status& status, std::string_view response) {
    std::shared_ptr<State> state = weak.lock();
    if (state) state->OnCheckAnswer(*pending, status, response);
  });
}

void Client::Report(Attributes attributes) {
  ++state_->stats.total_report_calls;
  state_->batch.Add(std::move(attributes), state_->global_word_count);
}

void Client::Flush() { state_->batch.Flush(); }

int64_t Client::Tick() {
  State& s = *state_;
  const int64_t now = s.time->NowNanos();
  if (now - s.last_sweep >= kSweepIntervalNanos) {
    s.last_sweep = now;
    s.check_cache.RemoveExpired();
    s.quota_cache.RemoveExpired();
  }
  return s.batch.Tick();
}

ClientStats Client::stats() const {
  ClientStats out = state_->stats;
  out.check_uncacheable = state_->check_cache.uncacheable();
  out.check_cache_size = state_->check_cache.size();
  out.quota_cache_size = state_->quota_cache.size();
  out.global_word_count = state_->global_word_count;
  return out;
}

}  // namespace mixerclient
