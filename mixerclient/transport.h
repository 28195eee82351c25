// The transport: how the client's messages reach Mixer. The library does no I/O; the host
// (Envoy's proxy_grpc_call inside the wasm filter, grpc.aio under Python, a fake in tests)
// implements this interface.
#ifndef MIXERCLIENT_TRANSPORT_H_
#define MIXERCLIENT_TRANSPORT_H_

#include <functional>
#include <string>
#include <string_view>

#include "mixerclient/status.h"

namespace mixerclient {

// Called exactly once per call: OK with the serialized response, or the transport's error
// (gRPC status: UNAVAILABLE, DEADLINE_EXCEEDED, Mixer's INVALID_ARGUMENT, ...). It may be
// called before Check/Report returns. Calls are made on one thread; the client is not
// thread-safe (one client per thread, as each Envoy worker has its own wasm VM).
using TransportDone = std::function<void(const Status& status, std::string_view response)>;

class Transport {
 public:
  virtual ~Transport();
  // `request` is a serialized istio.mixer.v1.CheckRequest; the answer a CheckResponse.
  virtual void Check(std::string request, TransportDone done) = 0;
  // `request` is a serialized istio.mixer.v1.ReportRequest; the answer a ReportResponse.
  virtual void Report(std::string request, TransportDone done) = 0;
};

// A transport made of two functions (so hosts need not subclass).
class FunctionTransport final : public Transport {
 public:
  using Call = std::function<void(std::string request, TransportDone done)>;
  FunctionTransport(Call check, Call report) : check_(std::move(check)), report_(std::move(report)) {}
  ~FunctionTransport() override;
  void Check(std::string request, TransportDone done) override;
  void Report(std::string request, TransportDone done) override;

 private:
  Call check_;
  Call report_;
};

}  // namespace mixerclient

#endif  // MIXERCLIENT_TRANSPORT_H_
