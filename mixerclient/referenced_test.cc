#include "mixerclient/referenced.h"

#include "gtest/gtest.h"
#include "mixerclient/global_dictionary.h"

namespace mixerclient {
namespace {

// source.labels = 5, destination.labels = 156, request.path = 17, source.uid = 3.
ReferencedAttributes Refs(std::vector<AttributeMatch> matches, std::vector<std::string> words = {}) {
  ReferencedAttributes r;
  r.words = std::move(words);
  r.attribute_matches = std::move(matches);
  return r;
}

Attributes Request() {
  Attributes a;
  a.SetStringMap("source.labels", {{"app", "reviews"}, {"version", "v3"}});
  a.SetString("request.path", "/ratings/0");
  return a;
}

TEST(ReferencedTest, ExactMapKeyKeysOnThatEntryOnly) {
  Referenced shape;
  ASSERT_TRUE(Referenced::FromProto(Refs({{5, kExact, "", -1}}, {"version"}), 222, &shape).ok());
  std::string a, b, c;
  Attributes r1 = Request();
  ASSERT_TRUE(shape.Signature(r1, &a));
  Attributes r2 = Request();
  r2.SetStringMapEntry("source.labels", "app", "other");  // a key the answer did not read
  r2.SetString("request.path", "/x");                    // an attribute it did not read
  ASSERT_TRUE(shape.Signature(r2, &b));
  EXPECT_EQ(a, b);
  Attributes r3 = Request();
  r3.SetStringMapEntry("source.labels", "version", "v2");
  ASSERT_TRUE(shape.Signature(r3, &c));
  EXPECT_NE(a, c);
  Attributes r4;
  r4.SetStringMap("source.labels", {{"app", "reviews"}});
  std::string d = "untouched";
  EXPECT_FALSE(shape.Signature(r4, &d));  // the EXACT key is missing
  EXPECT_EQ(d, "untouched");
}

TEST(ReferencedTest, AbsenceMeansMissing) {
  Referenced shape;
  ASSERT_TRUE(Referenced::FromProto(Refs({{3, kAbsence, "", 0}}), 222, &shape).ok());
  std::string sig;
  EXPECT_TRUE(shape.Signature(Request(), &sig));
  Attributes with = Request();
  with.SetString("source.uid", "kubernetes://x");
  EXPECT_FALSE(shape.Signature(with, &sig));
}

TEST(ReferencedTest, AbsentMapKeyFitsAMissingKeyOrAMissingMap) {
  Referenced shape;
  ASSERT_TRUE(Referenced::FromProto(Refs({{156, kAbsence, "", -1}}, {"version"}), 222, &shape).ok());
  std::string sig;
  EXPECT_TRUE(shape.Signature(Request(), &sig));  // no destination.labels at all
  Attributes other_key = Request();
  other_key.SetStringMap("destination.labels", {{"app", "ratings"}});
  EXPECT_TRUE(shape.Signature(other_key, &sig));
  Attributes has_key = Request();
  has_key.SetStringMap("destination.labels", {{"version", "v1"}});
  EXPECT_FALSE(shape.Signature(has_key, &sig));
  Attributes not_a_map = Request();
  not_a_map.SetString("destination.labels", "x");
  EXPECT_FALSE(shape.Signature(not_a_map, &sig));
}

TEST(ReferencedTest, ValuesOfDifferentTypesNeverShareASignature) {
  Referenced shape;
  ASSERT_TRUE(Referenced::FromProto(Refs({{-1, kExact, "", 0}}, {"x"}), 222, &shape).ok());
  Attributes as_int, as_string, as_map;
  as_int.SetInt64("x", 1);
  as_string.SetString("x", std::string("\x01\0\0\0\0\0\0\0", 8));
  as_map.SetStringMap("x", {{"", ""}});
  std::string a, b, c;
  ASSERT_TRUE(shape.Signature(as_int, &a));
  ASSERT_TRUE(shape.Signature(as_string, &b));
  ASSERT_TRUE(shape.Signature(as_map, &c));
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(b, c);
}

TEST(ReferencedTest, RegexAndBadIndexesCannotBeCached) {
  Referenced shape;
  Status s = Referenced::FromProto(Refs({{15, kRegex, "^x-", 0}}), 222, &shape);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("REGEX"), std::string::npos);
  EXPECT_FALSE(Referenced::FromProto(Refs({{-2, kExact, "", 0}}, {"a"}), 222, &shape).ok());
  EXPECT_FALSE(Referenced::FromProto(Refs({{200, kExact, "", 0}}), kBaseGlobalWordCount, &shape).ok());
  EXPECT_FALSE(Referenced::FromProto(Refs({{1, 9, "", 0}}), 222, &shape).ok());
}

TEST(ReferencedTest, ShapeKeysIgnoreOrderAndDuplicates) {
  Referenced a, b, c;
  ASSERT_TRUE(Referenced::FromProto(Refs({{17, kExact, "", 0}, {3, kAbsence, "", 0}}), 222, &a).ok());
  ASSERT_TRUE(Referenced::FromProto(Refs({{3, kAbsence, "", 0}, {17, kExact, "", 0}, {17, kExact, "", 0}}), 222, &b).ok());
  ASSERT_TRUE(Referenced::FromProto(Refs({{17, kExact, "", 0}}), 222, &c).ok());
  EXPECT_EQ(a.key(), b.key());
  EXPECT_NE(a.key(), c.key());
  EXPECT_EQ(a.DebugString(), "absent: [source.uid], exact: [request.path]");
}

}  // namespace
}  // namespace mixerclient
