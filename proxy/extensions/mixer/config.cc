#include "proxy/extensions/mixer/config.h"

#include <cstdlib>
#include <set>

#include "mixerclient/base64.h"
#include "proxy/extensions/mixer/json.h"

namespace mixer_filter {

bool StringMatch::Matches(std::string_view text) const {
  switch (kind) {
    case Kind::kExact:
      return text == value;
    case Kind::kPrefix:
      return text.substr(0, value.size()) == value;
  }
  return false;
}

void QuotaSpec::AddRequirements(const mixerclient::Attributes& attributes,
                                std::vector<mixerclient::QuotaRequirement>* out) const {
  for (const QuotaRule& rule : rules) {
    bool applies = rule.match.empty();
    for (const auto& clauses : rule.match) {
      bool all = true;
      for (const auto& [name, match] : clauses) {
        const std::string* value = attributes.GetString(name);  // only string attributes match
        if (value == nullptr || !match.Matches(*value)) {
          all = false;
          break;
        }
      }
      if (all) {
        applies = true;
        break;
      }
    }
    if (applies) out->insert(out->end(), rule.quotas.begin(), rule.quotas.end());
  }
}

namespace {

// A JSON object read as a protobuf message: fields by proto name or lowerCamelCase;
// members nobody asked for are errors.
class Message {
 public:
  Message(const Json& json, std::string path, std::string* error)
      : json_(json), path_(std::move(path)), error_(error) {
    if (!json.is_object()) Fail(path_, std::string("expected an object, got ") + Json::TypeName(json.type()));
  }

  const Json* Get(std::string_view field) {
    if (!json_.is_object()) return nullptr;
    const std::string camel = CamelCase(field);
    for (const auto& [name, value] : json_.members()) {
      if (name == field || name == camel) {
        used_.insert(name);
        // null means "not set", as in protobuf's JSON mapping.
        return value.is_null() ? nullptr : &value;
      }
    }
    return nullptr;
  }

  std::string Path(std::string_view field) const {
    return path_.empty() ? CamelCase(field) : path_ + "." + CamelCase(field);
  }

  bool Finish() {
    if (!json_.is_object()) return false;
    for (const auto& [name, value] : json_.members()) {
      if (used_.count(name) == 0) {
        return Fail(path_.empty() ? name : path_ + "." + name, "unknown field");
      }
    }
    return error_->empty();
  }

  bool Fail(const std::string& where, const std::string& why) {
    if (error_->empty()) *error_ = (where.empty() ? std::string("config") : where) + ": " + why;
    return false;
  }

  std::string* error() const { return error_; }

  static std::string CamelCase(std::string_view snake) {
    std::string out;
    bool upper = false;
    for (char c : snake) {
      if (c == '_') {
        upper = true;
        continue;
      }
      out.push_back(upper && c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c);
      upper = false;
    }
    return out;
  }

 private:
  const Json& json_;
  std::string path_;
  std::string* error_;
  std::set<std::string> used_;
};

bool Fail(std::string* error, const std::string& where, const std::string& why) {
  if (error->empty()) *error = where + ": " + why;
  return false;
}

bool ReadBool(const Json* json, const std::string& path, bool* out, std::string* error) {
  if (json == nullptr) return true;
  if (!json->is_bool()) return Fail(error, path, std::string("expected a boolean, got ") + Json::TypeName(json->type()));
  *out = json->bool_value();
  return true;
}

bool ReadString(const Json* json, const std::string& path, std::string* out, std::string* error) {
  if (json == nullptr) return true;
  if (!json->is_string()) return Fail(error, path, std::string("expected a string, got ") + Json::TypeName(json->type()));
  *out = json->text();
  return true;
}

// An integer as protobuf's JSON mapping writes it: a number, or (64-bit) a decimal string.
bool ReadInt64(const Json* json, const std::string& path, int64_t min, int64_t max, int64_t* out,
               std::string* error) {
  if (json == nullptr) return true;
  if (!json->is_number() && !json->is_string()) {
    return Fail(error, path, std::string("expected an integer, got ") + Json::TypeName(json->type()));
  }
  const std::string& text = json->text();
  if (text.empty()) return Fail(error, path, "expected an integer");
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (end == nullptr || *end != '\0') {
    // 10.0 is an integer in JSON; 10.5 is not.
    const double d = std::strtod(text.c_str(), &end);
    if (*end != '\0' || d != static_cast<double>(static_cast<long long>(d))) {
      return Fail(error, path, "'" + text + "' is not an integer");
    }
    *out = static_cast<int64_t>(d);
  } else {
    *out = value;
  }
  if (*out < min || *out > max) return Fail(error, path, "'" + text + "' is out of range");
  return true;
}

bool ReadUint32(const Json* json, const std::string& path, uint32_t* out, std::string* error) {
  int64_t value = *out;
  if (!ReadInt64(json, path, 0, 0xffffffffLL, &value, error)) return false;
  *out = static_cast<uint32_t>(value);
  return true;
}

// google.protobuf.Duration in JSON: "1.5s", "-0.01s".
bool ParseDurationText(std::string_view text, int64_t* seconds, int32_t* nanos) {
  if (text.size() < 2 || text.back() != 's') return false;
  text.remove_suffix(1);
  bool negative = false;
  if (!text.empty() && text.front() == '-') {
    negative = true;
    text.remove_prefix(1);
  }
  const size_t dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  std::string_view fraction = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  if (whole.empty() || whole.size() > 12 || fraction.size() > 9) return false;
  int64_t s = 0;
  for (char c : whole) {
    if (c < '0' || c > '9') return false;
    s = s * 10 + (c - '0');
  }
  int32_t n = 0;
  for (size_t i = 0; i < 9; ++i) {
    char c = i < fraction.size() ? fraction[i] : '0';
    if (c < '0' || c > '9') return false;
    n = n * 10 + (c - '0');
  }
  *seconds = negative ? -s : s;
  *nanos = negative ? -n : n;
  return true;
}

bool ReadDurationMs(const Json* json, const std::string& path, int64_t* out_ms, std::string* error) {
  if (json == nullptr) return true;
  int64_t seconds = 0;
  int32_t nanos = 0;
  if (!json->is_string() || !ParseDurationText(json->text(), &seconds, &nanos)) {
    return Fail(error, path, "expected a duration such as \"1s\" or \"0.5s\"");
  }
  if (seconds < 0 || nanos < 0) return Fail(error, path, "must not be negative");
  *out_ms = seconds * 1000 + nanos / 1000000;
  return true;
}

// days since 1970-01-01 of a proleptic Gregorian date.
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// RFC 3339 in UTC, as protobuf writes timestamps: 2018-01-02T03:04:05[.nnn]Z.
bool ParseTimestampText(std::string_view t, int64_t* seconds, int32_t* nanos) {
  auto num = [&](size_t at, size_t len, int* out) {
    if (at + len > t.size()) return false;
    int v = 0;
    for (size_t i = at; i < at + len; ++i) {
      if (t[i] < '0' || t[i] > '9') return false;
      v = v * 10 + (t[i] - '0');
    }
    *out = v;
    return true;
  };
  int y, mo, d, h, mi, s;
  if (!num(0, 4, &y) || t.size() < 20 || t[4] != '-' || !num(5, 2, &mo) || t[7] != '-' ||
      !num(8, 2, &d) || t[10] != 'T' || !num(11, 2, &h) || t[13] != ':' || !num(14, 2, &mi) ||
      t[16] != ':' || !num(17, 2, &s) || t.back() != 'Z') {
    return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59) return false;
  int32_t n = 0;
  if (t[19] == '.') {
    std::string_view fraction = t.substr(20, t.size() - 21);
    if (fraction.empty() || fraction.size() > 9) return false;
    for (size_t i = 0; i < 9; ++i) {
      char c = i < fraction.size() ? fraction[i] : '0';
      if (c < '0' || c > '9') return false;
      n = n * 10 + (c - '0');
    }
  } else if (t.size() != 20) {
    return false;
  }
  *seconds = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 +
             h * 3600 + mi * 60 + s;
  *nanos = n;
  return true;
}

// istio.mixer.v1.Attributes: {"attributes": {"name": {"stringValue": "..."}, ...}}.
bool ReadAttributes(const Json* json, const std::string& path, mixerclient::Attributes* out,
                    std::string* error) {
  if (json == nullptr) return true;
  Message message(*json, path, error);
  const Json* attributes = message.Get("attributes");
  if (attributes != nullptr) {
    if (!attributes->is_object()) return Fail(error, message.Path("attributes"), "expected an object");
    for (const auto& [name, value_json] : attributes->members()) {
      const std::string where = message.Path("attributes") + "[" + name + "]";
      Message value(value_json, where, error);
      int set = 0;
      if (const Json* v = value.Get("string_value")) {
        std::string s;
        if (!ReadString(v, where, &s, error)) return false;
        out->SetString(name, s);
        ++set;
      }
      if (const Json* v = value.Get("int64_value")) {
        int64_t i = 0;
        if (!ReadInt64(v, where, INT64_MIN, INT64_MAX, &i, error)) return false;
        out->SetInt64(name, i);
        ++set;
      }
      if (const Json* v = value.Get("double_value")) {
        if (!v->is_number()) return Fail(error, where, "doubleValue must be a number");
        out->SetDouble(name, v->number_value());
        ++set;
      }
      if (const Json* v = value.Get("bool_value")) {
        bool b = false;
        if (!ReadBool(v, where, &b, error)) return false;
        out->SetBool(name, b);
        ++set;
      }
      if (const Json* v = value.Get("bytes_value")) {
        std::string encoded, decoded;
        if (!ReadString(v, where, &encoded, error)) return false;
        if (!mixerclient::Base64Decode(encoded, &decoded)) return Fail(error, where, "bytesValue is not base64");
        out->SetBytes(name, decoded);
        ++set;
      }
      if (const Json* v = value.Get("timestamp_value")) {
        mixerclient::Timestamp ts;
        if (!v->is_string() || !ParseTimestampText(v->text(), &ts.seconds, &ts.nanos)) {
          return Fail(error, where, "timestampValue must be an RFC 3339 UTC time");
        }
        out->SetTimestamp(name, ts);
        ++set;
      }
      if (const Json* v = value.Get("duration_value")) {
        mixerclient::Duration d;
        if (!v->is_string() || !ParseDurationText(v->text(), &d.seconds, &d.nanos)) {
          return Fail(error, where, "durationValue must be a duration such as \"1.5s\"");
        }
        out->SetDuration(name, d);
        ++set;
      }
      if (const Json* v = value.Get("string_map_value")) {
        Message map(*v, where + ".stringMapValue", error);
        mixerclient::StringMap entries;
        if (const Json* e = map.Get("entries")) {
          if (!e->is_object()) return Fail(error, where, "stringMapValue.entries must be an object");
          for (const auto& [key, item] : e->members()) {
            if (!item.is_string()) return Fail(error, where + "[" + key + "]", "expected a string");
            entries[key] = item.text();
          }
        }
        if (!map.Finish()) return false;
        out->SetStringMap(name, std::move(entries));
        ++set;
      }
      if (!value.Finish()) return false;
      if (set != 1) return Fail(error, where, "exactly one value must be set");
    }
  }
  return message.Finish();
}

bool ReadFailPolicy(const Json* json, const std::string& path, NetworkFailPolicy* out,
                    std::string* error) {
  if (json == nullptr) return true;
  Message message(*json, path, error);
  if (const Json* policy = message.Get("policy")) {
    const std::string& text = policy->text();
    if (policy->is_string() && text == "FAIL_OPEN") {
      out->fail_open = true;
    } else if (policy->is_string() && text == "FAIL_CLOSE") {
      out->fail_open = false;
    } else if (policy->is_number() && (text == "0" || text == "1")) {
      out->fail_open = text == "0";
    } else {
      return Fail(error, message.Path("policy"), "must be FAIL_OPEN or FAIL_CLOSE, got '" + text + "'");
    }
  }
  if (!ReadUint32(message.Get("max_retry"), message.Path("max_retry"), &out->max_retry, error) ||
      !ReadDurationMs(message.Get("base_retry_wait"), message.Path("base_retry_wait"),
                      &out->base_retry_wait_ms, error) ||
      !ReadDurationMs(message.Get("max_retry_wait"), message.Path("max_retry_wait"),
                      &out->max_retry_wait_ms, error)) {
    return false;
  }
  return message.Finish();
}

bool ReadQuotaSpec(const Json& json, const std::string& path, QuotaSpec* out, std::string* error) {
  Message message(json, path, error);
  if (const Json* rules = message.Get("rules")) {
    if (!rules->is_array()) return Fail(error, message.Path("rules"), "expected an array");
    for (size_t i = 0; i < rules->items().size(); ++i) {
      const std::string where = message.Path("rules") + "[" + std::to_string(i) + "]";
      Message rule_json(rules->items()[i], where, error);
      QuotaRule rule;
      if (const Json* matches = rule_json.Get("match")) {
        if (!matches->is_array()) return Fail(error, where + ".match", "expected an array");
        for (size_t j = 0; j < matches->items().size(); ++j) {
          const std::string mwhere = where + ".match[" + std::to_string(j) + "]";
          Message match_json(matches->items()[j], mwhere, error);
          std::map<std::string, StringMatch> clauses;
          if (const Json* clause = match_json.Get("clause")) {
            if (!clause->is_object()) return Fail(error, mwhere + ".clause", "expected an object");
            for (const auto& [name, sm_json] : clause->members()) {
              const std::string cwhere = mwhere + ".clause[" + name + "]";
              Message sm(sm_json, cwhere, error);
              StringMatch match;
              int set = 0;
              if (const Json* v = sm.Get("exact")) {
                if (!ReadString(v, cwhere + ".exact", &match.value, error)) return false;
                match.kind = StringMatch::Kind::kExact;
                ++set;
              }
              if (const Json* v = sm.Get("prefix")) {
                if (!ReadString(v, cwhere + ".prefix", &match.value, error)) return false;
                match.kind = StringMatch::Kind::kPrefix;
                ++set;
              }
              if (sm.Get("regex") != nullptr) {
                return Fail(error, cwhere + ".regex", "regex matches are not supported by this filter");
              }
              if (!sm.Finish()) return false;
              if (set != 1) return Fail(error, cwhere, "exactly one of exact and prefix must be set");
              clauses[name] = std::move(match);
            }
          }
          if (!match_json.Finish()) return false;
          rule.match.push_back(std::move(clauses));
        }
      }
      if (const Json* quotas = rule_json.Get("quotas")) {
        if (!quotas->is_array()) return Fail(error, where + ".quotas", "expected an array");
        for (size_t j = 0; j < quotas->items().size(); ++j) {
          const std::string qwhere = where + ".quotas[" + std::to_string(j) + "]";
          Message quota_json(quotas->items()[j], qwhere, error);
          mixerclient::QuotaRequirement quota;
          quota.amount = 0;
          if (!ReadString(quota_json.Get("quota"), qwhere + ".quota", &quota.name, error) ||
              !ReadInt64(quota_json.Get("charge"), qwhere + ".charge", INT32_MIN, INT32_MAX,
                         &quota.amount, error) ||
              !quota_json.Finish()) {
            return false;
          }
          if (quota.name.empty()) return Fail(error, qwhere + ".quota", "must name a quota");
          if (quota.amount <= 0) quota.amount = 1;  // Istio charges 1 when no charge is given
          rule.quotas.push_back(std::move(quota));
        }
      }
      if (!rule_json.Finish()) return false;
      out->rules.push_back(std::move(rule));
    }
  }
  return message.Finish();
}

bool ReadTransport(const Json* json, const std::string& path, TransportConfig* out,
                   std::string* error) {
  if (json == nullptr) return true;
  Message message(*json, path, error);
  int64_t stats_ms = 0;
  if (!ReadBool(message.Get("disable_check_cache"), message.Path("disable_check_cache"),
                &out->disable_check_cache, error) ||
      !ReadBool(message.Get("disable_quota_cache"), message.Path("disable_quota_cache"),
                &out->disable_quota_cache, error) ||
      !ReadBool(message.Get("disable_report_batch"), message.Path("disable_report_batch"),
                &out->disable_report_batch, error) ||
      !ReadFailPolicy(message.Get("network_fail_policy"), message.Path("network_fail_policy"),
                      &out->network_fail_policy, error) ||
      !ReadDurationMs(message.Get("stats_update_interval"), message.Path("stats_update_interval"),
                      &stats_ms, error) ||
      !ReadString(message.Get("check_cluster"), message.Path("check_cluster"), &out->check_cluster,
                  error) ||
      !ReadString(message.Get("report_cluster"), message.Path("report_cluster"),
                  &out->report_cluster, error) ||
      !ReadUint32(message.Get("report_batch_max_entries"), message.Path("report_batch_max_entries"),
                  &out->report_batch_max_entries, error) ||
      !ReadDurationMs(message.Get("report_batch_max_time"), message.Path("report_batch_max_time"),
                      &out->report_batch_max_time_ms, error)) {
    return false;
  }
  mixerclient::Attributes ignored;  // attributes_for_mixer_proxy: only for a Mixer proxy
  if (!ReadAttributes(message.Get("attributes_for_mixer_proxy"),
                      message.Path("attributes_for_mixer_proxy"), &ignored, error)) {
    return false;
  }
  return message.Finish();
}

bool ReadServiceConfig(const Json& json, const std::string& path, ServiceConfig* out,
                       std::string* error) {
  Message message(json, path, error);
  if (!ReadBool(message.Get("disable_check_calls"), message.Path("disable_check_calls"),
                &out->disable_check_calls, error) ||
      !ReadBool(message.Get("disable_report_calls"), message.Path("disable_report_calls"),
                &out->disable_report_calls, error) ||
      !ReadAttributes(message.Get("mixer_attributes"), message.Path("mixer_attributes"),
                      &out->mixer_attributes, error) ||
      !ReadAttributes(message.Get("forward_attributes"), message.Path("forward_attributes"),
                      &out->forward_attributes, error)) {
    return false;
  }
  if (const Json* specs = message.Get("quota_spec")) {
    if (!specs->is_array()) return Fail(error, message.Path("quota_spec"), "expected an array");
    for (size_t i = 0; i < specs->items().size(); ++i) {
      QuotaSpec spec;
      if (!ReadQuotaSpec(specs->items()[i], message.Path("quota_spec") + "[" + std::to_string(i) + "]",
                         &spec, error)) {
        return false;
      }
      out->quota_spec.push_back(std::move(spec));
    }
  }
  if (const Json* api = message.Get("http_api_spec")) {
    if (!api->is_array()) return Fail(error, message.Path("http_api_spec"), "expected an array");
    if (!api->items().empty()) {
      return Fail(error, message.Path("http_api_spec"), "HTTPAPISpec is not supported by this filter");
    }
  }
  if (const Json* policy = message.Get("network_fail_policy")) {
    out->has_network_fail_policy = true;
    if (!ReadFailPolicy(policy, message.Path("network_fail_policy"), &out->network_fail_policy, error)) {
      return false;
    }
  }
  return message.Finish();
}

bool ParseDocument(std::string_view text, Json* json, std::string* error) {
  std::string why;
  if (!Json::Parse(text, json, &why)) {
    *error = "config is not valid JSON: " + why;
    return false;
  }
  return true;
}

}  // namespace

bool ParseHttpClientConfig(std::string_view text, HttpClientConfig* out, std::string* error) {
  error->clear();
  Json json;
  if (!ParseDocument(text, &json, error)) return false;
  Message message(json, "", error);
  if (!ReadTransport(message.Get("transport"), "transport", &out->transport, error) ||
      !ReadString(message.Get("default_destination_service"), "defaultDestinationService",
                  &out->default_destination_service, error) ||
      !ReadAttributes(message.Get("mixer_attributes"), "mixerAttributes", &out->mixer_attributes,
                      error) ||
      !ReadAttributes(message.Get("forward_attributes"), "forwardAttributes",
                      &out->forward_attributes, error) ||
      !ReadBool(message.Get("ignore_forwarded_attributes"), "ignoreForwardedAttributes",
                &out->ignore_forwarded_attributes, error)) {
    return false;
  }
  if (const Json* services = message.Get("service_configs")) {
    if (!services->is_object()) return Fail(error, "serviceConfigs", "expected an object");
    for (const auto& [name, service] : services->members()) {
      if (!ReadServiceConfig(service, "serviceConfigs[" + name + "]", &out->service_configs[name],
                             error)) {
        return false;
      }
    }
  }
  if (!message.Finish()) return false;
  if (!out->default_destination_service.empty() &&
      out->service_configs.count(out->default_destination_service) == 0) {
    return Fail(error, "defaultDestinationService",
                "'" + out->default_destination_service + "' is not a key of serviceConfigs");
  }
  return true;
}

bool ParseTcpClientConfig(std::string_view text, TcpClientConfig* out, std::string* error) {
  error->clear();
  Json json;
  if (!ParseDocument(text, &json, error)) return false;
  Message message(json, "", error);
  if (!ReadTransport(message.Get("transport"), "transport", &out->transport, error) ||
      !ReadAttributes(message.Get("mixer_attributes"), "mixerAttributes", &out->mixer_attributes,
                      error) ||
      !ReadBool(message.Get("disable_check_calls"), "disableCheckCalls", &out->disable_check_calls,
                error) ||
      !ReadBool(message.Get("disable_report_calls"), "disableReportCalls",
                &out->disable_report_calls, error) ||
      !ReadDurationMs(message.Get("report_interval"), "reportInterval", &out->report_interval_ms,
                      error)) {
    return false;
  }
  if (const Json* spec = message.Get("connection_quota_spec")) {
    if (!ReadQuotaSpec(*spec, "connectionQuotaSpec", &out->connection_quota_spec, error)) return false;
  }
  if (!message.Finish()) return false;
  if (out->report_interval_ms < 1000) out->report_interval_ms = 1000;  // Istio's minimum
  return true;
}

}  // namespace mixer_filter
