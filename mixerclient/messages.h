// Mixer's messages (package istio.mixer.v1, api/mixer/v1/*.proto) as plain structs.
//
// Field names and numbers follow the protos. Maps are std::map so that encoding is
// deterministic (codec.h writes their entries in the order of the Python protobuf runtime's
// deterministic serialization), and singular message fields are std::optional because proto3 tracks their presence: an empty
// message that is set still goes on the wire. codec.h encodes and decodes them.
#ifndef MIXERCLIENT_MESSAGES_H_
#define MIXERCLIENT_MESSAGES_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mixerclient/attribute_value.h"

namespace mixerclient {

// istio.mixer.v1.StringMap: keys and values are word indexes.
struct CompressedStringMap {
  std::map<int32_t, int32_t> entries;  // 1
  bool operator==(const CompressedStringMap& o) const { return entries == o.entries; }
};

// istio.mixer.v1.CompressedAttributes. Names and string values are word indexes.
struct CompressedAttributes {
  std::vector<std::string> words;                            // 1
  std::map<int32_t, int32_t> strings;                        // 2
  std::map<int32_t, int64_t> int64s;                         // 3
  std::map<int32_t, double> doubles;                         // 4
  std::map<int32_t, bool> bools;                             // 5
  std::map<int32_t, Timestamp> timestamps;                   // 6
  std::map<int32_t, Duration> durations;                     // 7
  std::map<int32_t, std::string> bytes;                      // 8
  std::map<int32_t, CompressedStringMap> string_maps;        // 9
  bool empty() const {
    return words.empty() && strings.empty() && int64s.empty() && doubles.empty() &&
           bools.empty() && timestamps.empty() && durations.empty() && bytes.empty() &&
           string_maps.empty();
  }
};

// google.protobuf.Any (only carried through, in google.rpc.Status details).
struct AnyMessage {
  std::string type_url;  // 1
  std::string value;     // 2
};

// google.rpc.Status.
struct RpcStatus {
  int32_t code = 0;                 // 1
  std::string message;              // 2
  std::vector<AnyMessage> details;  // 3
};

// CheckRequest.QuotaParams.
struct QuotaParams {
  int64_t amount = 0;        // 1
  bool best_effort = false;  // 2
};

struct CheckRequest {
  std::optional<CompressedAttributes> attributes;  // 1
  uint32_t global_word_count = 0;                  // 2
  std::string deduplication_id;                    // 3
  std::map<std::string, QuotaParams> quotas;       // 4
};

// ReferencedAttributes.Condition.
enum Condition : int32_t {
  kConditionUnspecified = 0,
  kAbsence = 1,
  kExact = 2,
  kRegex = 3,
};

// ReferencedAttributes.AttributeMatch.
struct AttributeMatch {
  int32_t name = 0;       // 1, sint32 word index
  int32_t condition = 0;  // 2, Condition (open enum)
  std::string regex;      // 3
  int32_t map_key = 0;    // 4, sint32 word index; 0 means the whole attribute
};

struct ReferencedAttributes {
  std::vector<std::string> words;                 // 1
  std::vector<AttributeMatch> attribute_matches;  // 2
};

// HeaderOperation.Operation.
enum HeaderOperationKind : int32_t { kReplace = 0, kRemove = 1, kAppend = 2 };

struct HeaderOperation {
  std::string name;       // 1
  std::string value;      // 2
  int32_t operation = 0;  // 3, HeaderOperationKind (open enum)
};

struct RouteDirective {
  std::vector<HeaderOperation> request_header_operations;   // 1
  std::vector<HeaderOperation> response_header_operations;  // 2
  uint32_t direct_response_code = 0;                        // 3
  std::string direct_response_body;                         // 4
};

// CheckResponse.PreconditionResult.
struct PreconditionResult {
  std::optional<RpcStatus> status;                            // 1
  std::optional<Duration> valid_duration;                     // 2
  int32_t valid_use_count = 0;                                // 3
  std::optional<ReferencedAttributes> referenced_attributes;  // 5
  std::optional<RouteDirective> route_directive;              // 6
};

// CheckResponse.QuotaResult.
struct QuotaResult {
  std::optional<Duration> valid_duration;                     // 1
  int64_t granted_amount = 0;                                 // 2
  std::optional<ReferencedAttributes> referenced_attributes;  // 5
  std::optional<RpcStatus> status;                            // 6
};

struct CheckResponse {
  std::optional<PreconditionResult> precondition;  // 2
  std::map<std::string, QuotaResult> quotas;       // 3
};

// ReportRequest.RepeatedAttributesSemantics.
enum RepeatedAttributesSemantics : int32_t { kDeltaEncoding = 0, kIndependentEncoding = 1 };

struct ReportRequest {
  std::vector<CompressedAttributes> attributes;  // 1
  std::vector<std::string> default_words;        // 2
  uint32_t global_word_count = 0;                // 3
  int32_t repeated_attributes_semantics = 0;     // 4
};

struct ReportResponse {};

}  // namespace mixerclient

#endif  // MIXERCLIENT_MESSAGES_H_
