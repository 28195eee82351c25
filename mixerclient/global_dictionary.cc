#include "mixerclient/global_dictionary.h"

#include <cstddef>
#include <utility>

namespace mixerclient {
namespace {

#include "mixerclient/global_dictionary_data.inc"

constexpr int32_t kWordCount = static_cast<int32_t>(sizeof(kGlobalWords) / sizeof(kGlobalWords[0]));
constexpr int32_t kSortedCount =
    static_cast<int32_t>(sizeof(kSortedWordIndexes) / sizeof(kSortedWordIndexes[0]));

// Bytewise, as the generator sorted them (std::string_view::compare is bytewise on unsigned).
int Compare(std::string_view a, std::string_view b) { return a.compare(b); }

}  // namespace

int32_t GlobalDictionary::Size() { return kWordCount; }

std::string_view GlobalDictionary::Word(int32_t index) { return kGlobalWords[index]; }

namespace {

// Word -> rank (its place in kSortedWordIndexes), built on first use from the generated
// table (a hash lookup costs one string compare; the binary search below, about eight).
const std::unordered_map<std::string_view, int32_t>& WordRanks() {
  static const auto* ranks = [] {
    auto* map = new std::unordered_map<std::string_view, int32_t>();
    map->reserve(static_cast<size_t>(kSortedCount) * 2);
    for (int32_t rank = 0; rank < kSortedCount; ++rank) (*map)[kGlobalWords[kSortedWordIndexes[rank]]] = rank;
    return map;
  }();
  return *ranks;
}

}  // namespace

int32_t GlobalDictionary::Find(std::string_view word, int32_t count) {
  const auto& ranks = WordRanks();
  const auto it = ranks.find(word);
  if (it == ranks.end()) return -1;
  const int32_t index = kSortedWordIndexes[it->second];  // the first index of the word
  return index < count ? index : -1;
}

int32_t GlobalDictionary::Rank(std::string_view word, std::string_view* stored) {
  const auto& ranks = WordRanks();
  const auto it = ranks.find(word);
  if (it == ranks.end()) return -1;
  *stored = it->first;
  return it->second;
}

int32_t GlobalDictionary::IndexOfRank(int32_t rank) { return kSortedWordIndexes[rank]; }

int32_t GlobalDictionary::FindBySearch(std::string_view word, int32_t count) {
  int32_t lo = 0;
  int32_t hi = kSortedCount;
  while (lo < hi) {
    const int32_t mid = lo + (hi - lo) / 2;
    const int32_t index = kSortedWordIndexes[mid];
    const int c = Compare(kGlobalWords[index], word);
    if (c == 0) return index < count ? index : -1;
    if (c < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return -1;
}

int32_t MessageDictionary::Index(std::string_view word) {
  if (!remember_) {
    const int32_t global = GlobalDictionary::Find(word, global_count_);
    return global >= 0 ? global : MessageIndex(word);
  }
  // A batch uses the same words again and again (every report in it): after the first
  // time a word costs one lookup here, not one in the global list and one in index_.
  auto known = seen_.find(word);
  if (known != seen_.end()) return known->second;
  const int32_t global = GlobalDictionary::Find(word, global_count_);
  if (global >= 0) {
    seen_.emplace(GlobalDictionary::Word(global), global);  // the view of static storage
    return global;
  }
  const int32_t index = MessageIndex(word);
  seen_.emplace(index_.find(word)->first, index);  // the view of the word's own storage
  return index;
}

int32_t MessageDictionary::MessageIndex(std::string_view word) {
  auto it = index_.find(word);
  if (it != index_.end()) return it->second;
  const int32_t index = -static_cast<int32_t>(words_.size()) - 1;
  if (IsValidUtf8(word)) {
    words_.emplace_back(word);
    index_.emplace(std::string_view(words_.back()), index);
  } else {
    words_.push_back(ToValidUtf8(word));
    raw_words_.emplace_back(word);  // keyed by the bytes as given
    index_.emplace(std::string_view(raw_words_.back()), index);
  }
  return index;
}

std::vector<std::string> MessageDictionary::TakeWords() {
  std::vector<std::string> out;
  out.reserve(words_.size());
  for (std::string& w : words_) out.push_back(std::move(w));
  Clear();
  return out;
}

void MessageDictionary::Clear() {
  seen_.clear();
  index_.clear();
  words_.clear();
  raw_words_.clear();
}

bool LookupWord(int32_t index, const std::vector<std::string>& message_words,
                int32_t global_word_count, std::string_view* word) {
  if (index >= 0) {
    if (index >= global_word_count || index >= kWordCount) return false;
    *word = kGlobalWords[index];
    return true;
  }
  // -(slot + 1) == index; computed in 64 bits so INT32_MIN cannot overflow.
  const int64_t slot = -static_cast<int64_t>(index) - 1;
  if (slot >= static_cast<int64_t>(message_words.size())) return false;
  *word = message_words[static_cast<size_t>(slot)];
  return true;
}

std::string DescribeBadIndex(int32_t index, size_t message_word_count, int32_t global_word_count) {
  if (index >= 0) {
    return "global word index " + std::to_string(index) + " is out of range (the client uses " +
           std::to_string(global_word_count) + " words)";
  }
  return "message word index " + std::to_string(index) + " (words[" +
         std::to_string(-static_cast<int64_t>(index) - 1) + "]) is out of range (the message has " +
         std::to_string(message_word_count) + " words)";
}

namespace {

// The length of the valid UTF-8 sequence starting at s[i], or 0 if there is none.
size_t SequenceLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // no overlong forms
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return n;
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string ToValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t n = SequenceLength(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

}  // namespace mixerclient
