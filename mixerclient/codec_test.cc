#include "mixerclient/codec.h"

#include "gtest/gtest.h"

namespace mixerclient {
namespace {

std::string Hex(const std::string& s) {
  static const char d[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

TEST(CodecTest, CheckRequestBytesAreProtobufs) {
  CheckRequest request;
  request.attributes.emplace();
  request.attributes->strings[17] = -1;  // request.path -> words[0]
  request.attributes->words = {"/a"};
  request.global_word_count = 222;
  request.deduplication_id = "d1";
  request.quotas["q"] = QuotaParams{1, true};
  // 0a 0a: attributes (10 bytes): 0a 02 "/a" words; 12 04 (strings entry: 08 22 10 01)
  // 10 de 01: global_word_count 222; 1a 02 "d1"; 22 09: quotas entry: 0a 01 "q" 12 04 (08 01 10 01)
  EXPECT_EQ(Hex(EncodeCheckRequest(request)),
            "0a0a" "0a022f61" "120408221001"
            "10de01" "1a026431"
            "2209" "0a0171" "120408011001");
  CheckRequest back;
  ASSERT_TRUE(DecodeCheckRequest(EncodeCheckRequest(request), &back).ok());
  EXPECT_EQ(EncodeCheckRequest(back), EncodeCheckRequest(request));
}

TEST(CodecTest, MapEntriesFollowThePythonRuntimesDeterministicOrder) {
  CompressedAttributes a;
  for (int32_t k : {5, -1, 0, 300, -3}) a.int64s[k] = 1;
  // -1, -3 (as unsigned: the largest), then 300, 5, 0.
  EXPECT_EQ(Hex(EncodeCompressedAttributes(a)),
            "1a0408011001" "1a0408051001" "1a0508d8041001" "1a04080a1001" "1a0408001001");
  CheckRequest r;
  for (const char* name : {"b", "a", "c", "ab", ""}) r.quotas[name].amount = 1;
  std::string order;
  for (size_t at = 0; (at = EncodeCheckRequest(r).find('\x0a', at)) != std::string::npos;) {
    const std::string bytes = EncodeCheckRequest(r);
    const size_t n = static_cast<unsigned char>(bytes[at + 1]);
    order += "[" + bytes.substr(at + 2, n) + "]";
    at += 2 + n;
  }
  EXPECT_EQ(order, "[ab][a][b][c][]");  // a prefix comes after the longer string
}

TEST(CodecTest, AnEmptySetMessageStillGoesOnTheWire) {
  CheckRequest request;
  EXPECT_EQ(EncodeCheckRequest(request), "");
  request.attributes.emplace();
  EXPECT_EQ(Hex(EncodeCheckRequest(request)), "0a00");
  CheckResponse response;
  response.precondition.emplace();
  EXPECT_EQ(Hex(EncodeCheckResponse(response)), "1200");
  CheckResponse back;
  ASSERT_TRUE(DecodeCheckResponse(std::string("\x12\x00", 2), &back).ok());
  EXPECT_TRUE(back.precondition.has_value());
  EXPECT_FALSE(back.precondition->status.has_value());
}

CheckResponse FullResponse() {
  CheckResponse r;
  PreconditionResult& p = r.precondition.emplace();
  p.status = RpcStatus{7, "Not allowed", {AnyMessage{"type.googleapis.com/x", "\x01\x02"}}};
  p.valid_duration = Duration{10, 5};
  p.valid_use_count = -3;
  ReferencedAttributes& ref = p.referenced_attributes.emplace();
  ref.words = {"app"};
  ref.attribute_matches = {AttributeMatch{5, kExact, "", -1}, AttributeMatch{0, kAbsence, "", 0},
                           AttributeMatch{15, kRegex, "^x-.*", 0}};
  RouteDirective& d = p.route_directive.emplace();
  d.request_header_operations = {HeaderOperation{"x-a", "1", kAppend}};
  d.response_header_operations = {HeaderOperation{"x-b", "", kRemove}};
  d.direct_response_code = 302;
  d.direct_response_body = "moved";
  QuotaResult& q = r.quotas["requestcount.quota.istio-system"];
  q.valid_duration = Duration{1, 0};
  q.granted_amount = 5;
  q.status = RpcStatus{8, "spent", {}};
  q.referenced_attributes.emplace();
  r.quotas["other"] = QuotaResult();
  return r;
}

TEST(CodecTest, CheckResponseRoundTrips) {
  const CheckResponse r = FullResponse();
  const std::string bytes = EncodeCheckResponse(r);
  CheckResponse back;
  ASSERT_TRUE(DecodeCheckResponse(bytes, &back).ok());
  EXPECT_EQ(EncodeCheckResponse(back), bytes);
  EXPECT_EQ(back.precondition->status->message, "Not allowed");
  EXPECT_EQ(back.precondition->valid_use_count, -3);
  EXPECT_EQ(back.precondition->referenced_attributes->attribute_matches[2].regex, "^x-.*");
  EXPECT_EQ(back.precondition->route_directive->direct_response_code, 302u);
  EXPECT_EQ(back.quotas.at("requestcount.quota.istio-system").granted_amount, 5);
  EXPECT_TRUE(back.quotas.count("other"));
}

TEST(CodecTest, ReportRequestRoundTrips) {
  ReportRequest r;
  r.attributes.resize(3);
  r.attributes[0].strings[-1] = -2;
  r.attributes[0].int64s[30] = 200;
  r.attributes[0].doubles[-1] = -0.0;
  r.attributes[0].bools[-2] = false;
  r.attributes[0].timestamps[24] = Timestamp{1700000000, 999};
  r.attributes[0].durations[29] = Duration{0, 0};
  r.attributes[0].bytes[0] = std::string("\x7f\0\0\x01", 4);
  r.attributes[0].string_maps[15].entries[-1] = -2;
  r.attributes[2].words = {"own"};
  r.default_words = {"a", "b"};
  r.global_word_count = 111;
  r.repeated_attributes_semantics = kIndependentEncoding;
  const std::string bytes = EncodeReportRequest(r);
  ReportRequest back;
  ASSERT_TRUE(DecodeReportRequest(bytes, &back).ok());
  EXPECT_EQ(EncodeReportRequest(back), bytes);
  ASSERT_EQ(back.attributes.size(), 3u);
  EXPECT_TRUE(back.attributes[1].empty());
  EXPECT_EQ(back.attributes[0].bytes.at(0).size(), 4u);
  EXPECT_EQ(EncodeReportResponse(ReportResponse()), "");
  ReportResponse empty;
  EXPECT_TRUE(DecodeReportResponse("", &empty).ok());
  EXPECT_TRUE(DecodeReportResponse("\x08\x01", &empty).ok());  // unknown fields are fine
}

TEST(CodecTest, UnknownFieldsAndUnexpectedWireTypesAreSkipped) {
  // field 99 varint, then global_word_count (2) sent as bytes (wrong wire type), then field 2.
  std::string in = std::string("\x98\x06\x05", 3) + "\x12\x01z" + "\x10\x07";
  CheckRequest r;
  ASSERT_TRUE(DecodeCheckRequest(in, &r).ok());
  EXPECT_EQ(r.global_word_count, 7u);
}

TEST(CodecTest, MapEntriesMayOmitKeyOrValue) {
  // strings entry with no key and no value: {0: 0}; quotas entry with only a key.
  CheckRequest r;
  ASSERT_TRUE(DecodeCheckRequest(std::string("\x0a\x02\x12\x00" "\x22\x03\x0a\x01q", 9), &r).ok());
  EXPECT_EQ(r.attributes->strings.at(0), 0);
  EXPECT_EQ(r.quotas.at("q").amount, 0);
}

TEST(CodecTest, RepeatedSingularFieldsFollowProtobufMergeRules) {
  // precondition twice: first with use count 3, then with use count 0 omitted but a status.
  std::string in = std::string("\x12\x02\x18\x03", 4) + std::string("\x12\x04\x0a\x02\x08\x07", 6);
  CheckResponse r;
  ASSERT_TRUE(DecodeCheckResponse(in, &r).ok());
  EXPECT_EQ(r.precondition->valid_use_count, 3);
  EXPECT_EQ(r.precondition->status->code, 7);
}

TEST(CodecTest, ErrorsNameTheFieldPath) {
  CheckResponse r;
  // precondition { referenced_attributes { attribute_matches { regex = <invalid utf-8> } } }
  std::string match = std::string("\x1a\x01\xff", 3);
  std::string matches = std::string("\x12") + static_cast<char>(match.size()) + match;
  std::string ref = std::string("\x2a") + static_cast<char>(matches.size()) + matches;
  std::string in = std::string("\x12") + static_cast<char>(ref.size()) + ref;
  const Status s = DecodeCheckResponse(in, &r);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("precondition: referenced_attributes: attribute_matches[0]: field 3: string is not valid UTF-8"),
            std::string::npos)
      << s.message();
  const Status t = DecodeCheckRequest(std::string("\x0a\x05\x0a\x01", 4), &*std::make_unique<CheckRequest>());
  EXPECT_NE(t.message().find("runs past the end"), std::string::npos) << t.message();
}

TEST(CodecTest, AttributesMessageRoundTripsEveryType) {
  Attributes a;
  a.SetString("s", "");
  a.SetInt64("i", 0);
  a.SetDouble("d", 2.5);
  a.SetBool("b", false);
  a.SetBytes("y", "");
  a.SetTimestamp("t", Timestamp{});
  a.SetDuration("u", Duration{3, 4});
  a.SetStringMap("m", {{"k", "v"}, {"", ""}});
  Attributes back;
  ASSERT_TRUE(DecodeAttributesMessage(EncodeAttributesMessage(a), &back).ok());
  EXPECT_EQ(back, a);
  // An entry whose value has no member set.
  const Status s = DecodeAttributesMessage(std::string("\x0a\x05\x0a\x01x\x12\x00", 7), &back);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("has no value"), std::string::npos);
}

}  // namespace
}  // namespace mixerclient
