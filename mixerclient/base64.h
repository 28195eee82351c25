// Base64 (RFC 4648, standard alphabet, padded): the encoding of the x-istio-attributes
// header, which carries a client sidecar's source attributes (EncodeAttributesMessage) to
// the server sidecar.
#ifndef MIXERCLIENT_BASE64_H_
#define MIXERCLIENT_BASE64_H_

#include <string>
#include <string_view>

namespace mixerclient {

std::string Base64Encode(std::string_view data);

// False (and *out unchanged) if `text` is not padded standard base64.
bool Base64Decode(std::string_view text, std::string* out);

}  // namespace mixerclient

#endif  // MIXERCLIENT_BASE64_H_
