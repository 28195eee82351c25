// A least-recently-used map from string keys to values, holding at most `capacity` entries.
#ifndef MIXERCLIENT_LRU_CACHE_H_
#define MIXERCLIENT_LRU_CACHE_H_

#include <cstddef>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace mixerclient {

template <typename V>
class LruCache {
 public:
  explicit LruCache(size_t capacity) : capacity_(capacity) {}
  LruCache(const LruCache&) = delete;
  LruCache& operator=(const LruCache&) = delete;

  // The value for `key`, made the most recently used; nullptr if absent.
  V* Find(std::string_view key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);
    return &it->second->second;
  }

  // Stores `value` under `key` (replacing any value there), evicting the least recently
  // used entries beyond capacity. Returns the stored value (nullptr at capacity 0).
  V* Insert(std::string key, V value) {
    if (capacity_ == 0) return nullptr;
    auto it = index_.find(key);
    if (it != index_.end()) {
      it->second->second = std::move(value);
      order_.splice(order_.begin(), order_, it->second);
      return &it->second->second;
    }
    order_.emplace_front(std::move(key), std::move(value));
    // The index's keys view the list nodes' strings, which never move.
    index_.emplace(std::string_view(order_.front().first), order_.begin());
    while (index_.size() > capacity_) {
      index_.erase(std::string_view(order_.back().first));
      order_.pop_back();
      ++evictions_;
    }
    return &order_.front().second;
  }

  bool Erase(std::string_view key) {
    auto it = index_.find(key);
    if (it == index_.end()) return false;
    auto node = it->second;
    index_.erase(it);
    order_.erase(node);
    return true;
  }

  // Removes every entry for which drop(key, value) is true; returns how many.
  template <typename Pred>
  size_t RemoveIf(Pred&& drop) {
    size_t removed = 0;
    for (auto it = order_.begin(); it != order_.end();) {
      if (drop(it->first, it->second)) {
        index_.erase(std::string_view(it->first));
        it = order_.erase(it);
        ++removed;
      } else {
        ++it;
      }
    }
    return removed;
  }

  void Clear() {
    index_.clear();
    order_.clear();
  }

  size_t size() const { return index_.size(); }
  size_t capacity() const { return capacity_; }
  size_t evictions() const { return evictions_; }

 private:
  using Entry = std::pair<std::string, V>;
  size_t capacity_;
  size_t evictions_ = 0;
  std::list<Entry> order_;  // most recently used first
  std::unordered_map<std::string_view, typename std::list<Entry>::iterator> index_;
};

}  // namespace mixerclient

#endif  // MIXERCLIENT_LRU_CACHE_H_
