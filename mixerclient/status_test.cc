#include "mixerclient/status.h"

#include "gtest/gtest.h"

namespace mixerclient {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, ToStringNamesTheCode) {
  EXPECT_EQ(Status(Code::kPermissionDenied, "Not allowed").ToString(), "PERMISSION_DENIED: Not allowed");
  EXPECT_EQ(Status(Code::kUnavailable, "").ToString(), "UNAVAILABLE");
  EXPECT_EQ(Status(static_cast<Code>(99), "x").ToString(), "CODE_99: x");
}

TEST(StatusTest, HttpStatusFollowsGoogleRpcMapping) {
  EXPECT_EQ(HttpStatusFor(Code::kOk), 200);
  EXPECT_EQ(HttpStatusFor(Code::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusFor(Code::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusFor(Code::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(Code::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusFor(Code::kDeadlineExceeded), 504);
  EXPECT_EQ(HttpStatusFor(Code::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(static_cast<Code>(1234)), 500);
}

}  // namespace
}  // namespace mixerclient
