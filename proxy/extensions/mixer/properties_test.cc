#include "proxy/extensions/mixer/properties.h"

#include <gtest/gtest.h>

#include "proxy/extensions/mixer/fake_host.h"

namespace mixer_filter {
namespace {

TEST(Properties, ReadsTheAbiValueFormats) {
  testing::FakeHost host;
  host.SetInt64({"response", "code"}, 503);
  host.SetBool({"connection", "mtls"}, true);
  host.SetString({"source", "address"}, "10.1.2.3:4567");
  int64_t code = 0;
  EXPECT_TRUE(GetInt64Property(host, {"response", "code"}, &code));
  EXPECT_EQ(code, 503);
  bool mtls = false;
  EXPECT_TRUE(GetBoolProperty(host, {"connection", "mtls"}, &mtls));
  EXPECT_TRUE(mtls);
  std::string address;
  EXPECT_TRUE(GetStringProperty(host, {"source", "address"}, &address));
  EXPECT_EQ(address, "10.1.2.3:4567");
  // Absent, or not the size an int64 or bool has.
  EXPECT_FALSE(GetInt64Property(host, {"request", "size"}, &code));
  EXPECT_FALSE(GetInt64Property(host, {"source", "address"}, &code));
  EXPECT_FALSE(GetBoolProperty(host, {"response", "code"}, &mtls));
}

TEST(Properties, JoinedPathsAreTheSegmentsJoinedByNul) {
  EXPECT_EQ(kClusterNamePath, proxy_wasm::PropertyPath({"xds", "cluster_name"}));
  EXPECT_EQ(kConnectionIdPath, proxy_wasm::PropertyPath({"connection", "id"}));
  EXPECT_EQ(kUpstreamAddressPath, proxy_wasm::PropertyPath({"upstream", "address"}));
  EXPECT_EQ(kResponseFlagsPath, proxy_wasm::PropertyPath({"response", "flags"}));
  EXPECT_EQ(kResponseCodePath, proxy_wasm::PropertyPath({"response", "code"}));
  EXPECT_EQ(kResponseGrpcStatusPath, proxy_wasm::PropertyPath({"response", "grpc_status"}));
  EXPECT_EQ(kRequestSizePath, proxy_wasm::PropertyPath({"request", "size"}));
  EXPECT_EQ(kRequestDurationPath, proxy_wasm::PropertyPath({"request", "duration"}));
}

TEST(Properties, ParsesAddressesIntoIpBytesAndPort) {
  std::string ip;
  int64_t port = 0;
  ASSERT_TRUE(ParseAddress("127.0.1.5:9080", &ip, &port));
  EXPECT_EQ(ip, std::string("\x7f\x00\x01\x05", 4));
  EXPECT_EQ(port, 9080);
  ASSERT_TRUE(ParseAddress("[::1]:15006", &ip, &port));
  EXPECT_EQ(ip, std::string(15, '\0') + "\x01");
  EXPECT_EQ(port, 15006);
  ASSERT_TRUE(ParseAddress("[2001:db8::ff00:42:8329]:1", &ip, &port));
  EXPECT_EQ(ip, std::string("\x20\x01\x0d\xb8\0\0\0\0\0\0\xff\x00\x00\x42\x83\x29", 16));
  ASSERT_TRUE(ParseIp("::ffff:10.0.0.1", &ip));
  EXPECT_EQ(ip, std::string(10, '\0') + std::string("\xff\xff\x0a\x00\x00\x01", 6));
  for (const char* bad : {"", "1.2.3.4", "1.2.3:80", "1.2.3.256:80", "01.2.3.4:80", "1.2.3.4:",
                          "1.2.3.4:65536", "[::1:80", "[1::2::3]:80", "host:80"}) {
    EXPECT_FALSE(ParseAddress(bad, &ip, &port)) << bad;
  }
}

TEST(Properties, StripsSpiffeFromPrincipals) {
  EXPECT_EQ(PrincipalFromUri("spiffe://cluster.local/ns/default/sa/bookinfo-reviews"),
            "cluster.local/ns/default/sa/bookinfo-reviews");
  EXPECT_EQ(PrincipalFromUri("other://x"), "other://x");
}

TEST(Properties, NamesResponseFlagsAsEnvoyLogsThem) {
  EXPECT_EQ(ResponseFlagsText(0), "-");
  EXPECT_EQ(ResponseFlagsText(0x2), "UH");
  EXPECT_EQ(ResponseFlagsText(0x20 | 0x8000), "UF,URX");
}

}  // namespace
}  // namespace mixer_filter
