#include "mixerclient/compressed_writer.h"

#include "gtest/gtest.h"
#include "mixerclient/codec.h"
#include "mixerclient/compressor.h"

namespace mixerclient {
namespace {

Attributes EveryKind(int i) {
  Attributes a;
  a.SetString("request.path", "/p/" + std::to_string(i));  // global name, message value
  a.SetString("request.method", "GET");                     // both global
  for (int k = 0; k < 12; ++k) a.SetString("custom." + std::to_string(k), "v" + std::to_string(k % 3));
  a.SetInt64("response.code", 200 + i);
  a.SetInt64("my.count", -i);
  a.SetDouble("my.ratio", i * -0.5);
  a.SetBool("connection.mtls", i % 2 == 0);
  a.SetBytes("source.ip", std::string("\x7f\0\0\x01", 4));
  a.SetTimestamp("request.time", Timestamp{1700000000 + i, i});
  a.SetDuration("response.duration", Duration{0, -i});
  a.SetStringMap("request.headers", {{":path", "/p"}, {"x-" + std::to_string(i), "GET"}, {"", ""}});
  a.SetStringMap("empty.map", {});
  return a;
}

TEST(CompressedWriterTest, CheckRequestBytesEqualTheCodecs) {
  std::map<std::string, QuotaParams> quotas = {{"b", {1, false}}, {"a", {10, true}}};
  for (int i = 0; i < 20; ++i) {
    const Attributes a = EveryKind(i);
    for (int32_t count : {GlobalDictionary::Size(), kBaseGlobalWordCount, 0}) {
      CheckRequest expected;
      expected.attributes = Compress(a, count);
      expected.global_word_count = static_cast<uint32_t>(count);
      expected.deduplication_id = "id-" + std::to_string(i);
      expected.quotas = quotas;
      EXPECT_EQ(EncodeCheckRequestFor(a, count, expected.deduplication_id, quotas), EncodeCheckRequest(expected));
    }
  }
}

TEST(CompressedWriterTest, AnEmptyBagIsAnEmptySetMessage) {
  EXPECT_EQ(EncodeCheckRequestFor(Attributes(), 0, "", {}), std::string("\x0a\x00", 2));
}

TEST(CompressedWriterTest, EntriesShareOneDictionary) {
  MessageDictionary dict(222);
  CompressedWriter writer;
  std::string first, second;
  const Attributes a = EveryKind(1);
  for (const auto& [name, value] : a.values()) writer.Add(name, value, &dict);
  WireWriter w1(&first);
  writer.WriteTo(w1);
  EXPECT_TRUE(writer.empty());
  const size_t words = dict.size();
  for (const auto& [name, value] : a.values()) writer.Add(name, value, &dict);
  WireWriter w2(&second);
  writer.WriteTo(w2);
  EXPECT_EQ(first, second);  // the same words, the same indexes
  EXPECT_EQ(dict.size(), words);
}

}  // namespace
}  // namespace mixerclient
