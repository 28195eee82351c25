// Network fail policy: what a request gets when Mixer could not answer.
#ifndef MIXERCLIENT_FAIL_POLICY_H_
#define MIXERCLIENT_FAIL_POLICY_H_

#include "mixerclient/messages.h"
#include "mixerclient/status.h"

namespace mixerclient {

// The transport failed (Mixer unreachable, timed out, refused the request): OK when
// failing open, the transport's status when failing closed.
Status StatusForTransportError(const Status& transport_status, bool fail_open);

// The precondition status Mixer answered, as the request gets it: Mixer's INTERNAL counts
// as a Mixer failure, so it too is OK when failing open (Istio's ConvertRpcStatus).
Status StatusFromMixer(const RpcStatus& status, bool fail_open);

// Whether a transport error says Mixer's global dictionary is older than ours, so the
// client should fall back to the base word list.
bool IsDictionaryMismatch(const Status& transport_status);

}  // namespace mixerclient

#endif  // MIXERCLIENT_FAIL_POLICY_H_
