// The client's options, with Istio's names and defaults (mixerclient's include/options.h).
#ifndef MIXERCLIENT_OPTIONS_H_
#define MIXERCLIENT_OPTIONS_H_

#include <cstdint>
#include <string>

namespace mixerclient {

struct CheckOptions {
  // Entries of the check cache; 0 disables it (every Check goes to Mixer).
  int32_t num_entries = 10000;
  // Network fail policy: when Mixer cannot be reached (or answers INTERNAL), let the
  // request through (fail open) or reject it with the transport's status (fail close).
  bool network_fail_open = true;
  // Distinct referenced-attribute shapes kept; answers of further shapes are not cached.
  int32_t max_shapes = 1000;
  // Refresh ahead: once an entry has this share of its uses or of its time left, the next
  // hit still answers from it and also asks Mixer again in the background, so busy traffic
  // does not wait for an answer each time one runs out. 0 turns it off.
  double refresh_fraction = 0.1;
};

struct QuotaOptions {
  // Entries of the quota cache (one prefetch pool per quota and signature); 0 disables
  // it: every quota is then asked of Mixer with the request, all or nothing.
  int32_t num_entries = 10000;
  // A cached quota pool unused this long is dropped.
  int64_t expiration_ms = 600000;
};

struct ReportOptions {
  // A batch is sent when it holds this many reports...
  int32_t max_batch_entries = 1000;
  // ...or when its first report is this old (checked on every Report and Tick).
  int32_t max_batch_time_ms = 1000;
  // Batches sent and not yet answered; a batch beyond this is dropped and counted, so
  // reports never pile up while Mixer is slow or down.
  int32_t max_in_flight_batches = 8;
};

struct ClientOptions {
  CheckOptions check;
  QuotaOptions quota;
  ReportOptions report;
  // Prefix of every deduplication_id (the client adds a counter). Give each client its own,
  // e.g. a UUID; empty: one derived from the time source's clock at start.
  std::string deduplication_id_base;
};

}  // namespace mixerclient

#endif  // MIXERCLIENT_OPTIONS_H_
