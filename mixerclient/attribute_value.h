// The value of one attribute: one of Mixer's transport types (istio.mixer.v1.Attributes'
// AttributeValue oneof). STRING, DNS_NAME, EMAIL_ADDRESS and URI travel as strings,
// IP_ADDRESS as bytes.
#ifndef MIXERCLIENT_ATTRIBUTE_VALUE_H_
#define MIXERCLIENT_ATTRIBUTE_VALUE_H_

#include <cstdint>
#include <map>
#include <string>
#include <variant>

namespace mixerclient {

// google.protobuf.Timestamp: seconds since the Unix epoch and 0 <= nanos < 1e9.
struct Timestamp {
  int64_t seconds = 0;
  int32_t nanos = 0;
  bool operator==(const Timestamp& o) const { return seconds == o.seconds && nanos == o.nanos; }
  bool operator!=(const Timestamp& o) const { return !(*this == o); }
};

// google.protobuf.Duration: seconds and nanos of the same sign.
struct Duration {
  int64_t seconds = 0;
  int32_t nanos = 0;
  bool operator==(const Duration& o) const { return seconds == o.seconds && nanos == o.nanos; }
  bool operator!=(const Duration& o) const { return !(*this == o); }
  int64_t ToNanos() const { return seconds * 1'000'000'000 + nanos; }
  static Duration FromMillis(int64_t ms) {
    return Duration{ms / 1000, static_cast<int32_t>((ms % 1000) * 1'000'000)};
  }
};

// Raw bytes (kept apart from strings: they travel in a different map, uncompressed).
struct Bytes {
  std::string data;
  bool operator==(const Bytes& o) const { return data == o.data; }
  bool operator!=(const Bytes& o) const { return !(*this == o); }
};

// STRING_MAP (request.headers, source.labels, ...). Sorted, so iteration is deterministic.
using StringMap = std::map<std::string, std::string>;

// The variant's alternatives are in ValueKind order.
using Value = std::variant<std::string, int64_t, double, bool, Bytes, Timestamp, Duration, StringMap>;

enum class ValueKind : uint8_t {
  kString = 0,
  kInt64 = 1,
  kDouble = 2,
  kBool = 3,
  kBytes = 4,
  kTimestamp = 5,
  kDuration = 6,
  kStringMap = 7,
};

inline ValueKind KindOf(const Value& v) { return static_cast<ValueKind>(v.index()); }

// Same type and the same wire value (doubles compare by bit pattern, so NaN equals NaN and
// -0.0 differs from 0.0, exactly as the bytes on the wire would).
bool SameValue(const Value& a, const Value& b);

}  // namespace mixerclient

#endif  // MIXERCLIENT_ATTRIBUTE_VALUE_H_
