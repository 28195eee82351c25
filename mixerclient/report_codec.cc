// ReportRequest and ReportResponse on the wire.
#include <utility>

#include "mixerclient/codec.h"
#include "mixerclient/codec_internal.h"

namespace mixerclient {

using codec::Field;

std::string EncodeReportRequest(const ReportRequest& message) {
  std::string out;
  WireWriter w(&out);
  for (const CompressedAttributes& attrs : message.attributes) {
    codec::WriteMessage(w, 1, [&](WireWriter& a) { codec::WriteCompressedAttributes(a, attrs); });
  }
  for (const std::string& word : message.default_words) w.BytesField(2, word);
  if (message.global_word_count != 0) w.VarintField(3, message.global_word_count);
  if (message.repeated_attributes_semantics != 0) w.Int32Field(4, message.repeated_attributes_semantics);
  return out;
}

Status DecodeReportRequest(std::string_view data, ReportRequest* out) {
  std::string error;
  const bool ok = codec::ParseFields(data, &error, [&](uint32_t field, WireType type, WireReader& r, std::string* e) {
    switch (field) {
      case 1: {
        const std::string name = "attributes[" + std::to_string(out->attributes.size()) + "]";
        return codec::ReadMessage(r, type, name.c_str(), e, [&](std::string_view b, std::string* why) {
          CompressedAttributes attrs;
          if (!codec::ParseCompressedAttributes(b, &attrs, why)) return false;
          out->attributes.push_back(std::move(attrs));
          return true;
        });
      }
      case 2: {
        std::string word;
        const Field f = codec::ReadString(r, type, field, &word, e);
        if (f == Field::kRead) out->default_words.push_back(std::move(word));
        return f;
      }
      case 3: return codec::ReadUint32(r, type, &out->global_word_count);
      case 4: return codec::ReadInt32(r, type, &out->repeated_attributes_semantics);
    }
    return Field::kUnknown;
  });
  if (!ok) return Status(Code::kInvalidArgument, "ReportRequest: " + error);
  return Status::Ok();
}

std::string EncodeReportResponse(const ReportResponse&) { return std::string(); }

Status DecodeReportResponse(std::string_view data, ReportResponse*) {
  std::string error;
  const bool ok = codec::ParseFields(data, &error, [](uint32_t, WireType, WireReader&, std::string*) {
    return Field::kUnknown;
  });
  if (!ok) return Status(Code::kInvalidArgument, "ReportResponse: " + error);
  return Status::Ok();
}

}  // namespace mixerclient
