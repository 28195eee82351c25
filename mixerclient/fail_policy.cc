#include "mixerclient/fail_policy.h"

namespace mixerclient {

Status StatusForTransportError(const Status& transport_status, bool fail_open) {
  if (fail_open) return Status::Ok();
  return transport_status;
}

Status StatusFromMixer(const RpcStatus& status, bool fail_open) {
  const Code code = static_cast<Code>(status.code);
  if (code == Code::kInternal && fail_open) return Status::Ok();
  return Status(code, status.message);
}

bool IsDictionaryMismatch(const Status& transport_status) {
  return transport_status.code() == Code::kInvalidArgument &&
         transport_status.message().find("global dictionary") != std::string::npos;
}

}  // namespace mixerclient
