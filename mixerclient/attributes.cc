#include "mixerclient/attributes.h"

#include <cstring>
#include <tuple>
#include <utility>

#include "mixerclient/global_dictionary.h"

namespace mixerclient {

bool SameValue(const Value& a, const Value& b) {
  if (a.index() != b.index()) return false;
  if (const double* x = std::get_if<double>(&a)) {
    const double y = *std::get_if<double>(&b);
    return std::memcmp(x, &y, sizeof(double)) == 0;
  }
  return a == b;
}

AttributeName::Key AttributeName::KeyFor(std::string_view name) {
  Key key{name, -1};
  std::string_view stored;
  const int32_t rank = GlobalDictionary::Rank(name, &stored);
  if (rank >= 0) key = Key{stored, rank};
  return key;
}

size_t Attributes::LowerBound(const AttributeName::Key& key) const {
  // Bags are often filled in name order (copies, decoded messages): try the end first.
  if (order_.empty() || CompareNames(entries_[order_.back()].first.key(), key) < 0) return order_.size();
  size_t lo = 0;
  size_t hi = order_.size();
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if (CompareNames(entries_[order_[mid]].first.key(), key) < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

const Attributes::Entry* Attributes::Find(const AttributeName::Key& key) const {
  const size_t at = LowerBound(key);
  if (at == order_.size()) return nullptr;
  const Entry& entry = entries_[order_[at]];
  return CompareNames(entry.first.key(), key) == 0 ? &entry : nullptr;
}

Value& Attributes::Slot(const AttributeName::Key& key) {
  const size_t at = LowerBound(key);
  if (at < order_.size()) {
    Entry& entry = entries_[order_[at]];
    if (CompareNames(entry.first.key(), key) == 0) return entry.second;
  }
  order_.insert(order_.begin() + static_cast<std::ptrdiff_t>(at), static_cast<uint32_t>(entries_.size()));
  entries_.emplace_back(std::piecewise_construct, std::forward_as_tuple(key), std::forward_as_tuple());
  return entries_.back().second;
}

void Attributes::SetString(const Key& name, std::string_view value) {
  Value& slot = Slot(name);
  if (std::string* s = std::get_if<std::string>(&slot)) {
    s->assign(value.data(), value.size());  // in place: no temporary Value
  } else {
    slot.emplace<std::string>(value);
  }
}

void Attributes::SetStringMapEntry(const Key& name, std::string_view key, std::string_view value) {
  Value& slot = Slot(name);
  if (!std::holds_alternative<StringMap>(slot)) slot = StringMap();
  std::get_if<StringMap>(&slot)->insert_or_assign(std::string(key), std::string(value));
}

const Value* Attributes::Get(const Key& name) const {
  const Entry* entry = Find(name);
  return entry == nullptr ? nullptr : &entry->second;
}

const std::string* Attributes::GetString(const Key& name) const {
  const Value* v = Get(name);
  return v == nullptr ? nullptr : std::get_if<std::string>(v);
}

bool Attributes::Erase(const Key& name) {
  const size_t at = LowerBound(name);
  if (at == order_.size() || CompareNames(entries_[order_[at]].first.key(), name) != 0) return false;
  const uint32_t gone = order_[at];
  entries_.erase(entries_.begin() + gone);
  order_.erase(order_.begin() + static_cast<std::ptrdiff_t>(at));
  for (uint32_t& i : order_) {
    if (i > gone) --i;
  }
  return true;
}

void Attributes::Merge(const Attributes& other) {
  if (empty()) {
    entries_ = other.entries_;
    order_ = other.order_;
    return;
  }
  // The names come with their ranks: no dictionary lookups.
  for (const auto& [name, value] : other.values()) Slot(name.key()) = value;
}

bool Attributes::operator==(const Attributes& other) const {
  if (size() != other.size()) return false;
  const View mine = values();
  const View theirs = other.values();
  auto a = mine.begin();
  auto b = theirs.begin();
  for (; a != mine.end(); ++a, ++b) {
    if (CompareNames(a->first.key(), b->first.key()) != 0 || !SameValue(a->second, b->second)) return false;
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
  for (const auto& [name, value] : values()) {
    if (!first) out += ", ";
    first = false;
    out += name.view();
    out += ": ";
    AppendValue(&out, value);
  }
  out += "}";
  return out;
}

}  // namespace mixerclient
