#include "proxy/wasm/host.h"

#include <gtest/gtest.h>

#include "proxy/wasm/context.h"

namespace proxy_wasm {
namespace {

TEST(HeaderPairs, RoundTripsThroughTheAbiSerialization) {
  const HeaderPairs pairs = {{":path", "/reviews/0"}, {"x-empty", ""}, {"cookie", "a=1; b=2"}};
  const std::string bytes = SerializeHeaderPairs(pairs);
  // u32 count, 2 sizes per pair, then each key and value with a NUL.
  EXPECT_EQ(bytes.size(), 4 + 3 * 8 + (5 + 10 + 7 + 0 + 6 + 8) + 6);
  HeaderPairs parsed;
  ASSERT_TRUE(ParseHeaderPairs(bytes, &parsed));
  EXPECT_EQ(parsed, pairs);
}

TEST(HeaderPairs, EmptyMapIsEmptyOrZeroCount) {
  HeaderPairs parsed = {{"stale", "x"}};
  EXPECT_TRUE(ParseHeaderPairs("", &parsed));
  EXPECT_TRUE(parsed.empty());
  EXPECT_TRUE(ParseHeaderPairs(SerializeHeaderPairs({}), &parsed));
  EXPECT_TRUE(parsed.empty());
}

TEST(HeaderPairs, RejectsMalformedInput) {
  const std::string good = SerializeHeaderPairs({{"a", "b"}});
  HeaderPairs parsed;
  for (size_t cut = 1; cut < good.size(); ++cut) {
    EXPECT_FALSE(ParseHeaderPairs(good.substr(0, cut), &parsed)) << "truncated at " << cut;
  }
  std::string missing_nul = good;
  missing_nul[4 + 8 + 1] = 'x';  // the NUL after the key
  EXPECT_FALSE(ParseHeaderPairs(missing_nul, &parsed));
  std::string huge_count = good;
  huge_count[3] = '\x7f';
  EXPECT_FALSE(ParseHeaderPairs(huge_count, &parsed));
}

TEST(PropertyPath, JoinsSegmentsWithNul) {
  EXPECT_EQ(PropertyPath({"request", "path"}), std::string("request\0path", 12));
  EXPECT_EQ(PropertyPath({"plugin_root_id"}), "plugin_root_id");
}

class NoopStream : public StreamContext {
 public:
  using StreamContext::StreamContext;
};

class CountingRoot : public RootContext {
 public:
  using RootContext::RootContext;
  std::unique_ptr<StreamContext> NewStream(uint32_t id) override {
    return std::make_unique<NoopStream>(id, this);
  }
};

TEST(RootContext, KeepsItsStreamsById) {
  CountingRoot root(1, "x", nullptr);
  root.AddStream(root.NewStream(7));
  root.AddStream(root.NewStream(9));
  EXPECT_EQ(root.stream_count(), 2u);
  ASSERT_NE(root.FindStream(7), nullptr);
  EXPECT_EQ(root.FindStream(7)->id(), 7u);
  EXPECT_EQ(root.FindStream(7)->root(), &root);
  root.RemoveStream(7);
  EXPECT_EQ(root.FindStream(7), nullptr);
  EXPECT_NE(root.FindStream(9), nullptr);
}

std::unique_ptr<RootContext> MakeRoot(uint32_t id, std::string_view root_id, Host* host) {
  return std::make_unique<CountingRoot>(id, root_id, host);
}

const RootRegistration kRegistration("host_test_root", MakeRoot);

TEST(RootRegistration, FindsTheFactoryByRootId) {
  EXPECT_EQ(FindRootFactory("host_test_root"), &MakeRoot);
  EXPECT_EQ(FindRootFactory("no_such_root"), nullptr);
}

}  // namespace
}  // namespace proxy_wasm
