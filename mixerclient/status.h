// Status: the outcome of an operation, with a google.rpc code and a message.
//
// The library is built without exceptions: every operation that can fail returns a Status
// (or reports one through a callback). Codes are google.rpc.Code values, the same numbers
// Mixer puts in CheckResponse.precondition.status and gRPC uses for transport errors.
#ifndef MIXERCLIENT_STATUS_H_
#define MIXERCLIENT_STATUS_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace mixerclient {

// google.rpc.Code. Any int32 may arrive from the wire, so this is an open enum.
enum class Code : int32_t {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

class Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  int32_t raw_code() const { return static_cast<int32_t>(code_); }
  const std::string& message() const { return message_; }

  // "PERMISSION_DENIED: Not allowed", or "OK".
  std::string ToString() const;

  bool operator==(const Status& other) const {
    return code_ == other.code_ && message_ == other.message_;
  }
  bool operator!=(const Status& other) const { return !(*this == other); }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// The canonical name of a code ("RESOURCE_EXHAUSTED"), or "CODE_<n>" for unknown values.
std::string CodeName(Code code);

// The HTTP status a proxy answers with when a Check fails with `code` (the mapping in
// google/rpc/code.proto, which Istio's filters use: PERMISSION_DENIED 403,
// RESOURCE_EXHAUSTED 429, UNAVAILABLE 503, UNAUTHENTICATED 401, ...). OK is 200.
int HttpStatusFor(Code code);

}  // namespace mixerclient

#endif  // MIXERCLIENT_STATUS_H_
