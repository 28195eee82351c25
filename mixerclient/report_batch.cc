#include "mixerclient/report_batch.h"

#include <algorithm>
#include <utility>

#include "mixerclient/compressor.h"

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
    request_.global_word_count = static_cast<uint32_t>(global_word_count);
    started_nanos_ = now;
  }
  CompressedAttributes& entry = request_.attributes.emplace_back();
  if (size() == 1) {
    for (const auto& [name, value] : attributes.values()) CompressAttribute(name, value, &dict_, &entry);
  } else {
    // Only what changed since the previous report; the walk is in step with previous_.
    auto old = previous_.values().begin();
    const auto old_end = previous_.values().end();
    for (const auto& [name, value] : attributes.values()) {
      while (old != old_end && old->first < name) ++old;
      if (old != old_end && old->first == name && SameValue(old->second, value)) continue;
      CompressAttribute(name, value, &dict_, &entry);
    }
  }
  previous_ = std::move(attributes);
  if (size() >= std::max(1, options_.max_batch_entries) || options_.max_batch_time_ms <= 0) Flush();
}

void ReportBatch::Flush() {
  if (size() == 0) return;
  ReportRequest request = std::move(request_);
  request.default_words = dict_.TakeWords();
  request.repeated_attributes_semantics = kDeltaEncoding;
  request_ = ReportRequest();
  previous_.Clear();
  const int32_t entries = static_cast<int32_t>(request.attributes.size());
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
