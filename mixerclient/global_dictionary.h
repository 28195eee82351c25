// Mixer's global word list (api/mixer/v1/global_dictionary.yaml, generated into the library
// at build time) and the per-message dictionary every compressed message adds to it.
//
// A word travels as an index: index >= 0 is global word [index]; index < 0 is the message's
// own word [-index - 1] (so -1 is words[0]). A client that uses only the first N global words
// says so with global_word_count = N; after a dictionary mismatch the client falls back to the
// first kBaseGlobalWordCount words, the list every Mixer knows.
#ifndef MIXERCLIENT_GLOBAL_DICTIONARY_H_
#define MIXERCLIENT_GLOBAL_DICTIONARY_H_

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mixerclient {

// The size of the first global list (Istio 0.2); every Mixer knows at least these words.
constexpr int32_t kBaseGlobalWordCount = 111;

class GlobalDictionary {
 public:
  // The number of words in the list built into the library.
  static int32_t Size();
  // Word [index]; index must be in [0, Size()).
  static std::string_view Word(int32_t index);
  // The index of `word` if it is among the first `count` global words, else -1.
  static int32_t Find(std::string_view word, int32_t count);
  // The same by binary search over the generated sorted table (no start-up work; tests check
  // that both agree).
  static int32_t FindBySearch(std::string_view word, int32_t count);

  // The word's place among the distinct global words in byte order, with *stored set to the
  // word's own (static) copy; -1 if it is not a global word. Two global words compare as
  // their ranks do, which lets attribute bags order Istio's names without reading them.
  static int32_t Rank(std::string_view word, std::string_view* stored);
  // The index of the word of `rank` (the first, if the word is listed twice).
  static int32_t IndexOfRank(int32_t rank);
};

// The words of one message beyond the global ones, each added once, in first-use order.
class MessageDictionary {
 public:
  // `remember`: Index() keeps every answer, so a word it saw before costs one lookup
  // instead of two (global list, then message words). For a dictionary that serves many
  // entries (a report batch); a one-message dictionary would only pay for the inserts.
  explicit MessageDictionary(int32_t global_word_count, bool remember = false)
      : global_count_(global_word_count), remember_(remember) {}
  MessageDictionary(const MessageDictionary&) = delete;
  MessageDictionary& operator=(const MessageDictionary&) = delete;
  MessageDictionary(MessageDictionary&&) = default;
  MessageDictionary& operator=(MessageDictionary&&) = default;

  // The index a word travels as. A word that is not valid UTF-8 (proto3 strings must be, and
  // Mixer rejects a whole message otherwise) is added with each bad byte as U+FFFD.
  int32_t Index(std::string_view word);
  // The index as a message word even if the word is global (for map_key, where 0 means "none").
  int32_t MessageIndex(std::string_view word);

  int32_t global_word_count() const { return global_count_; }
  size_t size() const { return words_.size(); }
  std::vector<std::string> words() const { return {words_.begin(), words_.end()}; }
  // The words, leaving the dictionary empty.
  std::vector<std::string> TakeWords();
  void Clear();

 private:
  int32_t global_count_;
  bool remember_;
  // A deque: its strings never move, so the index can key on views of them (a lookup of a
  // known word then allocates nothing).
  std::deque<std::string> words_;
  std::deque<std::string> raw_words_;  // the original bytes of words that were repaired
  std::unordered_map<std::string_view, int32_t> index_;
  // With remember_: what Index() answered for each word it was asked, global or not.
  std::unordered_map<std::string_view, int32_t> seen_;
};

// The word an index names, or false if it names none (out of either range).
bool LookupWord(int32_t index, const std::vector<std::string>& message_words,
                int32_t global_word_count, std::string_view* word);

// Why `index` names no word, for error messages.
std::string DescribeBadIndex(int32_t index, size_t message_word_count, int32_t global_word_count);

bool IsValidUtf8(std::string_view s);
// `s` with every byte that is not part of a valid UTF-8 sequence replaced by U+FFFD.
std::string ToValidUtf8(std::string_view s);

}  // namespace mixerclient

#endif  // MIXERCLIENT_GLOBAL_DICTIONARY_H_
