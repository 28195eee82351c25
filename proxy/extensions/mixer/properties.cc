#include "proxy/extensions/mixer/properties.h"

#include <cstring>

namespace mixer_filter {

bool GetStringProperty(proxy_wasm::Host& host, std::string_view joined_path, std::string* out) {
  return host.GetProperty(joined_path, out);
}

bool GetStringProperty(proxy_wasm::Host& host, std::initializer_list<std::string_view> path,
                       std::string* out) {
  return host.GetProperty(proxy_wasm::PropertyPath(path), out);
}

bool GetInt64Property(proxy_wasm::Host& host, std::initializer_list<std::string_view> path,
                      int64_t* out) {
  return GetInt64Property(host, proxy_wasm::PropertyPath(path), out);
}

bool GetInt64Property(proxy_wasm::Host& host, std::string_view joined_path, int64_t* out) {
  std::string value;
  if (!host.GetProperty(joined_path, &value) || value.size() != 8) return false;
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(value[i]);
  *out = static_cast<int64_t>(v);
  return true;
}

bool GetBoolProperty(proxy_wasm::Host& host, std::initializer_list<std::string_view> path, bool* out) {
  std::string value;
  if (!host.GetProperty(proxy_wasm::PropertyPath(path), &value) || value.size() != 1) return false;
  *out = value[0] != 0;
  return true;
}

namespace {

bool ParseIpv4(std::string_view text, std::string* out) {
  std::string bytes;
  size_t start = 0;
  for (int part = 0; part < 4; ++part) {
    size_t end = text.find('.', start);
    if (part == 3) end = text.size();
    if (end == std::string_view::npos || end == start || end - start > 3) return false;
    int v = 0;
    for (size_t i = start; i < end; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      v = v * 10 + (text[i] - '0');
    }
    if (v > 255 || (end - start > 1 && text[start] == '0')) return false;
    bytes.push_back(static_cast<char>(v));
    start = end + 1;
  }
  *out = bytes;
  return true;
}

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Groups of one side of "::" (or the whole address), appended as 16-bit words.
bool ParseIpv6Groups(std::string_view text, std::string* words, bool allow_ipv4_tail) {
  if (text.empty()) return true;
  size_t start = 0;
  while (true) {
    size_t end = text.find(':', start);
    std::string_view group = text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (end == std::string_view::npos && allow_ipv4_tail && group.find('.') != std::string_view::npos) {
      std::string v4;
      if (!ParseIpv4(group, &v4)) return false;
      words->append(v4);
      return true;
    }
    if (group.empty() || group.size() > 4) return false;
    int v = 0;
    for (char c : group) {
      const int d = Hex(c);
      if (d < 0) return false;
      v = (v << 4) | d;
    }
    words->push_back(static_cast<char>(v >> 8));
    words->push_back(static_cast<char>(v & 0xff));
    if (end == std::string_view::npos) return true;
    start = end + 1;
  }
}

bool ParseIpv6(std::string_view text, std::string* out) {
  const size_t gap = text.find("::");
  std::string head, tail;
  if (gap == std::string_view::npos) {
    if (!ParseIpv6Groups(text, &head, true) || head.size() != 16) return false;
    *out = head;
    return true;
  }
  if (text.find("::", gap + 1) != std::string_view::npos) return false;
  if (!ParseIpv6Groups(text.substr(0, gap), &head, false) ||
      !ParseIpv6Groups(text.substr(gap + 2), &tail, true) || head.size() + tail.size() > 14) {
    return false;
  }
  *out = head + std::string(16 - head.size() - tail.size(), '\0') + tail;
  return true;
}

}  // namespace

bool ParseIp(std::string_view text, std::string* ip_bytes) {
  if (text.find(':') != std::string_view::npos) return ParseIpv6(text, ip_bytes);
  return ParseIpv4(text, ip_bytes);
}

bool ParseAddress(std::string_view text, std::string* ip_bytes, int64_t* port) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return false;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  if (port_text.empty() || port_text.size() > 5) return false;
  int64_t p = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9') return false;
    p = p * 10 + (c - '0');
  }
  if (p > 65535 || !ParseIp(host, ip_bytes)) return false;
  *port = p;
  return true;
}

std::string PrincipalFromUri(std::string_view uri) {
  constexpr std::string_view kSpiffe = "spiffe://";
  if (uri.substr(0, kSpiffe.size()) == kSpiffe) uri.remove_prefix(kSpiffe.size());
  return std::string(uri);
}

std::string ResponseFlagsText(uint64_t flags) {
  // Envoy's StreamInfo::ResponseFlag bits, in order, with their access-log short names.
  static const char* const kNames[] = {
      "LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL", "UAEX", "RLSE",
      "DC", "URX", "SI", "IH", "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC", "OM", "DF", "DO",
  };
  std::string out;
  for (size_t bit = 0; bit < sizeof(kNames) / sizeof(kNames[0]); ++bit) {
    if (flags & (uint64_t{1} << bit)) {
      if (!out.empty()) out.push_back(',');
      out.append(kNames[bit]);
    }
  }
  return out.empty() ? "-" : out;
}

}  // namespace mixer_filter
