#include "mixerclient/wire.h"

#include <limits>

#include "gtest/gtest.h"

namespace mixerclient {
namespace {

std::string Hex(const std::string& s) {
  static const char d[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

TEST(WireWriterTest, VarintsAndZigZag) {
  std::string out;
  WireWriter w(&out);
  w.Varint(0);
  w.Varint(127);
  w.Varint(128);
  w.Varint(300);
  EXPECT_EQ(Hex(out), "007f8001ac02");
  EXPECT_EQ(ZigZag32(0), 0u);
  EXPECT_EQ(ZigZag32(-1), 1u);
  EXPECT_EQ(ZigZag32(1), 2u);
  EXPECT_EQ(ZigZag32(std::numeric_limits<int32_t>::min()), 0xFFFFFFFFu);
  for (int32_t v : {0, 1, -1, 63, -64, std::numeric_limits<int32_t>::max(), std::numeric_limits<int32_t>::min()}) {
    EXPECT_EQ(UnZigZag32(ZigZag32(v)), v);
  }
}

TEST(WireWriterTest, NegativeInt32TakesTenBytes) {
  std::string out;
  WireWriter w(&out);
  w.Int32Field(3, -1);
  EXPECT_EQ(Hex(out), "18ffffffffffffffffff01");
}

TEST(WireWriterTest, NestedLengthsAreMinimalVarints) {
  for (size_t n : {0u, 1u, 127u, 128u, 300u, 16383u, 16384u, 70000u}) {
    std::string out;
    WireWriter w(&out);
    const size_t start = w.BeginMessage(1);
    out.append(n, 'x');
    w.EndMessage(start);
    WireReader r(out);
    uint32_t field;
    WireType type;
    ASSERT_TRUE(r.ReadTag(&field, &type));
    std::string_view body;
    ASSERT_TRUE(r.ReadLengthDelimited(&body)) << r.error();
    EXPECT_EQ(body.size(), n);
    EXPECT_TRUE(r.done());
    size_t varint_len = n < 128 ? 1 : n < 16384 ? 2 : 3;
    EXPECT_EQ(out.size(), 1 + varint_len + n);
  }
}

TEST(WireReaderTest, TruncatedAndMalformedInputsFailWithTheOffset) {
  uint64_t v;
  WireReader a(std::string_view("\x80\x80", 2));
  EXPECT_FALSE(a.ReadVarint(&v));
  EXPECT_EQ(a.error(), "truncated varint at byte 2");
  WireReader b(std::string_view("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11));
  EXPECT_FALSE(b.ReadVarint(&v));
  WireReader c(std::string_view("\x0a\x05zz", 4));
  uint32_t field;
  WireType type;
  ASSERT_TRUE(c.ReadTag(&field, &type));
  std::string_view s;
  EXPECT_FALSE(c.ReadLengthDelimited(&s));
  EXPECT_NE(c.error().find("runs past the end"), std::string::npos);
  WireReader d(std::string_view("\x0e", 1));  // wire type 6
  EXPECT_FALSE(d.ReadTag(&field, &type));
  WireReader e(std::string_view("\x00", 1));  // field 0
  EXPECT_FALSE(e.ReadTag(&field, &type));
}

TEST(WireReaderTest, SkipsEveryWireTypeAndNestedGroups) {
  // field 1 varint, field 2 fixed64, field 3 bytes, field 4 group {field 5 fixed32, group 6 {}}
  std::string in("\x08\x96\x01"
                 "\x11" "12345678"
                 "\x1a\x02hi"
                 "\x23" "\x2d" "abcd" "\x33\x34" "\x24"
                 "\x38\x01",
                 3 + 9 + 4 + 1 + 5 + 2 + 1 + 2);
  WireReader r(in);
  uint32_t field;
  WireType type;
  int seen = 0;
  while (!r.done()) {
    ASSERT_TRUE(r.ReadTag(&field, &type)) << r.error();
    if (field == 7) {
      uint64_t v;
      ASSERT_TRUE(r.ReadVarint(&v));
      EXPECT_EQ(v, 1u);
    } else {
      ASSERT_TRUE(r.Skip(field, type)) << r.error();
    }
    ++seen;
  }
  EXPECT_EQ(seen, 5);
  WireReader unterminated(std::string_view("\x23\x08\x01", 3));
  ASSERT_TRUE(unterminated.ReadTag(&field, &type));
  EXPECT_FALSE(unterminated.Skip(field, type));
  WireReader mismatched(std::string_view("\x23\x2c", 2));
  ASSERT_TRUE(mismatched.ReadTag(&field, &type));
  EXPECT_FALSE(mismatched.Skip(field, type));
}

}  // namespace
}  // namespace mixerclient
