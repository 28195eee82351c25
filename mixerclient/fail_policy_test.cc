#include "mixerclient/fail_policy.h"

#include "gtest/gtest.h"

namespace mixerclient {
namespace {

TEST(FailPolicyTest, TransportErrors) {
  const Status down(Code::kUnavailable, "connection refused");
  EXPECT_TRUE(StatusForTransportError(down, true).ok());
  EXPECT_EQ(StatusForTransportError(down, false), down);
}

TEST(FailPolicyTest, MixerStatuses) {
  EXPECT_TRUE(StatusFromMixer(RpcStatus{13, "boom", {}}, true).ok());
  EXPECT_EQ(StatusFromMixer(RpcStatus{13, "boom", {}}, false).code(), Code::kInternal);
  EXPECT_EQ(StatusFromMixer(RpcStatus{7, "Not allowed", {}}, true), Status(Code::kPermissionDenied, "Not allowed"));
  EXPECT_TRUE(StatusFromMixer(RpcStatus(), false).ok());
}

TEST(FailPolicyTest, DictionaryMismatchIsRecognised) {
  EXPECT_TRUE(IsDictionaryMismatch(Status(
      Code::kInvalidArgument,
      "invalid attributes: inconsistent global dictionary versions used: mixer knows 178 words, caller knows 222")));
  EXPECT_FALSE(IsDictionaryMismatch(Status(Code::kInvalidArgument, "invalid attributes: strings: bad")));
  EXPECT_FALSE(IsDictionaryMismatch(Status(Code::kUnavailable, "global dictionary")));
}

}  // namespace
}  // namespace mixerclient
