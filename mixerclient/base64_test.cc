#include "mixerclient/base64.h"

#include "gtest/gtest.h"
#include "mixerclient/codec.h"

namespace mixerclient {
namespace {

TEST(Base64Test, Rfc4648Vectors) {
  const std::pair<const char*, const char*> cases[] = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : cases) {
    EXPECT_EQ(Base64Encode(plain), encoded);
    std::string back;
    ASSERT_TRUE(Base64Decode(encoded, &back)) << encoded;
    EXPECT_EQ(back, plain);
  }
  EXPECT_EQ(Base64Encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(Base64Test, RefusesWhatIsNotBase64) {
  std::string out = "unchanged";
  for (const char* bad : {"Zg=", "Zm9v!A==", "Z===", "Zg=a", "=g==", "Zm9v Zg=="}) {
    EXPECT_FALSE(Base64Decode(bad, &out)) << bad;
  }
  EXPECT_EQ(out, "unchanged");
}

TEST(Base64Test, CarriesAnAttributesMessage) {
  Attributes a;
  a.SetString("source.uid", "kubernetes://productpage-v1.default");
  a.SetStringMap("source.labels", {{"app", "productpage"}});
  std::string bytes;
  ASSERT_TRUE(Base64Decode(Base64Encode(EncodeAttributesMessage(a)), &bytes));
  Attributes back;
  ASSERT_TRUE(DecodeAttributesMessage(bytes, &back).ok());
  EXPECT_EQ(back, a);
}

}  // namespace
}  // namespace mixerclient
