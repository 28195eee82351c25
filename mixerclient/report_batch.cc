#include "mixerclient/report_batch.h"

#include <algorithm>
#include <utility>

#include "mixerclient/codec_internal.h"

namespace mixerclient {

ReportBatch::ReportBatch(const ReportOptions& options, const TimeSource* time, Send send)
    : options_(options), time_(time), send_(std::move(send)) {}

bool ReportBatch::Due(int64_t now) const {
  return size() > 0 && now - started_nanos_ >= static_cast<int64_t>(options_.max_batch_time_ms) * kNanosPerMilli;
}

bool ReportBatch::Extends(const Attributes& attributes) const {
  // Both are sorted by name: one merge walk.
  auto next = attributes.values().begin();
  const auto end = attributes.values().end();
  for (const auto& old : previous_.values()) {
    while (next != end && next->first < old.first) ++next;
    if (next == end || next->first != old.first) return false;
  }
  return true;
}

void ReportBatch::Add(Attributes attributes, int32_t global_word_count) {
  const int64_t now = time_->NowNanos();
  if (Due(now)) Flush();
  // A removal cannot be a delta: start over if any previous attribute is gone.
  if (size() > 0 && !Extends(attributes)) Flush();
  if (size() == 0) {
    dict_ = MessageDictionary(global_word_count);
    global_word_count_ = global_word_count;
    started_nanos_ = now;
  }
  if (size() == 0) {
    for (const auto& [name, value] : attributes.values()) writer_.Add(name, value, &dict_);
  } else {
    // Only what changed since the previous report; the walk is in step with previous_.
    auto old = previous_.values().begin();
    const auto old_end = previous_.values().end();
    for (const auto& [name, value] : attributes.values()) {
      while (old != old_end && old->first < name) ++old;
      if (old != old_end && old->first == name && SameValue(old->second, value)) continue;
      writer_.Add(name, value, &dict_);
    }
  }
  WireWriter w(&body_);
  codec::WriteMessage(w, 1, [&](WireWriter& entry) { writer_.WriteTo(entry); });
  ++entries_;
  previous_ = std::move(attributes);
  if (size() >= std::max(1, options_.max_batch_entries) || options_.max_batch_time_ms <= 0) Flush();
}

void ReportBatch::Flush() {
  if (size() == 0) return;
  std::string request = std::move(body_);
  WireWriter w(&request);
  for (const std::string& word : dict_.TakeWords()) w.BytesField(2, word);  // default_words
  if (global_word_count_ != 0) w.VarintField(3, static_cast<uint32_t>(global_word_count_));
  // repeated_attributes_semantics: DELTA_ENCODING, the default, so not written.
  const int32_t entries = entries_;
  body_ = std::string();
  entries_ = 0;
  previous_.Clear();
  send_(std::move(request), entries);
}

int64_t ReportBatch::Tick() {
  const int64_t now = time_->NowNanos();
  if (Due(now)) Flush();
  if (size() == 0) return -1;
  const int64_t left = started_nanos_ + static_cast<int64_t>(options_.max_batch_time_ms) * kNanosPerMilli - now;
  return std::max<int64_t>(0, (left + kNanosPerMilli - 1) / kNanosPerMilli);
}

}  // namespace mixerclient
