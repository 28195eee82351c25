// Referenced: the shape of a Mixer answer, i.e. which attributes it depended on, and the
// signature of a request under that shape (the check and quota caches' key).
//
// A response's referenced_attributes lists matches: EXACT (the value mattered), ABSENCE
// (that it was missing mattered), each on a whole attribute or on one key of a string map
// (map_key; 0 means none). A request fits a shape when every ABSENCE attribute (or map key)
// is missing from it and every EXACT one is present; its signature is then the EXACT values,
// so two requests with one signature get the same answer. REGEX matches cannot be keyed this
// way, so an answer that has one is not cached (as Istio's client does).
//
// Istio hashed the signature with MD5; here the signature is the canonical, length-prefixed
// byte string itself, so two different requests can never share a cache entry.
#ifndef MIXERCLIENT_REFERENCED_H_
#define MIXERCLIENT_REFERENCED_H_

#include <string>
#include <vector>

#include "mixerclient/attributes.h"
#include "mixerclient/messages.h"
#include "mixerclient/status.h"

namespace mixerclient {

struct AttributeRef {
  std::string name;
  bool has_map_key = false;
  std::string map_key;

  bool operator<(const AttributeRef& o) const;
  bool operator==(const AttributeRef& o) const {
    return name == o.name && has_map_key == o.has_map_key && map_key == o.map_key;
  }
};

class Referenced {
 public:
  // Decodes a response's references (words per global_word_count, as the request declared).
  // Not OK when the answer cannot be cached: a REGEX match, an unknown condition, or an
  // index that names no word; the message says which.
  static Status FromProto(const ReferencedAttributes& proto, int32_t global_word_count,
                          Referenced* out);

  // Whether `attributes` fits this shape; if so appends its signature to *signature.
  bool Signature(const Attributes& attributes, std::string* signature) const;

  // Identifies the shape: equal keys, equal shapes.
  const std::string& key() const { return key_; }
  const std::vector<AttributeRef>& absence_keys() const { return absence_; }
  const std::vector<AttributeRef>& exact_keys() const { return exact_; }
  std::string DebugString() const;

 private:
  std::vector<AttributeRef> absence_;
  std::vector<AttributeRef> exact_;
  std::string key_;
};

}  // namespace mixerclient

#endif  // MIXERCLIENT_REFERENCED_H_
