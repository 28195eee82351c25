// A small JSON reader for the filter's configuration (the filter config Pilot writes is
// Istio's HttpClientConfig / TcpClientConfig in protobuf's JSON mapping). No exceptions:
// Parse returns false and says where and why.
#ifndef PROXY_EXTENSIONS_MIXER_JSON_H_
#define PROXY_EXTENSIONS_MIXER_JSON_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mixer_filter {

class Json {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  Json() = default;
  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  bool bool_value() const { return bool_; }
  double number_value() const { return number_; }
  // A number's source text (so int64 values beyond 2^53 keep every digit), or a string.
  const std::string& text() const { return text_; }
  const std::vector<Json>& items() const { return items_; }
  // Members in document order.
  const std::vector<std::pair<std::string, Json>>& members() const { return members_; }
  // The member, or nullptr.
  const Json* Find(std::string_view key) const;

  static const char* TypeName(Type type);

  // Parses a whole document. On failure *error says what and at which byte.
  static bool Parse(std::string_view text, Json* out, std::string* error);

 private:
  friend class JsonParser;
  Type type_ = Type::kNull;
  bool bool_ = false;
  double number_ = 0;
  std::string text_;
  std::vector<Json> items_;
  std::vector<std::pair<std::string, Json>> members_;
};

}  // namespace mixer_filter

#endif  // PROXY_EXTENSIONS_MIXER_JSON_H_
