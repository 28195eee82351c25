#include "mixerclient/global_dictionary.h"

#include <limits>

#include "gtest/gtest.h"

namespace mixerclient {
namespace {

TEST(GlobalDictionaryTest, IsIstiosListWithItsQuirks) {
  EXPECT_EQ(GlobalDictionary::Size(), 222);
  EXPECT_EQ(GlobalDictionary::Word(0), "source.ip");
  EXPECT_EQ(GlobalDictionary::Word(94), "'200'");  // quotes kept, as Mixer reads the YAML
  EXPECT_EQ(GlobalDictionary::Word(218), "\"-\"");
  EXPECT_EQ(GlobalDictionary::Word(221), "context.proxy_version");
}

TEST(GlobalDictionaryTest, FindEveryWordAtItsIndex) {
  for (int32_t i = 0; i < GlobalDictionary::Size(); ++i) {
    EXPECT_EQ(GlobalDictionary::Find(GlobalDictionary::Word(i), GlobalDictionary::Size()), i);
  }
  EXPECT_EQ(GlobalDictionary::Find("no.such.word", GlobalDictionary::Size()), -1);
  for (int32_t i = 0; i < GlobalDictionary::Size(); ++i) {
    const std::string_view w = GlobalDictionary::Word(i);
    for (int32_t count : {0, 1, kBaseGlobalWordCount, GlobalDictionary::Size()}) {
      EXPECT_EQ(GlobalDictionary::FindBySearch(w, count), GlobalDictionary::Find(w, count)) << w;
    }
  }
  EXPECT_EQ(GlobalDictionary::FindBySearch("zzz", 222), -1);
  EXPECT_EQ(GlobalDictionary::FindBySearch("", 222), -1);
  EXPECT_EQ(GlobalDictionary::Find("200", 222), 136);  // the unquoted one is a word too
}

TEST(GlobalDictionaryTest, FindRespectsTheWordCount) {
  EXPECT_EQ(GlobalDictionary::Find("source.principal", 222), 174);
  EXPECT_EQ(GlobalDictionary::Find("source.principal", kBaseGlobalWordCount), -1);
  EXPECT_EQ(GlobalDictionary::Find("source.ip", kBaseGlobalWordCount), 0);
}

TEST(MessageDictionaryTest, GlobalWordsThenMessageWordsInFirstUseOrder) {
  MessageDictionary dict(222);
  EXPECT_EQ(dict.Index("request.path"), 17);
  EXPECT_EQ(dict.Index("my.attr"), -1);
  EXPECT_EQ(dict.Index("other"), -2);
  EXPECT_EQ(dict.Index("my.attr"), -1);
  EXPECT_EQ(dict.MessageIndex("source.ip"), -3);  // a global word forced into the message
  EXPECT_EQ(dict.words(), (std::vector<std::string>{"my.attr", "other", "source.ip"}));
  MessageDictionary base(kBaseGlobalWordCount);
  EXPECT_EQ(base.Index("source.principal"), -1);
}

TEST(MessageDictionaryTest, RepeatedWordsKeepTheirIndexes) {
  for (const bool remember : {false, true}) {  // remembering changes no answer
    SCOPED_TRACE(remember);
    MessageDictionary dict(GlobalDictionary::Size(), remember);
    const int32_t key = dict.MessageIndex("request.path");  // a map key: a message word though global
    EXPECT_EQ(key, -1);
    ASSERT_GE(GlobalDictionary::Find("request.path", GlobalDictionary::Size()), 0);
    EXPECT_EQ(dict.Index("request.path"), GlobalDictionary::Find("request.path", GlobalDictionary::Size()));
    EXPECT_EQ(dict.Index("reviews-v3"), -2);
    EXPECT_EQ(dict.MessageIndex("reviews-v3"), -2);
    for (int i = 0; i < 3; ++i) {  // answered from what Index saw, the same every time
      EXPECT_EQ(dict.Index("request.path"), GlobalDictionary::Find("request.path", GlobalDictionary::Size()));
      EXPECT_EQ(dict.Index("reviews-v3"), -2);
      EXPECT_EQ(dict.MessageIndex("request.path"), -1);
    }
    EXPECT_EQ(dict.Index(std::string("\xff", 1)), -3);
    EXPECT_EQ(dict.Index(std::string("\xff", 1)), -3);
    EXPECT_EQ(dict.TakeWords(), (std::vector<std::string>{"request.path", "reviews-v3", "\xef\xbf\xbd"}));
    EXPECT_EQ(dict.Index("reviews-v3"), -1);  // taken: a new message starts
  }
}

TEST(MessageDictionaryTest, InvalidUtf8BecomesReplacementCharacters) {
  MessageDictionary dict(222);
  EXPECT_EQ(dict.Index("a\xff" "b"), -1);
  EXPECT_EQ(dict.words()[0], "a\xEF\xBF\xBD" "b");
}

TEST(LookupWordTest, BothRangesAndTheirEdges) {
  std::vector<std::string> words = {"w0", "w1"};
  std::string_view w;
  ASSERT_TRUE(LookupWord(-1, words, 222, &w));
  EXPECT_EQ(w, "w0");
  ASSERT_TRUE(LookupWord(-2, words, 222, &w));
  EXPECT_EQ(w, "w1");
  EXPECT_FALSE(LookupWord(-3, words, 222, &w));
  EXPECT_FALSE(LookupWord(std::numeric_limits<int32_t>::min(), words, 222, &w));
  ASSERT_TRUE(LookupWord(110, words, kBaseGlobalWordCount, &w));
  EXPECT_FALSE(LookupWord(111, words, kBaseGlobalWordCount, &w));
  EXPECT_FALSE(LookupWord(222, words, 222, &w));
  EXPECT_FALSE(LookupWord(5, words, 1000, &w) && w != GlobalDictionary::Word(5));
  EXPECT_NE(DescribeBadIndex(-3, 2, 222).find("words[2]"), std::string::npos);
}

TEST(Utf8Test, ValidationFollowsTheStandard) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"));  // é € 😀
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xE2\x82"));          // truncated
  EXPECT_EQ(ToValidUtf8("x\xE2\x82"), "x\xEF\xBF\xBD\xEF\xBF\xBD");
}

}  // namespace
}  // namespace mixerclient
