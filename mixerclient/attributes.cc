#include "mixerclient/attributes.h"

#include <cstring>
#include <utility>

namespace mixerclient {

bool SameValue(const Value& a, const Value& b) {
  if (a.index() != b.index()) return false;
  if (const double* x = std::get_if<double>(&a)) {
    const double y = *std::get_if<double>(&b);
    return std::memcmp(x, &y, sizeof(double)) == 0;
  }
  return a == b;
}

void Attributes::Set(std::string_view name, Value value) {
  // One search: where the name is or would go (emplace alone would search again).
  auto it = values_.lower_bound(name);
  if (it == values_.end() || it->first != name) {
    values_.emplace_hint(it, std::string(name), std::move(value));
  } else {
    it->second = std::move(value);
  }
}

void Attributes::SetString(std::string_view name, std::string_view value) {
  Set(name, Value(std::in_place_type<std::string>, value));
}
void Attributes::SetInt64(std::string_view name, int64_t value) { Set(name, Value(value)); }
void Attributes::SetDouble(std::string_view name, double value) { Set(name, Value(value)); }
void Attributes::SetBool(std::string_view name, bool value) { Set(name, Value(value)); }
void Attributes::SetBytes(std::string_view name, std::string_view value) {
  Set(name, Value(Bytes{std::string(value)}));
}
void Attributes::SetTimestamp(std::string_view name, Timestamp value) { Set(name, Value(value)); }
void Attributes::SetDuration(std::string_view name, Duration value) { Set(name, Value(value)); }
void Attributes::SetStringMap(std::string_view name, StringMap value) {
  Set(name, Value(std::move(value)));
}

void Attributes::SetStringMapEntry(std::string_view name, std::string_view key,
                                   std::string_view value) {
  auto it = values_.lower_bound(name);
  if (it == values_.end() || it->first != name) {
    it = values_.emplace_hint(it, std::string(name), Value(StringMap()));
  } else if (!std::holds_alternative<StringMap>(it->second)) {
    it->second = StringMap();
  }
  std::get_if<StringMap>(&it->second)->insert_or_assign(std::string(key), std::string(value));
}

const Value* Attributes::Get(std::string_view name) const {
  auto it = values_.find(name);
  return it == values_.end() ? nullptr : &it->second;
}

const std::string* Attributes::GetString(std::string_view name) const {
  const Value* v = Get(name);
  return v == nullptr ? nullptr : std::get_if<std::string>(v);
}

bool Attributes::Erase(std::string_view name) {
  auto it = values_.find(name);
  if (it == values_.end()) return false;
  values_.erase(it);
  return true;
}

void Attributes::Merge(const Attributes& other) {
  for (const auto& [name, value] : other.values_) Set(name, value);
}

bool Attributes::operator==(const Attributes& other) const {
  if (values_.size() != other.values_.size()) return false;
  auto a = values_.begin();
  auto b = other.values_.begin();
  for (; a != values_.end(); ++a, ++b) {
    if (a->first != b->first || !SameValue(a->second, b->second)) return false;
  }
  return true;
}

namespace {

void AppendQuoted(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') out->push_back('\\');
    out->push_back(c);
  }
  out->push_back('"');
}

void AppendValue(std::string* out, const Value& value) {
  switch (KindOf(value)) {
    case ValueKind::kString: AppendQuoted(out, *std::get_if<std::string>(&value)); break;
    case ValueKind::kInt64: *out += std::to_string(*std::get_if<int64_t>(&value)); break;
    case ValueKind::kDouble: *out += std::to_string(*std::get_if<double>(&value)); break;
    case ValueKind::kBool: *out += *std::get_if<bool>(&value) ? "true" : "false"; break;
    case ValueKind::kBytes:
      *out += "bytes(" + std::to_string(std::get_if<Bytes>(&value)->data.size()) + ")";
      break;
    case ValueKind::kTimestamp: {
      const Timestamp& t = *std::get_if<Timestamp>(&value);
      *out += "timestamp(" + std::to_string(t.seconds) + "s " + std::to_string(t.nanos) + "ns)";
      break;
    }
    case ValueKind::kDuration: {
      const Duration& d = *std::get_if<Duration>(&value);
      *out += "duration(" + std::to_string(d.seconds) + "s " + std::to_string(d.nanos) + "ns)";
      break;
    }
    case ValueKind::kStringMap: {
      out->push_back('{');
      bool first = true;
      for (const auto& [k, v] : *std::get_if<StringMap>(&value)) {
        if (!first) *out += ", ";
        first = false;
        AppendQuoted(out, k);
        *out += ": ";
        AppendQuoted(out, v);
      }
      out->push_back('}');
      break;
    }
  }
}

}  // namespace

std::string Attributes::DebugString() const {
  std::string out = "{";
  bool first = true;
  for (const auto& [name, value] : values_) {
    if (!first) out += ", ";
    first = false;
    out += name;
    out += ": ";
    AppendValue(&out, value);
  }
  out += "}";
  return out;
}

}  // namespace mixerclient
