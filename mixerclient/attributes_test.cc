#include "mixerclient/attributes.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"

namespace mixerclient {
namespace {

TEST(AttributesTest, SetReplacesAnyType) {
  Attributes a;
  a.SetString("x", "one");
  a.SetInt64("x", 2);
  ASSERT_NE(a.Get("x"), nullptr);
  EXPECT_EQ(KindOf(*a.Get("x")), ValueKind::kInt64);
  EXPECT_EQ(a.GetString("x"), nullptr);
  EXPECT_EQ(a.size(), 1u);
}

TEST(AttributesTest, EveryTypeKeepsItsKind) {
  Attributes a;
  a.SetString("s", "v");
  a.SetInt64("i", -7);
  a.SetDouble("d", 1.5);
  a.SetBool("b", true);
  a.SetBytes("y", std::string("\x7f\0\0\x01", 4));
  a.SetTimestamp("t", Timestamp{10, 5});
  a.SetDuration("u", Duration{-1, -5});
  a.SetStringMap("m", {{"k", "v"}});
  EXPECT_EQ(KindOf(*a.Get("s")), ValueKind::kString);
  EXPECT_EQ(KindOf(*a.Get("i")), ValueKind::kInt64);
  EXPECT_EQ(KindOf(*a.Get("d")), ValueKind::kDouble);
  EXPECT_EQ(KindOf(*a.Get("b")), ValueKind::kBool);
  EXPECT_EQ(std::get<Bytes>(*a.Get("y")).data.size(), 4u);
  EXPECT_EQ(std::get<Timestamp>(*a.Get("t")), (Timestamp{10, 5}));
  EXPECT_EQ(std::get<Duration>(*a.Get("u")).ToNanos(), -1'000'000'005);
  EXPECT_EQ(std::get<StringMap>(*a.Get("m")).at("k"), "v");
}

TEST(AttributesTest, StringMapEntryCreatesOrExtendsTheMap) {
  Attributes a;
  a.SetStringMapEntry("request.headers", ":path", "/a");
  a.SetStringMapEntry("request.headers", "x-b", "2");
  a.SetInt64("n", 1);
  a.SetStringMapEntry("n", "k", "v");  // a non-map value is replaced
  EXPECT_EQ(std::get<StringMap>(*a.Get("request.headers")).size(), 2u);
  EXPECT_EQ(std::get<StringMap>(*a.Get("n")).at("k"), "v");
}

TEST(AttributesTest, EqualityIsByWireValue) {
  Attributes a, b;
  a.SetDouble("d", std::numeric_limits<double>::quiet_NaN());
  b.SetDouble("d", std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(a, b);  // NaN is the same bytes
  a.SetDouble("d", 0.0);
  b.SetDouble("d", -0.0);
  EXPECT_NE(a, b);  // different bytes
  b.SetDouble("d", 0.0);
  EXPECT_EQ(a, b);
  b.SetInt64("d", 0);
  EXPECT_NE(a, b);  // same "zero", different type
}

TEST(AttributesTest, MergeAndErase) {
  Attributes a, b;
  a.SetString("x", "1");
  a.SetString("y", "2");
  b.SetString("y", "3");
  a.Merge(b);
  EXPECT_EQ(*a.GetString("y"), "3");
  EXPECT_TRUE(a.Erase("x"));
  EXPECT_FALSE(a.Erase("x"));
  EXPECT_FALSE(a.Has("x"));
  EXPECT_EQ(a.DebugString(), "{y: \"3\"}");
}

}  // namespace
}  // namespace mixerclient
