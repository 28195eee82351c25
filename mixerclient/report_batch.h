// Report batching with delta encoding.
//
// Reports accumulate in one ReportRequest whose words all go in default_words. The first
// entry of a batch carries the whole bag; each later one only the attributes whose value
// changed from the previous report (DELTA_ENCODING: Mixer applies the entries cumulatively).
// A delta cannot say "this attribute is gone", so a report lacking an attribute of the
// previous one starts a new batch. A batch is sent when it holds max_batch_entries reports,
// when its first report is max_batch_time_ms old (seen on the next Report or Tick), or on
// Flush. Each entry is written to the wire as it is added (its word indexes never change
// within a batch), so a batch costs one growing buffer, not a tree of maps.
#ifndef MIXERCLIENT_REPORT_BATCH_H_
#define MIXERCLIENT_REPORT_BATCH_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "mixerclient/attributes.h"
#include "mixerclient/compressed_writer.h"
#include "mixerclient/global_dictionary.h"
#include "mixerclient/messages.h"
#include "mixerclient/options.h"
#include "mixerclient/time_source.h"

namespace mixerclient {

class ReportBatch {
 public:
  // Sends one finished batch: a serialized ReportRequest with `entries` reports in it.
  using Send = std::function<void(std::string request, int32_t entries)>;

  ReportBatch(const ReportOptions& options, const TimeSource* time, Send send);

  // `global_word_count` applies from the next batch on.
  void Add(Attributes attributes, int32_t global_word_count);
  // Sends the batch now, if it has anything.
  void Flush();
  // Sends the batch if it is due; returns milliseconds until it will be (-1: empty).
  int64_t Tick();

  int32_t size() const { return entries_; }

 private:
  bool Due(int64_t now) const;
  // Whether every attribute of the previous report is in `attributes` (a delta can follow);
  // if so, *changed holds the entries of `attributes` that are new or differ from it.
  bool Changes(const Attributes& attributes, std::vector<const Attributes::Entry*>* changed) const;

  ReportOptions options_;
  const TimeSource* time_;
  Send send_;
  std::string body_;  // the entries so far: ReportRequest field 1, serialized
  int32_t entries_ = 0;
  int32_t global_word_count_ = 0;
  MessageDictionary dict_{0};
  CompressedWriter writer_;
  Attributes previous_;
  std::vector<const Attributes::Entry*> changed_;  // scratch, kept between reports
  int64_t started_nanos_ = 0;
};

}  // namespace mixerclient

#endif  // MIXERCLIENT_REPORT_BATCH_H_
