#include "mixerclient/compressed_writer.h"

#include <algorithm>

#include "mixerclient/codec.h"
#include "mixerclient/codec_internal.h"

namespace mixerclient {
namespace {

// codec.h's order for int32 keys: descending as unsigned values.
template <typename T>
void SortForWire(std::vector<std::pair<int32_t, T>>* v) {
  std::sort(v->begin(), v->end(), [](const auto& a, const auto& b) {
    return static_cast<uint32_t>(a.first) > static_cast<uint32_t>(b.first);
  });
}

template <typename T, typename WriteValue>
void WriteEntries(WireWriter& w, uint32_t field, std::vector<std::pair<int32_t, T>>* entries,
                  WriteValue&& write_value) {
  SortForWire(entries);
  for (const auto& entry : *entries) {
    codec::WriteMessage(w, field, [&](WireWriter& e) {
      e.Sint32Field(1, entry.first);
      write_value(e, entry.second);
    });
  }
  entries->clear();
}

}  // namespace

void CompressedWriter::Add(std::string_view name, const Value& value, MessageDictionary* dict) {
  const int32_t index = dict->Index(name);
  switch (KindOf(value)) {
    case ValueKind::kString: strings_.emplace_back(index, dict->Index(*std::get_if<std::string>(&value))); break;
    case ValueKind::kInt64: int64s_.emplace_back(index, *std::get_if<int64_t>(&value)); break;
    case ValueKind::kDouble: doubles_.emplace_back(index, *std::get_if<double>(&value)); break;
    case ValueKind::kBool: bools_.emplace_back(index, *std::get_if<bool>(&value)); break;
    case ValueKind::kBytes: bytes_.emplace_back(index, &std::get_if<Bytes>(&value)->data); break;
    case ValueKind::kTimestamp: timestamps_.emplace_back(index, *std::get_if<Timestamp>(&value)); break;
    case ValueKind::kDuration: durations_.emplace_back(index, *std::get_if<Duration>(&value)); break;
    case ValueKind::kStringMap: {
      const size_t begin = map_entries_.size();
      for (const auto& [key, entry] : *std::get_if<StringMap>(&value)) {
        const int32_t k = dict->Index(key);  // key first, as Compress does
        map_entries_.emplace_back(k, dict->Index(entry));
      }
      string_maps_.emplace_back(index, MapSpan{begin, map_entries_.size()});
      break;
    }
  }
}

bool CompressedWriter::empty() const {
  return strings_.empty() && int64s_.empty() && doubles_.empty() && bools_.empty() && timestamps_.empty() &&
         durations_.empty() && bytes_.empty() && string_maps_.empty();
}

void CompressedWriter::WriteTo(WireWriter& w) {
  WriteEntries(w, 2, &strings_, [](WireWriter& e, int32_t v) { e.Sint32Field(2, v); });
  WriteEntries(w, 3, &int64s_, [](WireWriter& e, int64_t v) { e.Int64Field(2, v); });
  WriteEntries(w, 4, &doubles_, [](WireWriter& e, double v) { e.DoubleField(2, v); });
  WriteEntries(w, 5, &bools_, [](WireWriter& e, bool v) { e.BoolField(2, v); });
  WriteEntries(w, 6, &timestamps_, [](WireWriter& e, const Timestamp& v) {
    codec::WriteMessage(e, 2, [&](WireWriter& t) { codec::WriteTimestamp(t, v); });
  });
  WriteEntries(w, 7, &durations_, [](WireWriter& e, const Duration& v) {
    codec::WriteMessage(e, 2, [&](WireWriter& d) { codec::WriteDuration(d, v); });
  });
  WriteEntries(w, 8, &bytes_, [](WireWriter& e, const std::string* v) { e.BytesField(2, *v); });
  WriteEntries(w, 9, &string_maps_, [this](WireWriter& e, const MapSpan& span) {
    codec::WriteMessage(e, 2, [&](WireWriter& m) {
      auto first = map_entries_.begin() + static_cast<std::ptrdiff_t>(span.begin);
      auto last = map_entries_.begin() + static_cast<std::ptrdiff_t>(span.end);
      std::sort(first, last, [](const auto& a, const auto& b) {
        return static_cast<uint32_t>(a.first) > static_cast<uint32_t>(b.first);
      });
      for (auto it = first; it != last; ++it) {
        codec::WriteMessage(m, 1, [&](WireWriter& x) {
          x.Sint32Field(1, it->first);
          x.Sint32Field(2, it->second);
        });
      }
    });
  });
  map_entries_.clear();
}

std::string EncodeCheckRequestFor(const Attributes& attributes, int32_t global_word_count,
                                  const std::string& deduplication_id,
                                  const std::map<std::string, QuotaParams>& quotas) {
  MessageDictionary dict(global_word_count);
  CompressedWriter writer;
  for (const auto& [name, value] : attributes.values()) writer.Add(name, value, &dict);
  CheckRequest rest;  // everything after field 1, encoded by the codec
  rest.global_word_count = static_cast<uint32_t>(global_word_count);
  rest.deduplication_id = deduplication_id;
  rest.quotas = quotas;
  std::string out;
  WireWriter w(&out);
  codec::WriteMessage(w, 1, [&](WireWriter& a) {
    for (const std::string& word : dict.TakeWords()) a.BytesField(1, word);
    writer.WriteTo(a);
  });
  out += EncodeCheckRequest(rest);
  return out;
}

}  // namespace mixerclient
