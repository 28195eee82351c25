// CompressedWriter: attributes straight to the wire as a CompressedAttributes body, with no
// intermediate maps (the hot paths: every report, every Check that goes to Mixer).
//
// Add() compresses each attribute's words into the dictionary and remembers the indexes;
// WriteTo() then writes the typed maps (fields 2..9) in the order codec.h uses, so the bytes
// equal EncodeCompressedAttributes(Compress(...)) minus the words field. The scratch vectors
// are kept between messages, so a steady stream of reports allocates nothing here.
#ifndef MIXERCLIENT_COMPRESSED_WRITER_H_
#define MIXERCLIENT_COMPRESSED_WRITER_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mixerclient/attributes.h"
#include "mixerclient/global_dictionary.h"
#include "mixerclient/messages.h"
#include "mixerclient/wire.h"

namespace mixerclient {

class CompressedWriter {
 public:
  // `value` must stay alive until WriteTo (its bytes are not copied).
  void Add(std::string_view name, const Value& value, MessageDictionary* dict);
  // Writes fields 2..9 of the message and forgets what was added.
  void WriteTo(WireWriter& w);
  bool empty() const;

 private:
  struct MapSpan {
    size_t begin, end;  // into map_entries_
  };
  std::vector<std::pair<int32_t, int32_t>> strings_;
  std::vector<std::pair<int32_t, int64_t>> int64s_;
  std::vector<std::pair<int32_t, double>> doubles_;
  std::vector<std::pair<int32_t, bool>> bools_;
  std::vector<std::pair<int32_t, Timestamp>> timestamps_;
  std::vector<std::pair<int32_t, Duration>> durations_;
  std::vector<std::pair<int32_t, const std::string*>> bytes_;
  std::vector<std::pair<int32_t, MapSpan>> string_maps_;
  std::vector<std::pair<int32_t, int32_t>> map_entries_;
};

// A whole CheckRequest for `attributes`, written directly: the same bytes as
// EncodeCheckRequest of a request whose attributes are Compress(attributes, count).
std::string EncodeCheckRequestFor(const Attributes& attributes, int32_t global_word_count,
                                  const std::string& deduplication_id,
                                  const std::map<std::string, QuotaParams>& quotas);

}  // namespace mixerclient

#endif  // MIXERCLIENT_COMPRESSED_WRITER_H_
