// Typed reads of Envoy's attributes (properties) through Host, and the value formats they
// come in: integers and durations as 8-byte little-endian int64, booleans as one byte,
// addresses as "ip:port" text.
#ifndef PROXY_EXTENSIONS_MIXER_PROPERTIES_H_
#define PROXY_EXTENSIONS_MIXER_PROPERTIES_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "proxy/wasm/host.h"

namespace mixer_filter {

// A property path with its segments already joined by NUL (what Host::GetProperty takes),
// made once: Joined("xds\0cluster_name"). The per-request reads use these, so no path
// string is built for each.
template <size_t N>
constexpr std::string_view Joined(const char (&path)[N]) {
  return std::string_view(path, N - 1);
}
inline constexpr std::string_view kClusterNamePath = Joined("xds\0cluster_name");
inline constexpr std::string_view kConnectionIdPath = Joined("connection\0id");
inline constexpr std::string_view kUpstreamAddressPath = Joined("upstream\0address");
inline constexpr std::string_view kResponseFlagsPath = Joined("response\0flags");
inline constexpr std::string_view kResponseCodePath = Joined("response\0code");
inline constexpr std::string_view kResponseGrpcStatusPath = Joined("response\0grpc_status");
inline constexpr std::string_view kRequestSizePath = Joined("request\0size");
inline constexpr std::string_view kRequestDurationPath = Joined("request\0duration");

bool GetStringProperty(proxy_wasm::Host& host, std::string_view joined_path, std::string* out);
bool GetInt64Property(proxy_wasm::Host& host, std::string_view joined_path, int64_t* out);

bool GetStringProperty(proxy_wasm::Host& host, std::initializer_list<std::string_view> path,
                       std::string* out);
bool GetInt64Property(proxy_wasm::Host& host, std::initializer_list<std::string_view> path,
                      int64_t* out);
bool GetBoolProperty(proxy_wasm::Host& host, std::initializer_list<std::string_view> path, bool* out);

// "10.1.2.3:80" or "[::1]:80" -> the address's 4 or 16 bytes (Mixer's IP_ADDRESS) and port.
bool ParseAddress(std::string_view text, std::string* ip_bytes, int64_t* port);
// "10.1.2.3" or "::1" -> 4 or 16 bytes.
bool ParseIp(std::string_view text, std::string* ip_bytes);

// The identity in a SPIFFE URI, as Istio reports principals: "spiffe://td/ns/x/sa/y" -> "td/ns/x/sa/y".
std::string PrincipalFromUri(std::string_view uri);

// Envoy's response flags (a bit set) as the short codes Istio reports in
// context.proxy_error_code ("UH", "UF,URX"); "-" when none is set.
std::string ResponseFlagsText(uint64_t flags);

}  // namespace mixer_filter

#endif  // PROXY_EXTENSIONS_MIXER_PROPERTIES_H_
