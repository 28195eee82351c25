// Encoding and decoding of Mixer's messages (messages.h) in the protobuf wire format.
//
// Encode* writes fields in field-number order, map entries in the order upb's deterministic
// serialization uses (codec_internal.h: ForEachInWireOrder), and omits
// proto3 defaults except inside map entries, which always carry key and value: the bytes are
// exactly those of protobuf's deterministic serialization (proven against the Python protobuf
// runtime by mixerclient/python/wire_property_test.py).
//
// Decode* merges into *out as protobuf's parsers do (a repeated singular field: last value
// wins; a repeated message field: merged), skips unknown fields and known fields of an
// unexpected wire type, rejects strings that are not UTF-8 and malformed input, and never
// reads past the buffer. On error the Status is INVALID_ARGUMENT with the field path and the
// byte offset, and *out holds whatever was decoded before the error.
#ifndef MIXERCLIENT_CODEC_H_
#define MIXERCLIENT_CODEC_H_

#include <string>
#include <string_view>

#include "mixerclient/attributes.h"
#include "mixerclient/messages.h"
#include "mixerclient/status.h"

namespace mixerclient {

std::string EncodeCheckRequest(const CheckRequest& message);
std::string EncodeCheckResponse(const CheckResponse& message);
std::string EncodeReportRequest(const ReportRequest& message);
std::string EncodeReportResponse(const ReportResponse& message);
std::string EncodeCompressedAttributes(const CompressedAttributes& message);

Status DecodeCheckRequest(std::string_view data, CheckRequest* out);
Status DecodeCheckResponse(std::string_view data, CheckResponse* out);
Status DecodeReportRequest(std::string_view data, ReportRequest* out);
Status DecodeReportResponse(std::string_view data, ReportResponse* out);
Status DecodeCompressedAttributes(std::string_view data, CompressedAttributes* out);

// istio.mixer.v1.Attributes, the uncompressed form: what a client sidecar forwards to the
// server sidecar in the x-istio-attributes header (base64 of these bytes).
std::string EncodeAttributesMessage(const Attributes& attributes);
// An AttributeValue with no value set is an error (a bag has no typeless values).
Status DecodeAttributesMessage(std::string_view data, Attributes* out);

}  // namespace mixerclient

#endif  // MIXERCLIENT_CODEC_H_
