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

void ReportBatch::Add(const Attributes& attributes, int32_t global_word_count) {
  const int64_t now = time_->NowNanos();
  if (Due(now)) Flush();
  if (size() > 0) {
    // A removal cannot be a delta: start over if any previous attribute is gone.
    for (const auto& entry : previous_.values()) {
      if (!attributes.Has(entry.first)) {
        Flush();
        break;
      }
    }
  }
  if (size() == 0) {
    dict_ = MessageDictionary(global_word_count);
    request_.global_word_count = static_cast<uint32_t>(global_word_count);
    started_nanos_ = now;
  }
  CompressedAttributes& entry = request_.attributes.emplace_back();
  const bool first = size() == 1;
  for (const auto& [name, value] : attributes.values()) {
    if (!first) {
      const Value* old = previous_.Get(name);
      if (old != nullptr && SameValue(*old, value)) continue;
    }
    CompressAttribute(name, value, &dict_, &entry);
  }
  previous_ = attributes;
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
