// The check cache against the semantics of Mixer's referenced attributes: absence keys, map
// sub-keys, use counts, expiry, REGEX, and answers that cannot be cached.
#include "mixerclient/check_cache.h"

#include "gtest/gtest.h"
#include "mixerclient/global_dictionary.h"

namespace mixerclient {
namespace {

// Word indexes: source.labels 5, destination.labels 156, source.uid 3, request.path 17.
CheckResponse Answer(int32_t code, std::vector<AttributeMatch> matches, std::vector<std::string> words = {},
                     int32_t uses = 200, std::optional<Duration> ttl = Duration{10, 0}) {
  CheckResponse r;
  PreconditionResult& p = r.precondition.emplace();
  p.status = RpcStatus{code, code == 0 ? "" : "Not allowed", {}};
  p.valid_use_count = uses;
  p.valid_duration = ttl;
  ReferencedAttributes& ref = p.referenced_attributes.emplace();
  ref.words = std::move(words);
  ref.attribute_matches = std::move(matches);
  return r;
}

Attributes ReviewsToRatings(const std::string& version) {
  Attributes a;
  a.SetStringMap("source.labels", {{"app", "reviews"}, {"version", version}});
  a.SetStringMap("destination.labels", {{"app", "ratings"}});
  a.SetString("request.path", "/ratings/" + version);
  return a;
}

class CheckCacheTest : public ::testing::Test {
 protected:
  FakeTimeSource time_;
  CheckCache cache_{CheckOptions(), &time_};
};

TEST_F(CheckCacheTest, AnAnswerServesEveryRequestWithTheSameReferencedValues) {
  // The deny-label rule read destination.labels["app"] and source.labels["version"].
  const CheckResponse deny = Answer(7, {{156, kExact, "", -1}, {5, kExact, "", -2}}, {"app", "version"});
  EXPECT_EQ(cache_.Store(ReviewsToRatings("v3"), deny, 222).status.code(), Code::kPermissionDenied);
  CheckAnswer hit;
  Attributes other_path = ReviewsToRatings("v3");
  other_path.SetString("request.path", "/elsewhere");
  ASSERT_TRUE(cache_.Lookup(other_path, &hit));
  EXPECT_EQ(hit.status.code(), Code::kPermissionDenied);
  EXPECT_EQ(hit.status.message(), "Not allowed");
  EXPECT_FALSE(cache_.Lookup(ReviewsToRatings("v2"), &hit));  // a different version: ask Mixer
}

TEST_F(CheckCacheTest, MapSubKeysTheAnswerDidNotReadDoNotMatter) {
  cache_.Store(ReviewsToRatings("v2"), Answer(0, {{5, kExact, "", -1}}, {"version"}), 222);
  Attributes more_labels = ReviewsToRatings("v2");
  more_labels.SetStringMapEntry("source.labels", "pod-template-hash", "abc");
  more_labels.SetStringMapEntry("source.labels", "app", "not-reviews");
  CheckAnswer hit;
  EXPECT_TRUE(cache_.Lookup(more_labels, &hit));
  Attributes without_key;
  without_key.SetStringMap("source.labels", {{"app", "reviews"}});
  EXPECT_FALSE(cache_.Lookup(without_key, &hit));  // the EXACT sub-key is gone
}

TEST_F(CheckCacheTest, AbsenceKeysMustStayAbsent) {
  // The answer depended on source.uid being absent and on source.labels["canary"] being absent.
  const CheckResponse ok = Answer(0, {{3, kAbsence, "", 0}, {5, kAbsence, "", -1}}, {"canary"});
  cache_.Store(ReviewsToRatings("v1"), ok, 222);
  CheckAnswer hit;
  EXPECT_TRUE(cache_.Lookup(ReviewsToRatings("v9"), &hit));  // nothing it read differs
  Attributes with_uid = ReviewsToRatings("v1");
  with_uid.SetString("source.uid", "kubernetes://reviews-v1.default");
  EXPECT_FALSE(cache_.Lookup(with_uid, &hit));
  Attributes canary = ReviewsToRatings("v1");
  canary.SetStringMapEntry("source.labels", "canary", "true");
  EXPECT_FALSE(cache_.Lookup(canary, &hit));
  Attributes no_labels;
  EXPECT_TRUE(cache_.Lookup(no_labels, &hit));  // a missing map has no "canary" key either
}

TEST_F(CheckCacheTest, UseCountsRunOut) {
  cache_.Store(ReviewsToRatings("v1"), Answer(0, {{17, kExact, "", 0}}, {}, 3), 222);
  CheckAnswer hit;
  EXPECT_TRUE(cache_.Lookup(ReviewsToRatings("v1"), &hit));
  EXPECT_TRUE(cache_.Lookup(ReviewsToRatings("v1"), &hit));
  EXPECT_TRUE(cache_.Lookup(ReviewsToRatings("v1"), &hit));
  EXPECT_FALSE(cache_.Lookup(ReviewsToRatings("v1"), &hit));
  EXPECT_EQ(cache_.size(), 0u);
}

TEST_F(CheckCacheTest, TheHitWithATenthOfTheUsesLeftAsksForARefreshOnce) {
  cache_.Store(ReviewsToRatings("v1"), Answer(0, {{17, kExact, "", 0}}, {}, 20), 222);
  CheckAnswer hit;
  for (int i = 0; i < 17; ++i) {
    bool refresh = false;
    ASSERT_TRUE(cache_.Lookup(ReviewsToRatings("v1"), &hit, &refresh));
    EXPECT_FALSE(refresh) << "use " << i + 1;
  }
  bool refresh = false;
  ASSERT_TRUE(cache_.Lookup(ReviewsToRatings("v1"), &hit, &refresh));  // 2 of 20 left
  EXPECT_TRUE(refresh);
  refresh = false;
  ASSERT_TRUE(cache_.Lookup(ReviewsToRatings("v1"), &hit, &refresh));  // still answers
  EXPECT_FALSE(refresh);                                              // asked once only
  // The refreshed answer replaces the entry with its own uses, and may be refreshed again.
  cache_.Store(ReviewsToRatings("v1"), Answer(0, {{17, kExact, "", 0}}, {}, 20), 222);
  for (int i = 0; i < 17; ++i) ASSERT_TRUE(cache_.Lookup(ReviewsToRatings("v1"), &hit, &refresh));
  EXPECT_FALSE(refresh);
  ASSERT_TRUE(cache_.Lookup(ReviewsToRatings("v1"), &hit, &refresh));
  EXPECT_TRUE(refresh);
}

TEST_F(CheckCacheTest, TheHitInTheLastTenthOfTheValidDurationAsksForARefresh) {
  cache_.Store(ReviewsToRatings("v1"), Answer(0, {{17, kExact, "", 0}}, {}, 200, Duration{10, 0}), 222);
  CheckAnswer hit;
  bool refresh = false;
  time_.AdvanceMillis(8999);
  ASSERT_TRUE(cache_.Lookup(ReviewsToRatings("v1"), &hit, &refresh));
  EXPECT_FALSE(refresh);
  time_.AdvanceMillis(1);
  ASSERT_TRUE(cache_.Lookup(ReviewsToRatings("v1"), &hit, &refresh));
  EXPECT_TRUE(refresh);
  time_.AdvanceMillis(1000);
  EXPECT_FALSE(cache_.Lookup(ReviewsToRatings("v1"), &hit, &refresh));  // expiry is unchanged
}

TEST_F(CheckCacheTest, NoRefreshAheadForASingleUseOrWhenTurnedOff) {
  CheckAnswer hit;
  bool refresh = false;
  cache_.Store(ReviewsToRatings("v1"), Answer(0, {{17, kExact, "", 0}}, {}, 1, std::nullopt), 222);
  ASSERT_TRUE(cache_.Lookup(ReviewsToRatings("v1"), &hit, &refresh));
  EXPECT_FALSE(refresh);
  CheckOptions off;
  off.refresh_fraction = 0;
  CheckCache cache(off, &time_);
  cache.Store(ReviewsToRatings("v1"), Answer(0, {{17, kExact, "", 0}}, {}, 2), 222);
  time_.AdvanceMillis(9999);
  ASSERT_TRUE(cache.Lookup(ReviewsToRatings("v1"), &hit, &refresh));
  ASSERT_TRUE(cache.Lookup(ReviewsToRatings("v1"), &hit, &refresh));
  EXPECT_FALSE(refresh);
}

TEST_F(CheckCacheTest, ZeroUsesOrZeroDurationIsNotCached) {
  cache_.Store(ReviewsToRatings("v1"), Answer(0, {}, {}, 0), 222);
  CheckAnswer hit;
  EXPECT_FALSE(cache_.Lookup(ReviewsToRatings("v1"), &hit));
  cache_.Store(ReviewsToRatings("v1"), Answer(0, {}, {}, 5, Duration{0, 0}), 222);
  EXPECT_FALSE(cache_.Lookup(ReviewsToRatings("v1"), &hit));
  EXPECT_EQ(cache_.uncacheable(), 2u);
}

TEST_F(CheckCacheTest, EntriesExpireAfterValidDuration) {
  cache_.Store(ReviewsToRatings("v1"), Answer(0, {{17, kExact, "", 0}}, {}, 200, Duration{2, 0}), 222);
  CheckAnswer hit;
  time_.AdvanceMillis(1999);
  EXPECT_TRUE(cache_.Lookup(ReviewsToRatings("v1"), &hit));
  time_.AdvanceMillis(1);
  EXPECT_FALSE(cache_.Lookup(ReviewsToRatings("v1"), &hit));
}

TEST_F(CheckCacheTest, NoValidDurationMeansNoTimeLimit) {
  cache_.Store(ReviewsToRatings("v1"), Answer(0, {}, {}, 200, std::nullopt), 222);
  time_.AdvanceMillis(1000LL * 3600 * 24 * 365);
  CheckAnswer hit;
  EXPECT_TRUE(cache_.Lookup(ReviewsToRatings("v1"), &hit));
}

TEST_F(CheckCacheTest, RemoveExpiredSweeps) {
  cache_.Store(ReviewsToRatings("v1"), Answer(0, {{17, kExact, "", 0}}, {}, 200, Duration{1, 0}), 222);
  cache_.Store(ReviewsToRatings("v2"), Answer(0, {{17, kExact, "", 0}}, {}, 200, Duration{5, 0}), 222);
  EXPECT_EQ(cache_.size(), 2u);
  time_.AdvanceMillis(2000);
  cache_.RemoveExpired();
  EXPECT_EQ(cache_.size(), 1u);
}

TEST_F(CheckCacheTest, RegexMakesTheAnswerUncacheable) {
  const CheckResponse regex = Answer(0, {{15, kRegex, "^x-user-.*", 0}});
  EXPECT_TRUE(cache_.Store(ReviewsToRatings("v1"), regex, 222).status.ok());  // still the answer
  CheckAnswer hit;
  EXPECT_FALSE(cache_.Lookup(ReviewsToRatings("v1"), &hit));
  EXPECT_EQ(cache_.shape_count(), 0u);
  EXPECT_NE(cache_.last_uncacheable_reason().find("REGEX"), std::string::npos);
}

TEST_F(CheckCacheTest, ShapesDoNotLendAnswersToEachOther) {
  // Shape A: exact request.path, and source.uid absent. Shape B: exact request.path only.
  // Both give "/p" the same value signature; the shape id keeps their entries apart.
  Attributes p;
  p.SetString("request.path", "/p");
  cache_.Store(p, Answer(7, {{17, kExact, "", 0}, {3, kAbsence, "", 0}}), 222);
  Attributes p_with_uid = p;
  p_with_uid.SetString("source.uid", "x");
  cache_.Store(p_with_uid, Answer(0, {{17, kExact, "", 0}}), 222);
  // The deny for "uid absent" must not answer a request that has a uid, and vice versa.
  CheckAnswer hit;
  ASSERT_TRUE(cache_.Lookup(p_with_uid, &hit));
  EXPECT_TRUE(hit.status.ok());
  ASSERT_TRUE(cache_.Lookup(p, &hit));
  EXPECT_EQ(hit.status.code(), Code::kPermissionDenied);
  EXPECT_EQ(cache_.shape_count(), 2u);
}

TEST_F(CheckCacheTest, ReferencesThatDoNotFitTheRequestAreNotCached) {
  Attributes a;
  a.SetString("request.path", "/p");
  cache_.Store(a, Answer(0, {{3, kExact, "", 0}}), 222);  // says it read source.uid, which a lacks
  EXPECT_EQ(cache_.size(), 0u);
  EXPECT_EQ(cache_.uncacheable(), 1u);
}

TEST_F(CheckCacheTest, NoPreconditionIsInvalidAndNotCached) {
  CheckResponse empty;
  EXPECT_EQ(cache_.Store(ReviewsToRatings("v1"), empty, 222).status.code(), Code::kInvalidArgument);
  EXPECT_EQ(cache_.size(), 0u);
}

TEST_F(CheckCacheTest, MixerInternalErrorsFollowTheFailPolicy) {
  EXPECT_TRUE(cache_.Store(ReviewsToRatings("v1"), Answer(13, {}), 222).status.ok());
  FakeTimeSource time;
  CheckOptions closed;
  closed.network_fail_open = false;
  CheckCache strict(closed, &time);
  EXPECT_EQ(strict.Store(ReviewsToRatings("v1"), Answer(13, {}), 222).status.code(), Code::kInternal);
}

TEST_F(CheckCacheTest, TheLeastRecentlyUsedEntryMakesRoom) {
  CheckOptions small;
  small.num_entries = 2;
  CheckCache cache(small, &time_);
  for (const char* v : {"v1", "v2", "v3"}) {
    cache.Store(ReviewsToRatings(v), Answer(0, {{17, kExact, "", 0}}), 222);
  }
  CheckAnswer hit;
  EXPECT_FALSE(cache.Lookup(ReviewsToRatings("v1"), &hit));
  EXPECT_TRUE(cache.Lookup(ReviewsToRatings("v2"), &hit));
  EXPECT_TRUE(cache.Lookup(ReviewsToRatings("v3"), &hit));
}

TEST_F(CheckCacheTest, ZeroEntriesDisablesTheCache) {
  CheckOptions off;
  off.num_entries = 0;
  CheckCache cache(off, &time_);
  EXPECT_EQ(cache.Store(ReviewsToRatings("v1"), Answer(7, {}), 222).status.code(), Code::kPermissionDenied);
  CheckAnswer hit;
  EXPECT_FALSE(cache.Lookup(ReviewsToRatings("v1"), &hit));
}

TEST_F(CheckCacheTest, ReferencesUseTheWordCountTheRequestDeclared) {
  // Index 174 (source.principal) is a global word for 222 words, not for 111.
  Attributes a;
  a.SetString("source.principal", "cluster.local/ns/default/sa/x");
  cache_.Store(a, Answer(0, {{174, kExact, "", 0}}), kBaseGlobalWordCount);
  EXPECT_EQ(cache_.size(), 0u);
  cache_.Store(a, Answer(0, {{174, kExact, "", 0}}), 222);
  EXPECT_EQ(cache_.size(), 1u);
}

}  // namespace
}  // namespace mixerclient
