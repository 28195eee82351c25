#include "mixerclient/referenced.h"

#include <algorithm>
#include <cstring>
#include <tuple>

#include "mixerclient/global_dictionary.h"

namespace mixerclient {
namespace {

void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(static_cast<uint8_t>(v) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void AppendString(std::string* out, std::string_view s) {
  AppendVarint(out, s.size());
  out->append(s.data(), s.size());
}

template <typename T>
void AppendRaw(std::string* out, const T& v) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  out->append(bytes, sizeof(T));
}

void AppendRef(std::string* out, const AttributeRef& ref) {
  AppendString(out, ref.name);
  if (ref.has_map_key) {
    out->push_back('[');
    AppendString(out, ref.map_key);
  } else {
    out->push_back('.');
  }
}

// The value's kind, then its bytes; lengths make every encoding unambiguous.
void AppendValue(std::string* out, const Value& value) {
  out->push_back(static_cast<char>(KindOf(value)));
  switch (KindOf(value)) {
    case ValueKind::kString: AppendString(out, *std::get_if<std::string>(&value)); break;
    case ValueKind::kInt64: AppendRaw(out, *std::get_if<int64_t>(&value)); break;
    case ValueKind::kDouble: AppendRaw(out, *std::get_if<double>(&value)); break;
    case ValueKind::kBool: out->push_back(*std::get_if<bool>(&value) ? 1 : 0); break;
    case ValueKind::kBytes: AppendString(out, std::get_if<Bytes>(&value)->data); break;
    case ValueKind::kTimestamp:
      AppendRaw(out, std::get_if<Timestamp>(&value)->seconds);
      AppendRaw(out, std::get_if<Timestamp>(&value)->nanos);
      break;
    case ValueKind::kDuration:
      AppendRaw(out, std::get_if<Duration>(&value)->seconds);
      AppendRaw(out, std::get_if<Duration>(&value)->nanos);
      break;
    case ValueKind::kStringMap: {
      const StringMap& map = *std::get_if<StringMap>(&value);
      AppendVarint(out, map.size());
      for (const auto& [k, v] : map) {
        AppendString(out, k);
        AppendString(out, v);
      }
      break;
    }
  }
}

void SortUnique(std::vector<AttributeRef>* refs) {
  std::sort(refs->begin(), refs->end());
  refs->erase(std::unique(refs->begin(), refs->end()), refs->end());
}

}  // namespace

bool AttributeRef::operator<(const AttributeRef& o) const {
  return std::tie(name, has_map_key, map_key) < std::tie(o.name, o.has_map_key, o.map_key);
}

Status Referenced::FromProto(const ReferencedAttributes& proto, int32_t global_word_count,
                             Referenced* out) {
  Referenced shape;
  for (size_t i = 0; i < proto.attribute_matches.size(); ++i) {
    const AttributeMatch& match = proto.attribute_matches[i];
    const std::string where = "attribute_matches[" + std::to_string(i) + "]";
    std::string_view name;
    if (!LookupWord(match.name, proto.words, global_word_count, &name)) {
      return Status(Code::kInvalidArgument,
                    where + ".name: " + DescribeBadIndex(match.name, proto.words.size(), global_word_count));
    }
    AttributeRef ref{std::string(name), false, ""};
    if (match.map_key != 0) {
      std::string_view key;
      if (!LookupWord(match.map_key, proto.words, global_word_count, &key)) {
        return Status(Code::kInvalidArgument, where + ".map_key: " +
                                                  DescribeBadIndex(match.map_key, proto.words.size(), global_word_count));
      }
      ref.has_map_key = true;
      ref.map_key = std::string(key);
    }
    switch (match.condition) {
      case kAbsence: shape.absence_.push_back(std::move(ref)); break;
      case kExact: shape.exact_.push_back(std::move(ref)); break;
      case kRegex:
        return Status(Code::kUnimplemented, where + ": REGEX match on " + ref.name + " cannot be cached");
      default:
        return Status(Code::kInvalidArgument,
                      where + ": unknown condition " + std::to_string(match.condition) + " on " + ref.name);
    }
  }
  SortUnique(&shape.absence_);
  SortUnique(&shape.exact_);
  shape.key_.push_back('A');
  for (const AttributeRef& ref : shape.absence_) AppendRef(&shape.key_, ref);
  shape.key_.push_back('E');
  for (const AttributeRef& ref : shape.exact_) AppendRef(&shape.key_, ref);
  *out = std::move(shape);
  return Status::Ok();
}

bool Referenced::Signature(const Attributes& attributes, std::string* signature) const {
  for (const AttributeRef& ref : absence_) {
    const Value* value = attributes.Get(ref.name);
    if (value == nullptr) continue;
    if (!ref.has_map_key) return false;
    const StringMap* map = std::get_if<StringMap>(value);
    if (map == nullptr || map->count(ref.map_key) > 0) return false;
  }
  // Check every EXACT key before writing anything, so a mismatch leaves *signature as it was.
  for (const AttributeRef& ref : exact_) {
    const Value* value = attributes.Get(ref.name);
    if (value == nullptr) return false;
    if (ref.has_map_key) {
      const StringMap* map = std::get_if<StringMap>(value);
      if (map == nullptr || map->count(ref.map_key) == 0) return false;
    }
  }
  for (const AttributeRef& ref : exact_) {
    const Value* value = attributes.Get(ref.name);
    AppendRef(signature, ref);
    if (ref.has_map_key) {
      AppendString(signature, std::get_if<StringMap>(value)->find(ref.map_key)->second);
    } else {
      AppendValue(signature, *value);
    }
  }
  return true;
}

std::string Referenced::DebugString() const {
  std::string out = "absent: [";
  const auto append = [&](const std::vector<AttributeRef>& refs) {
    bool first = true;
    for (const AttributeRef& ref : refs) {
      if (!first) out += ", ";
      first = false;
      out += ref.name;
      if (ref.has_map_key) out += "[" + ref.map_key + "]";
    }
  };
  append(absence_);
  out += "], exact: [";
  append(exact_);
  out += "]";
  return out;
}

}  // namespace mixerclient
