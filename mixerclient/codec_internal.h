// Shared pieces of the message codecs (codec_*.cc); not part of the public API.
#ifndef MIXERCLIENT_CODEC_INTERNAL_H_
#define MIXERCLIENT_CODEC_INTERNAL_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mixerclient/attribute_value.h"
#include "mixerclient/attributes.h"
#include "mixerclient/global_dictionary.h"
#include "mixerclient/messages.h"
#include "mixerclient/wire.h"

namespace mixerclient {
namespace codec {

// What a field handler did with one field.
enum class Field { kRead, kUnknown, kError };

// Reads every field of a message, calling handle(field, type, reader, error) for each;
// fields it reports as kUnknown are skipped. On error, *error is "field N: why".
template <typename Handler>
bool ParseFields(std::string_view data, std::string* error, Handler&& handle) {
  WireReader reader(data);
  while (!reader.done()) {
    uint32_t field;
    WireType type;
    if (!reader.ReadTag(&field, &type)) {
      *error = reader.error();
      return false;
    }
    std::string why;
    switch (handle(field, type, reader, &why)) {
      case Field::kRead:
        break;
      case Field::kUnknown:
        if (!reader.Skip(field, type)) {
          *error = "field " + std::to_string(field) + ": " + reader.error();
          return false;
        }
        break;
      case Field::kError:
        *error = why.empty() ? "field " + std::to_string(field) + ": " + reader.error() : why;
        return false;
    }
  }
  return true;
}

inline Field ReadVarint(WireReader& r, WireType type, uint64_t* v) {
  if (type != WireType::kVarint) return Field::kUnknown;
  return r.ReadVarint(v) ? Field::kRead : Field::kError;
}
inline Field ReadInt64(WireReader& r, WireType type, int64_t* out) {
  uint64_t v;
  const Field f = ReadVarint(r, type, &v);
  if (f == Field::kRead) *out = static_cast<int64_t>(v);
  return f;
}
// int32 and enums: the low 32 bits of the varint.
inline Field ReadInt32(WireReader& r, WireType type, int32_t* out) {
  uint64_t v;
  const Field f = ReadVarint(r, type, &v);
  if (f == Field::kRead) *out = static_cast<int32_t>(static_cast<uint32_t>(v));
  return f;
}
inline Field ReadUint32(WireReader& r, WireType type, uint32_t* out) {
  uint64_t v;
  const Field f = ReadVarint(r, type, &v);
  if (f == Field::kRead) *out = static_cast<uint32_t>(v);
  return f;
}
inline Field ReadSint32(WireReader& r, WireType type, int32_t* out) {
  uint64_t v;
  const Field f = ReadVarint(r, type, &v);
  if (f == Field::kRead) *out = UnZigZag32(static_cast<uint32_t>(v));
  return f;
}
inline Field ReadBool(WireReader& r, WireType type, bool* out) {
  uint64_t v;
  const Field f = ReadVarint(r, type, &v);
  if (f == Field::kRead) *out = v != 0;
  return f;
}
inline Field ReadDouble(WireReader& r, WireType type, double* out) {
  if (type != WireType::kFixed64) return Field::kUnknown;
  return r.ReadDouble(out) ? Field::kRead : Field::kError;
}
inline Field ReadBytes(WireReader& r, WireType type, std::string* out) {
  if (type != WireType::kLengthDelimited) return Field::kUnknown;
  std::string_view v;
  if (!r.ReadLengthDelimited(&v)) return Field::kError;
  out->assign(v.data(), v.size());
  return Field::kRead;
}
// A proto3 `string`: must be UTF-8.
Field ReadString(WireReader& r, WireType type, uint32_t field, std::string* out,
                 std::string* error);
// A nested message: `parse(bytes, error)` decodes it; errors get "name: " in front.
template <typename Parse>
Field ReadMessage(WireReader& r, WireType type, const char* name, std::string* error,
                  Parse&& parse) {
  if (type != WireType::kLengthDelimited) return Field::kUnknown;
  std::string_view bytes;
  if (!r.ReadLengthDelimited(&bytes)) return Field::kError;
  std::string why;
  if (!parse(bytes, &why)) {
    *error = std::string(name) + ": " + why;
    return Field::kError;
  }
  return Field::kRead;
}

// Message bodies (fields only, no tag or length), and their parsers.
void WriteDuration(WireWriter& w, const Duration& d);
void WriteTimestamp(WireWriter& w, const Timestamp& t);
void WriteRpcStatus(WireWriter& w, const RpcStatus& s);
void WriteCompressedAttributes(WireWriter& w, const CompressedAttributes& a);
void WriteReferencedAttributes(WireWriter& w, const ReferencedAttributes& r);

bool ParseDuration(std::string_view data, Duration* out, std::string* error);
bool ParseTimestamp(std::string_view data, Timestamp* out, std::string* error);
bool ParseRpcStatus(std::string_view data, RpcStatus* out, std::string* error);
bool ParseCompressedAttributes(std::string_view data, CompressedAttributes* out,
                               std::string* error);
bool ParseReferencedAttributes(std::string_view data, ReferencedAttributes* out,
                               std::string* error);

// Map entries go on the wire in the order of the Python protobuf runtime's (upb's)
// deterministic serialization, which the property tests hold us to. upb sorts the keys and
// then writes the buffer back to front, so its order comes out as:
//   int32/sint32 keys: descending as unsigned 32-bit values (-1 first, then -2, ..., then
//   the largest positive key down to 0);
//   string keys: bytewise, except that a string comes after the strings it is a prefix of
//   (the end of a string sorts after every byte).
template <typename V, typename Visit>
void ForEachInWireOrder(const std::map<int32_t, V>& map, Visit&& visit) {
  const auto zero = map.lower_bound(0);
  for (auto it = std::make_reverse_iterator(zero); it != map.rend(); ++it) visit(it->first, it->second);
  for (auto it = map.rbegin(); it != std::make_reverse_iterator(zero); ++it) visit(it->first, it->second);
}

bool StringKeyBefore(std::string_view a, std::string_view b);

template <typename V, typename Compare, typename Visit>
void ForEachInWireOrder(const std::map<std::string, V, Compare>& map, Visit&& visit) {
  std::vector<const std::pair<const std::string, V>*> entries;
  entries.reserve(map.size());
  for (const auto& entry : map) entries.push_back(&entry);
  std::sort(entries.begin(), entries.end(), [](const auto* a, const auto* b) { return StringKeyBefore(a->first, b->first); });
  for (const auto* entry : entries) visit(entry->first, entry->second);
}

// The same for an attribute bag's entries.
template <typename Visit>
void ForEachInWireOrder(const Attributes::View& entries, Visit&& visit) {
  std::vector<const Attributes::Entry*> order;
  order.reserve(entries.size());
  for (const auto& entry : entries) order.push_back(&entry);
  std::sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    return StringKeyBefore(a->first.view(), b->first.view());
  });
  for (const auto* entry : order) visit(entry->first.view(), entry->second);
}

// Writes message `field` holding `body(w)`.
template <typename Body>
void WriteMessage(WireWriter& w, uint32_t field, Body&& body) {
  const size_t start = w.BeginMessage(field);
  body(w);
  w.EndMessage(start);
}

}  // namespace codec
}  // namespace mixerclient

#endif  // MIXERCLIENT_CODEC_INTERNAL_H_
