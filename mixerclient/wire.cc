#include "mixerclient/wire.h"

#include <cstring>

namespace mixerclient {
namespace {

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Nesting deeper than this in skipped groups is refused rather than recursed into.
constexpr int kMaxGroupDepth = 64;

}  // namespace

void WireWriter::Fixed64(uint64_t v) {
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(v >> (8 * i));  // little-endian
  out_->append(bytes, 8);
}

void WireWriter::DoubleField(uint32_t field, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  Tag(field, WireType::kFixed64);
  Fixed64(bits);
}

void WireWriter::EndMessage(size_t start) {
  const size_t length = out_->size() - start;
  const size_t width = VarintSize(length);
  if (width > 1) out_->insert(start, width - 1, '\0');  // widen the one-byte placeholder
  size_t at = start - 1;
  uint64_t v = length;
  while (v >= 0x80) {
    (*out_)[at++] = static_cast<char>(static_cast<uint8_t>(v) | 0x80);
    v >>= 7;
  }
  (*out_)[at] = static_cast<char>(v);
}

bool WireReader::Fail(std::string why) {
  error_ = std::move(why) + " at byte " + std::to_string(pos_);
  return false;
}

bool WireReader::ReadVarint(uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (pos_ >= data_.size()) return Fail("truncated varint");
    const uint8_t byte = static_cast<uint8_t>(data_[pos_++]);
    result |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return Fail("varint longer than 10 bytes");
}

bool WireReader::ReadTag(uint32_t* field, WireType* type) {
  uint64_t key;
  if (!ReadVarint(&key)) return false;
  const uint64_t number = key >> 3;
  const uint64_t wire = key & 7;
  if (number == 0 || number > 0x1FFFFFFF) return Fail("invalid field number " + std::to_string(number));
  if (wire > 5) return Fail("invalid wire type " + std::to_string(wire));
  *field = static_cast<uint32_t>(number);
  *type = static_cast<WireType>(wire);
  return true;
}

bool WireReader::ReadFixed64(uint64_t* v) {
  if (data_.size() - pos_ < 8) return Fail("truncated fixed64");
  uint64_t result = 0;
  for (int i = 0; i < 8; ++i) {
    result |= static_cast<uint64_t>(static_cast<uint8_t>(data_[pos_ + i])) << (8 * i);
  }
  pos_ += 8;
  *v = result;
  return true;
}

bool WireReader::ReadFixed32(uint32_t* v) {
  if (data_.size() - pos_ < 4) return Fail("truncated fixed32");
  uint32_t result = 0;
  for (int i = 0; i < 4; ++i) {
    result |= static_cast<uint32_t>(static_cast<uint8_t>(data_[pos_ + i])) << (8 * i);
  }
  pos_ += 4;
  *v = result;
  return true;
}

bool WireReader::ReadDouble(double* v) {
  uint64_t bits;
  if (!ReadFixed64(&bits)) return false;
  std::memcpy(v, &bits, sizeof(bits));
  return true;
}

bool WireReader::ReadLengthDelimited(std::string_view* v) {
  uint64_t length;
  if (!ReadVarint(&length)) return false;
  if (length > data_.size() - pos_) {
    return Fail("length " + std::to_string(length) + " runs past the end (" +
                std::to_string(data_.size() - pos_) + " bytes left)");
  }
  *v = data_.substr(pos_, static_cast<size_t>(length));
  pos_ += static_cast<size_t>(length);
  return true;
}

bool WireReader::Skip(uint32_t field, WireType type) {
  uint64_t u64;
  uint32_t u32;
  std::string_view sv;
  switch (type) {
    case WireType::kVarint: return ReadVarint(&u64);
    case WireType::kFixed64: return ReadFixed64(&u64);
    case WireType::kLengthDelimited: return ReadLengthDelimited(&sv);
    case WireType::kFixed32: return ReadFixed32(&u32);
    case WireType::kStartGroup: return SkipGroup(field, 1);
    case WireType::kEndGroup: return Fail("unexpected end-group tag for field " + std::to_string(field));
  }
  return Fail("invalid wire type");
}

bool WireReader::SkipGroup(uint32_t group_field, int depth) {
  if (depth > kMaxGroupDepth) return Fail("groups nested too deeply");
  while (true) {
    if (done()) return Fail("unterminated group " + std::to_string(group_field));
    uint32_t field;
    WireType type;
    if (!ReadTag(&field, &type)) return false;
    if (type == WireType::kEndGroup) {
      if (field != group_field) return Fail("mismatched end-group tag " + std::to_string(field));
      return true;
    }
    if (type == WireType::kStartGroup) {
      if (!SkipGroup(field, depth + 1)) return false;
    } else if (!Skip(field, type)) {
      return false;
    }
  }
}

}  // namespace mixerclient
