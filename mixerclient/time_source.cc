#include "mixerclient/time_source.h"

#include <chrono>

namespace mixerclient {

// Out of line so each class's vtable lives in this file (see README: no RTTI across the
// boundary to the exception- and RTTI-enabled binding).
TimeSource::~TimeSource() = default;
SteadyTimeSource::~SteadyTimeSource() = default;
FakeTimeSource::~FakeTimeSource() = default;

int64_t SteadyTimeSource::NowNanos() const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace mixerclient
