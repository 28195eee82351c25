// Client: Mixer's client as a proxy or a service uses it. Check goes through the check cache
// and the quota cache (and reaches Mixer only when they cannot answer); Report goes into a
// delta-encoded batch. The transport and the clock are the host's (transport.h,
// time_source.h); the client does no I/O and starts no thread.
#ifndef MIXERCLIENT_CLIENT_H_
#define MIXERCLIENT_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "mixerclient/attributes.h"
#include "mixerclient/messages.h"
#include "mixerclient/options.h"
#include "mixerclient/quota_cache.h"
#include "mixerclient/status.h"
#include "mixerclient/time_source.h"
#include "mixerclient/transport.h"

namespace mixerclient {

struct CheckResult {
  // OK: the request may go on. Otherwise Mixer's denial (PERMISSION_DENIED,
  // RESOURCE_EXHAUSTED for quota, ...) or, failing closed, UNAVAILABLE when Mixer could not
  // answer. HttpStatusFor(status.code()) is what a proxy answers.
  Status status;
  bool check_cache_hit = false;
  bool quota_cache_hit = false;
  // Header edits or a direct response Mixer asked for (with an OK status).
  std::optional<RouteDirective> route_directive;
};

using CheckDone = std::function<void(const CheckResult& result)>;

struct ClientStats {
  uint64_t total_check_calls = 0;
  uint64_t total_check_cache_hits = 0;
  uint64_t total_check_cache_misses = 0;
  uint64_t total_quota_calls = 0;
  uint64_t total_quota_cache_hits = 0;
  uint64_t total_remote_check_calls = 0;     // Checks sent to Mixer for a request's answer
  uint64_t total_remote_quota_prefetches = 0;  // Checks sent only to refill quota pools
  uint64_t total_remote_check_refreshes = 0;   // Checks sent ahead of a cached answer running out
  uint64_t check_transport_errors = 0;
  uint64_t total_report_calls = 0;
  uint64_t total_remote_report_calls = 0;    // batches sent
  uint64_t report_batches_failed = 0;        // answered with an error
  uint64_t report_entries_failed = 0;
  uint64_t report_batches_dropped = 0;       // not sent: max_in_flight_batches reached
  uint64_t report_entries_dropped = 0;
  uint64_t check_uncacheable = 0;            // Mixer answers the check cache could not keep
  uint64_t check_cache_size = 0;
  uint64_t quota_cache_size = 0;
  int32_t global_word_count = 0;
  int32_t report_batches_in_flight = 0;
};

class Client {
 public:
  // `transport` and `time` must outlive the client.
  Client(const ClientOptions& options, Transport* transport, const TimeSource* time);
  // Sends the pending report batch; answers still in flight are then ignored, and their
  // CheckDone callbacks are never called.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // `done` is called exactly once (while the client lives): at once on a cache hit, else
  // when the transport answers.
  void Check(const Attributes& attributes, const std::vector<QuotaRequirement>& quotas, CheckDone done);

  // Taken by value: pass an rvalue to save a copy (the batch keeps it for the next delta).
  void Report(Attributes attributes);

  // Sends the pending report batch now.
  void Flush();

  // Call periodically (e.g. every 100 ms, or after the returned delay): sends a report batch
  // that is due and drops expired cache entries. Returns milliseconds until the pending batch
  // is due, or -1 if there is none.
  int64_t Tick();

  ClientStats stats() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace mixerclient

#endif  // MIXERCLIENT_CLIENT_H_
