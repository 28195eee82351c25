#include "proxy/extensions/mixer/base64.h"

#include <gtest/gtest.h>

namespace mixer_filter {
namespace {

TEST(Base64, MatchesRfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(Base64Encode(plain), encoded);
    std::string decoded;
    ASSERT_TRUE(Base64Decode(encoded, &decoded)) << encoded;
    EXPECT_EQ(decoded, plain);
  }
}

TEST(Base64, RoundTripsEveryByte) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  std::string decoded;
  ASSERT_TRUE(Base64Decode(Base64Encode(all), &decoded));
  EXPECT_EQ(decoded, all);
}

TEST(Base64, AcceptsUnpaddedAndRejectsGarbage) {
  std::string decoded;
  EXPECT_TRUE(Base64Decode("Zm8", &decoded));
  EXPECT_EQ(decoded, "fo");
  for (const char* bad : {"Z", "Zm9v!", "Zm=v", "Zg=", "Zh==", "====", "Zm9vY==="}) {
    EXPECT_FALSE(Base64Decode(bad, &decoded)) << bad;
  }
}

}  // namespace
}  // namespace mixer_filter
