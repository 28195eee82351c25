#include "proxy/extensions/mixer/callback_clock.h"

namespace mixer_filter {

CallbackClock::~CallbackClock() = default;

}  // namespace mixer_filter
