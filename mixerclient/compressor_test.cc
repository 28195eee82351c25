#include "mixerclient/compressor.h"

#include "gtest/gtest.h"

namespace mixerclient {
namespace {

TEST(CompressorTest, GlobalWordsAndMessageWords) {
  Attributes a;
  a.SetString("request.method", "GET");           // both global: 19 -> 90
  a.SetString("request.path", "/productpage");    // value is a message word
  a.SetInt64("response.code", 200);
  a.SetStringMap("request.headers", {{"x-custom", "GET"}, {":path", "/productpage"}});
  a.SetBytes("source.ip", std::string("\x7f\0\0\x01", 4));
  CompressedAttributes c = Compress(a, GlobalDictionary::Size());
  EXPECT_EQ(c.strings.at(19), 90);
  EXPECT_EQ(c.strings.at(17), -1);
  EXPECT_EQ(c.int64s.at(30), 200);
  EXPECT_EQ(c.bytes.at(0).size(), 4u);
  // Keys in map order: ":path" (global 33) then "x-custom" (a new message word).
  EXPECT_EQ(c.string_maps.at(15).entries.at(33), -1);
  EXPECT_EQ(c.string_maps.at(15).entries.at(-2), 90);
  EXPECT_EQ(c.words, (std::vector<std::string>{"/productpage", "x-custom"}));
}

TEST(CompressorTest, DecompressInvertsCompress) {
  Attributes a;
  a.SetString("my.attr", "v");
  a.SetDouble("d", 1.25);
  a.SetBool("source.principal", true);
  a.SetTimestamp("request.time", Timestamp{1, 2});
  a.SetDuration("response.duration", Duration{0, 5000});
  a.SetStringMap("source.labels", {{"app", "reviews"}, {"version", "v3"}});
  for (int32_t count : {GlobalDictionary::Size(), kBaseGlobalWordCount, 0}) {
    CompressedAttributes c = Compress(a, count);
    Attributes back;
    ASSERT_TRUE(Decompress(c, c.words, count, &back).ok());
    EXPECT_EQ(back, a) << back.DebugString();
  }
}

TEST(CompressorTest, DecompressRefusesBadIndexesAndDuplicates) {
  CompressedAttributes c;
  c.strings[-1] = 500;
  c.words = {"x"};
  Attributes out;
  Status s = Decompress(c, c.words, 222, &out);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("strings: value: global word index 500"), std::string::npos) << s.message();
  EXPECT_TRUE(out.empty());  // nothing changed

  CompressedAttributes dup;
  dup.words = {"x", "x"};
  dup.strings[-1] = 0;
  dup.int64s[-2] = 1;  // a second index naming the same word
  s = Decompress(dup, dup.words, 222, &out);
  EXPECT_NE(s.message().find("appears twice"), std::string::npos) << s.message();

  CompressedAttributes key;
  key.string_maps[15].entries[-7] = 0;
  s = Decompress(key, key.words, 222, &out);
  EXPECT_NE(s.message().find("string_maps: entry key"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace mixerclient
