#include "mixerclient/lru_cache.h"

#include "gtest/gtest.h"

namespace mixerclient {
namespace {

TEST(LruCacheTest, EvictsTheLeastRecentlyUsed) {
  LruCache<int> cache(2);
  cache.Insert("a", 1);
  cache.Insert("b", 2);
  ASSERT_NE(cache.Find("a"), nullptr);  // a is now the most recent
  cache.Insert("c", 3);                 // evicts b
  EXPECT_EQ(cache.Find("b"), nullptr);
  EXPECT_EQ(*cache.Find("a"), 1);
  EXPECT_EQ(*cache.Find("c"), 3);
  EXPECT_EQ(cache.evictions(), 1u);
  cache.Insert("a", 10);  // replaces in place
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(*cache.Find("a"), 10);
}

TEST(LruCacheTest, EraseRemoveIfAndZeroCapacity) {
  LruCache<int> cache(10);
  for (int i = 0; i < 5; ++i) cache.Insert(std::to_string(i), i);
  EXPECT_TRUE(cache.Erase("0"));
  EXPECT_FALSE(cache.Erase("0"));
  EXPECT_EQ(cache.RemoveIf([](const std::string&, int v) { return v % 2 == 1; }), 2u);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_NE(cache.Find("2"), nullptr);
  LruCache<int> none(0);
  none.Insert("x", 1);
  EXPECT_EQ(none.size(), 0u);
}

}  // namespace
}  // namespace mixerclient
