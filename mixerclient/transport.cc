#include "mixerclient/transport.h"

#include <utility>

namespace mixerclient {

Transport::~Transport() = default;
FunctionTransport::~FunctionTransport() = default;

void FunctionTransport::Check(std::string request, TransportDone done) {
  check_(std::move(request), std::move(done));
}

void FunctionTransport::Report(std::string request, TransportDone done) {
  report_(std::move(request), std::move(done));
}

}  // namespace mixerclient
