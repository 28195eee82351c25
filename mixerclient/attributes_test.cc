#include "mixerclient/attributes.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

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

std::vector<std::string> Names(const Attributes& a) {
  std::vector<std::string> out;
  for (const auto& [name, value] : a.values()) out.push_back(name.str());
  return out;
}

TEST(AttributesTest, IteratesInByteOrderWhateverTheNames) {
  // Global words (request.*, source.ip) order by rank, the rest by bytes; together, bytewise.
  Attributes a;
  a.SetString("source.ip", "x");
  a.SetString("zzz.own", "x");
  a.SetString("request.path", "x");
  a.SetString("request.pathz", "x");  // not a global word, between two that are
  a.SetString("request.headers", "x");
  a.SetString("", "x");
  a.SetString("request.path", "y");  // replaced in place
  EXPECT_EQ(Names(a), (std::vector<std::string>{"", "request.headers", "request.path", "request.pathz",
                                                "source.ip", "zzz.own"}));
  EXPECT_EQ(*a.GetString("request.path"), "y");
  EXPECT_EQ(a.size(), 6u);
}

TEST(AttributesTest, KeysAndTextFindTheSameEntries) {
  Attributes a;
  const AttributeName::Key global = AttributeName::KeyFor("request.path");
  const AttributeName::Key own = AttributeName::KeyFor("my.own");
  EXPECT_GE(global.rank, 0);
  EXPECT_EQ(own.rank, -1);
  a.SetString(global, "/a");
  a.SetInt64(own, 3);
  EXPECT_EQ(*a.GetString("request.path"), "/a");
  EXPECT_EQ(std::get<int64_t>(*a.Get("my.own")), 3);
  EXPECT_TRUE(a.Has(global));
  EXPECT_TRUE(a.Erase(own));
  EXPECT_FALSE(a.Has("my.own"));
}

TEST(AttributesTest, MergeIntoEmptyAndFullBags) {
  Attributes statics;
  statics.SetString("destination.uid", "d");
  statics.SetString("my.static", "s");
  Attributes empty;
  empty.Reserve(64);
  empty.Merge(statics);
  EXPECT_EQ(empty, statics);

  Attributes full;
  full.SetString("my.static", "old");
  full.SetInt64("request.size", 1);
  full.Merge(statics);
  EXPECT_EQ(Names(full), (std::vector<std::string>{"destination.uid", "my.static", "request.size"}));
  EXPECT_EQ(*full.GetString("my.static"), "s");
}

TEST(AttributesTest, CopiesOwnTheirNames) {
  auto make = [] {
    Attributes a;
    std::string name = "a.name.that.is.not.global.and.not.short";
    a.SetString(name, "v");
    name.assign(name.size(), 'x');  // the bag kept its own copy
    return a;
  };
  Attributes a = make();
  Attributes b = a;
  a.Clear();
  EXPECT_EQ(Names(b), (std::vector<std::string>{"a.name.that.is.not.global.and.not.short"}));
  EXPECT_TRUE(b.Has("a.name.that.is.not.global.and.not.short"));
}

TEST(AttributesTest, EraseKeepsTheOrder) {
  Attributes a;
  for (const char* name : {"c", "a", "d", "b"}) a.SetString(name, name);
  EXPECT_TRUE(a.Erase("a"));
  EXPECT_EQ(Names(a), (std::vector<std::string>{"b", "c", "d"}));
  EXPECT_EQ(*a.GetString("d"), "d");
  a.SetString("a", "again");
  EXPECT_EQ(Names(a), (std::vector<std::string>{"a", "b", "c", "d"}));
}

}  // namespace
}  // namespace mixerclient
