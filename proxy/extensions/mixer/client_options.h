// mixerclient's options from a filter config's TransportConfig.
#ifndef PROXY_EXTENSIONS_MIXER_CLIENT_OPTIONS_H_
#define PROXY_EXTENSIONS_MIXER_CLIENT_OPTIONS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "mixerclient/options.h"
#include "proxy/extensions/mixer/config.h"
#include "proxy/wasm/host.h"

namespace mixer_filter {

// `reporter_uid` and the root context id make the deduplication ids of this client unique
// among all proxies (with the wall clock at start, for restarts).
mixerclient::ClientOptions ClientOptionsFor(const TransportConfig& transport,
                                            std::string_view reporter_uid, proxy_wasm::Host& host,
                                            uint32_t root_context_id);

}  // namespace mixer_filter

#endif  // PROXY_EXTENSIONS_MIXER_CLIENT_OPTIONS_H_
