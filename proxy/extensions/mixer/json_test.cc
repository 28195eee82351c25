#include "proxy/extensions/mixer/json.h"

#include <gtest/gtest.h>

namespace mixer_filter {
namespace {

TEST(Json, ParsesEveryKind) {
  Json json;
  std::string error;
  ASSERT_TRUE(Json::Parse(R"( {"a": [1, -2.5e3, "x\u00e9\n", true, false, null], "b": {}} )", &json, &error))
      << error;
  ASSERT_TRUE(json.is_object());
  const Json* a = json.Find("a");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->items().size(), 6u);
  EXPECT_EQ(a->items()[0].text(), "1");
  EXPECT_DOUBLE_EQ(a->items()[1].number_value(), -2500);
  EXPECT_EQ(a->items()[2].text(), "x\xc3\xa9\n");
  EXPECT_TRUE(a->items()[3].bool_value());
  EXPECT_FALSE(a->items()[4].bool_value());
  EXPECT_TRUE(a->items()[5].is_null());
  EXPECT_TRUE(json.Find("b")->is_object());
  EXPECT_EQ(json.Find("c"), nullptr);
}

TEST(Json, KeepsTheDigitsOfLargeIntegers) {
  Json json;
  std::string error;
  ASSERT_TRUE(Json::Parse("9007199254740993", &json, &error));
  EXPECT_EQ(json.text(), "9007199254740993");
}

TEST(Json, DecodesSurrogatePairs) {
  Json json;
  std::string error;
  ASSERT_TRUE(Json::Parse(R"("\ud83d\ude00")", &json, &error)) << error;
  EXPECT_EQ(json.text(), "\xf0\x9f\x98\x80");
}

TEST(Json, RejectsMalformedDocumentsSayingWhere) {
  for (const char* bad : {"", "{", "[1,]", "{\"a\" 1}", "{\"a\":1,}", "01", "1.", "-", "\"\\x\"",
                          "\"unterminated", "tru", "{} x", "\"\\ud800\"", "[\"\x01\"]"}) {
    Json json;
    std::string error;
    EXPECT_FALSE(Json::Parse(bad, &json, &error)) << bad;
    EXPECT_NE(error.find("at byte"), std::string::npos) << bad << ": " << error;
  }
}

TEST(Json, RefusesDeepNesting) {
  std::string deep(100, '[');
  deep += std::string(100, ']');
  Json json;
  std::string error;
  EXPECT_FALSE(Json::Parse(deep, &json, &error));
  EXPECT_NE(error.find("nested too deeply"), std::string::npos);
}

}  // namespace
}  // namespace mixer_filter
