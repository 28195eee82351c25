#include "proxy/wasm/host.h"

#include <cstring>

namespace proxy_wasm {

Host::~Host() = default;

namespace {

void PutU32(std::string* out, uint32_t v) {
  char bytes[4] = {static_cast<char>(v & 0xff), static_cast<char>((v >> 8) & 0xff),
                   static_cast<char>((v >> 16) & 0xff), static_cast<char>((v >> 24) & 0xff)};
  out->append(bytes, 4);
}

uint32_t GetU32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(u[0]) | (static_cast<uint32_t>(u[1]) << 8) |
         (static_cast<uint32_t>(u[2]) << 16) | (static_cast<uint32_t>(u[3]) << 24);
}

}  // namespace

std::string SerializeHeaderPairs(const HeaderPairs& pairs) {
  size_t size = 4 + pairs.size() * 8;
  for (const auto& [key, value] : pairs) size += key.size() + value.size() + 2;
  std::string out;
  out.reserve(size);
  PutU32(&out, static_cast<uint32_t>(pairs.size()));
  for (const auto& [key, value] : pairs) {
    PutU32(&out, static_cast<uint32_t>(key.size()));
    PutU32(&out, static_cast<uint32_t>(value.size()));
  }
  for (const auto& [key, value] : pairs) {
    out.append(key);
    out.push_back('\0');
    out.append(value);
    out.push_back('\0');
  }
  return out;
}

bool ParseHeaderPairs(std::string_view data, HeaderPairs* pairs) {
  pairs->clear();
  if (data.empty()) return true;  // the host sends nothing for an empty map
  if (data.size() < 4) return false;
  const uint32_t count = GetU32(data.data());
  // Each pair needs 8 bytes of sizes and 2 NULs at least: reject counts the data cannot hold.
  if (count > (data.size() - 4) / 10) return false;
  size_t sizes = 4;
  size_t text = 4 + static_cast<size_t>(count) * 8;
  pairs->reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t key_size = GetU32(data.data() + sizes);
    const uint32_t value_size = GetU32(data.data() + sizes + 4);
    sizes += 8;
    if (text + key_size + 1 + value_size + 1 > data.size()) return false;
    std::string key(data.substr(text, key_size));
    text += key_size;
    if (data[text++] != '\0') return false;
    std::string value(data.substr(text, value_size));
    text += value_size;
    if (data[text++] != '\0') return false;
    pairs->emplace_back(std::move(key), std::move(value));
  }
  return true;
}

std::string PropertyPath(std::initializer_list<std::string_view> segments) {
  std::string path;
  for (std::string_view segment : segments) {
    if (!path.empty()) path.push_back('\0');
    path.append(segment);
  }
  return path;
}

}  // namespace proxy_wasm
