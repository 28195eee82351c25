// Attributes: the bag of named, typed values a Check or Report carries (Istio's attribute
// vocabulary: source.uid, request.headers, response.code, ...).
#ifndef MIXERCLIENT_ATTRIBUTES_H_
#define MIXERCLIENT_ATTRIBUTES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mixerclient/attribute_value.h"

namespace mixerclient {

// An attribute's name. Istio's own names (the global dictionary's words: nearly all a proxy
// sets) are kept as views of the dictionary's static table with their rank in it, so a bag
// neither allocates for them nor reads their bytes to order them; other names are copies.
class AttributeName {
 public:
  // What a bag looks a name up by: the name, and its rank (-1: not a global word, compare
  // the bytes). For a global word `name` views the dictionary's copy, which a bag then keeps
  // without copying it: make keys with KeyFor, not by hand.
  struct Key {
    std::string_view name;
    int32_t rank = -1;
  };
  // Looks `name` up in the global dictionary (one hash lookup).
  static Key KeyFor(std::string_view name);

  AttributeName() = default;
  explicit AttributeName(std::string_view name) : AttributeName(KeyFor(name)) {}
  explicit AttributeName(const Key& key)
      : owned_(key.rank >= 0 ? std::string_view() : key.name), global_(key.rank >= 0 ? key.name : std::string_view()), rank_(key.rank) {}

  std::string_view view() const { return rank_ >= 0 ? global_ : std::string_view(owned_); }
  operator std::string_view() const { return view(); }  // NOLINT: a name is read as text
  std::string str() const { return std::string(view()); }
  int32_t rank() const { return rank_; }
  Key key() const { return Key{view(), rank_}; }

  friend bool operator==(const AttributeName& a, std::string_view b) { return a.view() == b; }
  friend bool operator!=(const AttributeName& a, std::string_view b) { return a.view() != b; }

 private:
  std::string owned_;            // a name that is not a global word
  std::string_view global_;      // a global word's static copy
  int32_t rank_ = -1;
};

// <0, 0, >0 as `a` sorts before, with or after `b` (bytewise, the ranks when both have one).
inline int CompareNames(const AttributeName::Key& a, const AttributeName::Key& b) {
  if (a.rank >= 0 && b.rank >= 0) return (a.rank > b.rank) - (a.rank < b.rank);
  return a.name.compare(b.name);
}

class Attributes {
 public:
  using Entry = std::pair<AttributeName, Value>;

  // The entries in name order; valid until the bag changes.
  class View {
   public:
    class const_iterator {
     public:
      const_iterator(const Entry* entries, const uint32_t* at) : entries_(entries), at_(at) {}
      const Entry& operator*() const { return entries_[*at_]; }
      const Entry* operator->() const { return &entries_[*at_]; }
      const_iterator& operator++() {
        ++at_;
        return *this;
      }
      bool operator==(const const_iterator& o) const { return at_ == o.at_; }
      bool operator!=(const const_iterator& o) const { return at_ != o.at_; }

     private:
      const Entry* entries_;
      const uint32_t* at_;
    };

    View(const std::vector<Entry>& entries, const std::vector<uint32_t>& order)
        : entries_(entries.data()), begin_(order.data()), end_(order.data() + order.size()) {}
    const_iterator begin() const { return const_iterator(entries_, begin_); }
    const_iterator end() const { return const_iterator(entries_, end_); }
    size_t size() const { return static_cast<size_t>(end_ - begin_); }
    bool empty() const { return begin_ == end_; }

   private:
    const Entry* entries_;
    const uint32_t* begin_;
    const uint32_t* end_;
  };

  // Setting a name again replaces its value (of any type). Each takes the name as text
  // (looked up in the global dictionary) or as a Key made once (AttributeName::KeyFor), which
  // spares the lookup: what a filter's fixed names use.
  using Key = AttributeName::Key;
  void Set(const Key& name, Value value) { Slot(name) = std::move(value); }
  void SetString(const Key& name, std::string_view value);
  void SetInt64(const Key& name, int64_t value) { Slot(name) = value; }
  void SetDouble(const Key& name, double value) { Slot(name) = value; }
  void SetBool(const Key& name, bool value) { Slot(name) = value; }
  void SetBytes(const Key& name, std::string_view value) { Slot(name) = Bytes{std::string(value)}; }
  void SetTimestamp(const Key& name, Timestamp value) { Slot(name) = value; }
  void SetDuration(const Key& name, Duration value) { Slot(name) = value; }
  void SetStringMap(const Key& name, StringMap value) { Slot(name) = std::move(value); }
  // Adds one key to a string map, creating the map (or replacing a non-map value).
  void SetStringMapEntry(const Key& name, std::string_view key, std::string_view value);

  void Set(std::string_view name, Value value) { Set(AttributeName::KeyFor(name), std::move(value)); }
  void SetString(std::string_view name, std::string_view value) { SetString(AttributeName::KeyFor(name), value); }
  void SetInt64(std::string_view name, int64_t value) { SetInt64(AttributeName::KeyFor(name), value); }
  void SetDouble(std::string_view name, double value) { SetDouble(AttributeName::KeyFor(name), value); }
  void SetBool(std::string_view name, bool value) { SetBool(AttributeName::KeyFor(name), value); }
  void SetBytes(std::string_view name, std::string_view value) { SetBytes(AttributeName::KeyFor(name), value); }
  void SetTimestamp(std::string_view name, Timestamp value) { SetTimestamp(AttributeName::KeyFor(name), value); }
  void SetDuration(std::string_view name, Duration value) { SetDuration(AttributeName::KeyFor(name), value); }
  void SetStringMap(std::string_view name, StringMap value) {
    SetStringMap(AttributeName::KeyFor(name), std::move(value));
  }
  void SetStringMapEntry(std::string_view name, std::string_view key, std::string_view value) {
    SetStringMapEntry(AttributeName::KeyFor(name), key, value);
  }

  // nullptr if absent.
  const Value* Get(const Key& name) const;
  const Value* Get(std::string_view name) const { return Get(AttributeName::KeyFor(name)); }
  // The string value, or nullptr if absent or not a string.
  const std::string* GetString(const Key& name) const;
  const std::string* GetString(std::string_view name) const { return GetString(AttributeName::KeyFor(name)); }
  bool Has(const Key& name) const { return Get(name) != nullptr; }
  bool Has(std::string_view name) const { return Get(name) != nullptr; }
  bool Erase(const Key& name);
  bool Erase(std::string_view name) { return Erase(AttributeName::KeyFor(name)); }
  // Keeps the capacity, so a bag refilled for the next request need not allocate it again.
  void Clear() {
    entries_.clear();
    order_.clear();
  }
  // Room for `n` attributes without reallocating.
  void Reserve(size_t n) {
    entries_.reserve(n);
    order_.reserve(n);
  }

  // Copies every value of `other` in, replacing values of the same name.
  void Merge(const Attributes& other);

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  // Sorted by name.
  View values() const { return View(entries_, order_); }

  // Same names with SameValue values.
  bool operator==(const Attributes& other) const;
  bool operator!=(const Attributes& other) const { return !(*this == other); }

  // For logs and test failures: `{a: "x", b: 3}`.
  std::string DebugString() const;

 private:
  // The place in order_ where `key` is or would go.
  size_t LowerBound(const AttributeName::Key& key) const;
  // The entry for `key`, or nullptr.
  const Entry* Find(const AttributeName::Key& key) const;
  // The value for `key`, added (an empty string) if absent.
  Value& Slot(const AttributeName::Key& key);

  // A request's bag gets ~50 attributes in no particular order, then is read in name order
  // (the delta against the previous report, compression). So the entries stay where they
  // were added and only their positions are kept sorted: adding one shifts a few integers,
  // not values, and copying a bag is two allocations instead of one per attribute.
  std::vector<Entry> entries_;   // in the order they were added
  std::vector<uint32_t> order_;  // indexes into entries_, in name order
};

}  // namespace mixerclient

#endif  // MIXERCLIENT_ATTRIBUTES_H_
