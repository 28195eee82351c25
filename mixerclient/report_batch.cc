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

bool ReportBatch::Changes(const Attributes& attributes, std::vector<const Attributes::Entry*>* changed) const {
  // Both are sorted by name: one merge walk, one three-way compare per step.
  changed->clear();
  auto old = previous_.values().begin();
  const auto old_end = previous_.values().end();
  for (const auto& entry : attributes.values()) {
    if (old != old_end) {
      const int order = CompareNames(old->first.key(), entry.first.key());
      if (order < 0) return false;  // the previous report's attribute is gone
      if (order == 0) {
        const bool same = SameValue(old->second, entry.second);
        ++old;
        if (same) continue;
      }
    }
    changed->push_back(&entry);
  }
  return old == old_end;
}

void ReportBatch::Add(Attributes attributes, int32_t global_word_count) {
  const int64_t now = time_->NowNanos();
  if (Due(now)) Flush();
  // Only what changed since the previous report; a removal cannot be a delta, so start
  // over if any previous attribute is gone.
  if (size() > 0 && !Changes(attributes, &changed_)) Flush();
  if (size() == 0) {
    dict_ = MessageDictionary(global_word_count, /*remember=*/true);
    global_word_count_ = global_word_count;
    started_nanos_ = now;
    for (const auto& [name, value] : attributes.values()) writer_.Add(name, value, &dict_);
  } else {
    for (const auto* entry : changed_) writer_.Add(entry->first, entry->second, &dict_);
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
