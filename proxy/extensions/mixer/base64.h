// Standard base64 (RFC 4648, with padding): the x-istio-attributes header and bytesValue.
#ifndef PROXY_EXTENSIONS_MIXER_BASE64_H_
#define PROXY_EXTENSIONS_MIXER_BASE64_H_

#include <string>
#include <string_view>

namespace mixer_filter {

std::string Base64Encode(std::string_view data);
// False on anything but canonical padded base64 (unpadded input is accepted too).
bool Base64Decode(std::string_view text, std::string* out);

}  // namespace mixer_filter

#endif  // PROXY_EXTENSIONS_MIXER_BASE64_H_
