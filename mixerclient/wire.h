// Protocol Buffers wire format primitives: just what Mixer's messages need, with no
// protobuf library (there is none inside Envoy's WebAssembly sandbox).
//
// WireWriter writes fields forward; a nested message gets a one-byte length placeholder that
// EndMessage widens when the message turned out longer than 127 bytes, so every length is the
// minimal varint, as protobuf's own serializers write it. WireReader reads with bounds checks
// and says what went wrong where, never crashing on hostile input.
#ifndef MIXERCLIENT_WIRE_H_
#define MIXERCLIENT_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mixerclient {

enum class WireType : uint8_t {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};

inline uint32_t ZigZag32(int32_t v) {
  return (static_cast<uint32_t>(v) << 1) ^ static_cast<uint32_t>(v >> 31);
}
inline int32_t UnZigZag32(uint32_t v) {
  return static_cast<int32_t>((v >> 1) ^ (~(v & 1) + 1));
}

class WireWriter {
 public:
  explicit WireWriter(std::string* out) : out_(out) {}

  void Tag(uint32_t field, WireType type) {
    Varint((static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(type));
  }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_->push_back(static_cast<char>(static_cast<uint8_t>(v) | 0x80));
      v >>= 7;
    }
    out_->push_back(static_cast<char>(v));
  }
  void Fixed64(uint64_t v);

  // Fields. Callers skip proto3 defaults themselves; map entries always write both halves.
  void VarintField(uint32_t field, uint64_t v) {
    Tag(field, WireType::kVarint);
    Varint(v);
  }
  // int32 and enum values are sign-extended to 64 bits (negative ones take 10 bytes).
  void Int32Field(uint32_t field, int32_t v) {
    VarintField(field, static_cast<uint64_t>(static_cast<int64_t>(v)));
  }
  void Int64Field(uint32_t field, int64_t v) { VarintField(field, static_cast<uint64_t>(v)); }
  void Sint32Field(uint32_t field, int32_t v) { VarintField(field, ZigZag32(v)); }
  void BoolField(uint32_t field, bool v) { VarintField(field, v ? 1 : 0); }
  void DoubleField(uint32_t field, double v);
  void BytesField(uint32_t field, std::string_view v) {
    Tag(field, WireType::kLengthDelimited);
    Varint(v.size());
    out_->append(v.data(), v.size());
  }

  // Starts a length-delimited nested message; pass the result to EndMessage.
  size_t BeginMessage(uint32_t field) {
    Tag(field, WireType::kLengthDelimited);
    out_->push_back('\0');
    return out_->size();
  }
  void EndMessage(size_t start);

  std::string* out() { return out_; }

 private:
  std::string* out_;
};

class WireReader {
 public:
  explicit WireReader(std::string_view data) : data_(data) {}

  bool done() const { return pos_ >= data_.size(); }
  size_t offset() const { return pos_; }

  // Each returns false at a malformed or truncated input; error() then says why.
  bool ReadTag(uint32_t* field, WireType* type);
  bool ReadVarint(uint64_t* v);
  bool ReadFixed64(uint64_t* v);
  bool ReadFixed32(uint32_t* v);
  bool ReadLengthDelimited(std::string_view* v);
  bool ReadDouble(double* v);
  // Skips the value of a field this decoder does not know (groups included).
  bool Skip(uint32_t field, WireType type);

  const std::string& error() const { return error_; }

 private:
  bool Fail(std::string why);
  bool SkipGroup(uint32_t field, int depth);

  std::string_view data_;
  size_t pos_ = 0;
  std::string error_;
};

}  // namespace mixerclient

#endif  // MIXERCLIENT_WIRE_H_
