// Attributes: the bag of named, typed values a Check or Report carries (Istio's attribute
// vocabulary: source.uid, request.headers, response.code, ...).
#ifndef MIXERCLIENT_ATTRIBUTES_H_
#define MIXERCLIENT_ATTRIBUTES_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "mixerclient/attribute_value.h"

namespace mixerclient {

class Attributes {
 public:
  using Map = std::map<std::string, Value, std::less<>>;

  // Setting a name again replaces its value (of any type).
  void Set(std::string_view name, Value value);
  void SetString(std::string_view name, std::string_view value);
  void SetInt64(std::string_view name, int64_t value);
  void SetDouble(std::string_view name, double value);
  void SetBool(std::string_view name, bool value);
  void SetBytes(std::string_view name, std::string_view value);
  void SetTimestamp(std::string_view name, Timestamp value);
  void SetDuration(std::string_view name, Duration value);
  void SetStringMap(std::string_view name, StringMap value);
  // Adds one key to a string map, creating the map (or replacing a non-map value).
  void SetStringMapEntry(std::string_view name, std::string_view key, std::string_view value);

  // nullptr if absent.
  const Value* Get(std::string_view name) const;
  // The string value, or nullptr if absent or not a string.
  const std::string* GetString(std::string_view name) const;
  bool Has(std::string_view name) const { return values_.find(name) != values_.end(); }
  bool Erase(std::string_view name);
  void Clear() { values_.clear(); }

  // Copies every value of `other` in, replacing values of the same name.
  void Merge(const Attributes& other);

  size_t size() const { return values_.size(); }
  bool empty() const { return values_.empty(); }
  // Sorted by name.
  const Map& values() const { return values_; }

  // Same names with SameValue values.
  bool operator==(const Attributes& other) const;
  bool operator!=(const Attributes& other) const { return !(*this == other); }

  // For logs and test failures: `{a: "x", b: 3}`.
  std::string DebugString() const;

 private:
  Map values_;
};

}  // namespace mixerclient

#endif  // MIXERCLIENT_ATTRIBUTES_H_
