#include "mixerclient/report_batch.h"

#include <vector>

#include "gtest/gtest.h"
#include "mixerclient/global_dictionary.h"
#include "mixerclient/codec.h"
#include "mixerclient/compressor.h"

namespace mixerclient {
namespace {

struct Sent {
  ReportRequest request;
  int32_t entries;
};

class ReportBatchTest : public ::testing::Test {
 protected:
  ReportBatch Make(ReportOptions options = ReportOptions()) {
    return ReportBatch(options, &time_, [this](std::string bytes, int32_t n) {
      ReportRequest r;
      EXPECT_TRUE(DecodeReportRequest(bytes, &r).ok());
      EXPECT_EQ(EncodeReportRequest(r), bytes);  // the direct writer's bytes are the codec's
      sent_.push_back({std::move(r), n});
    });
  }

  // The bags Mixer reads from a batch: entries applied cumulatively.
  static std::vector<Attributes> Decode(const ReportRequest& r) {
    std::vector<Attributes> out;
    Attributes state;
    for (const CompressedAttributes& entry : r.attributes) {
      Attributes delta;
      const auto& words = entry.words.empty() ? r.default_words : entry.words;
      EXPECT_TRUE(Decompress(entry, words, static_cast<int32_t>(r.global_word_count), &delta).ok());
      state.Merge(delta);
      out.push_back(state);
    }
    return out;
  }

  FakeTimeSource time_;
  std::vector<Sent> sent_;
};

Attributes Request(int code, const std::string& path) {
  Attributes a;
  a.SetString("destination.service.host", "ratings.default.svc.cluster.local");
  a.SetString("request.path", path);
  a.SetInt64("response.code", code);
  a.SetStringMap("request.headers", {{"x-request-id", path}, {"user-agent", "curl"}});
  return a;
}

TEST_F(ReportBatchTest, LaterEntriesCarryOnlyWhatChanged) {
  ReportBatch batch = Make();
  batch.Add(Request(200, "/a"), 222);
  batch.Add(Request(200, "/a"), 222);
  batch.Add(Request(503, "/a"), 222);
  batch.Flush();
  ASSERT_EQ(sent_.size(), 1u);
  const ReportRequest& r = sent_[0].request;
  EXPECT_EQ(sent_[0].entries, 3);
  EXPECT_EQ(r.repeated_attributes_semantics, kDeltaEncoding);
  EXPECT_EQ(r.global_word_count, 222u);
  ASSERT_EQ(r.attributes.size(), 3u);
  EXPECT_EQ(r.attributes[0].strings.size(), 2u);
  EXPECT_TRUE(r.attributes[1].empty());          // nothing changed
  EXPECT_EQ(r.attributes[2].int64s.size(), 1u);  // only response.code
  EXPECT_TRUE(r.attributes[2].strings.empty());
  for (const CompressedAttributes& e : r.attributes) EXPECT_TRUE(e.words.empty());  // all in default_words
  const auto bags = Decode(r);
  EXPECT_EQ(bags[0], Request(200, "/a"));
  EXPECT_EQ(bags[1], Request(200, "/a"));
  EXPECT_EQ(bags[2], Request(503, "/a"));
}

TEST_F(ReportBatchTest, AVanishedAttributeStartsANewBatch) {
  ReportBatch batch = Make();
  batch.Add(Request(200, "/a"), 222);
  Attributes fewer = Request(200, "/b");
  fewer.Erase("response.code");
  batch.Add(fewer, 222);
  ASSERT_EQ(sent_.size(), 1u);  // the first batch went out
  EXPECT_EQ(batch.size(), 1);
  batch.Flush();
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(Decode(sent_[1].request)[0], fewer);  // a full entry again
}

TEST_F(ReportBatchTest, AVanishedAttributeStartsANewBatchWhereverItSorts) {
  // First, last, and in the middle of the names, also with a new attribute in its place.
  for (const std::string gone : {"destination.service.host", "response.code", "request.headers"}) {
    sent_.clear();
    ReportBatch batch = Make();
    batch.Add(Request(200, "/a"), 222);
    Attributes next = Request(200, "/b");
    next.Erase(gone);
    next.SetString("request.method", "GET");
    batch.Add(next, 222);
    ASSERT_EQ(sent_.size(), 1u) << gone;
    batch.Flush();
    ASSERT_EQ(sent_.size(), 2u) << gone;
    EXPECT_EQ(Decode(sent_[1].request)[0], next) << gone;
  }
}

TEST_F(ReportBatchTest, AnAddedAttributeIsADelta) {
  ReportBatch batch = Make();
  batch.Add(Request(200, "/a"), 222);
  Attributes more = Request(200, "/a");
  more.SetString("request.method", "GET");  // sorts between the others
  more.SetString("source.uid", "kubernetes://a.default");  // after them all
  batch.Add(more, 222);
  batch.Flush();
  ASSERT_EQ(sent_.size(), 1u);
  ASSERT_EQ(sent_[0].request.attributes.size(), 2u);
  const std::vector<Attributes> bags = Decode(sent_[0].request);
  EXPECT_EQ(bags[1], more);
  // The second entry carries only the two new strings.
  EXPECT_EQ(sent_[0].request.attributes[1].strings.size(), 2u);
  EXPECT_TRUE(sent_[0].request.attributes[1].string_maps.empty());
}

TEST_F(ReportBatchTest, FlushesAtMaxBatchEntries) {
  ReportOptions options;
  options.max_batch_entries = 3;
  ReportBatch batch = Make(options);
  for (int i = 0; i < 7; ++i) batch.Add(Request(200, "/" + std::to_string(i)), 222);
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[0].entries, 3);
  EXPECT_EQ(batch.size(), 1);
  const auto bags = Decode(sent_[1].request);
  EXPECT_EQ(bags[2], Request(200, "/5"));
}

TEST_F(ReportBatchTest, FlushesAtMaxBatchTime) {
  ReportBatch batch = Make();
  EXPECT_EQ(batch.Tick(), -1);
  batch.Add(Request(200, "/a"), 222);
  time_.AdvanceMillis(400);
  EXPECT_EQ(batch.Tick(), 600);
  time_.AdvanceMillis(600);
  EXPECT_EQ(batch.Tick(), -1);
  ASSERT_EQ(sent_.size(), 1u);
  // Also seen by the next Add when no Tick came.
  batch.Add(Request(200, "/b"), 222);
  time_.AdvanceMillis(1500);
  batch.Add(Request(200, "/c"), 222);
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[1].entries, 1);
}

TEST_F(ReportBatchTest, WordCountAppliesPerBatch) {
  ReportBatch batch = Make();
  Attributes a;
  a.SetString("source.principal", "p");  // global word 174, beyond the base 111
  batch.Add(a, kBaseGlobalWordCount);
  batch.Flush();
  EXPECT_EQ(sent_[0].request.global_word_count, 111u);
  EXPECT_EQ(sent_[0].request.default_words[0], "source.principal");
  EXPECT_EQ(Decode(sent_[0].request)[0], a);
}

}  // namespace
}  // namespace mixerclient
