// Codecs of the pieces every Mixer message shares: Timestamp, Duration, google.rpc.Status,
// CompressedAttributes, ReferencedAttributes, and the uncompressed Attributes message.
#include <utility>

#include "mixerclient/codec.h"
#include "mixerclient/codec_internal.h"

namespace mixerclient {
namespace codec {

bool StringKeyBefore(std::string_view a, std::string_view b) {
  const int c = std::memcmp(a.data(), b.data(), std::min(a.size(), b.size()));
  if (c != 0) return c < 0;
  return a.size() > b.size();
}

Field ReadString(WireReader& r, WireType type, uint32_t field, std::string* out,
                 std::string* error) {
  const Field f = ReadBytes(r, type, out);
  if (f == Field::kRead && !IsValidUtf8(*out)) {
    *error = "field " + std::to_string(field) + ": string is not valid UTF-8 (before byte " +
             std::to_string(r.offset()) + ")";
    return Field::kError;
  }
  return f;
}

void WriteDuration(WireWriter& w, const Duration& d) {
  if (d.seconds != 0) w.Int64Field(1, d.seconds);
  if (d.nanos != 0) w.Int32Field(2, d.nanos);
}

void WriteTimestamp(WireWriter& w, const Timestamp& t) {
  if (t.seconds != 0) w.Int64Field(1, t.seconds);
  if (t.nanos != 0) w.Int32Field(2, t.nanos);
}

bool ParseDuration(std::string_view data, Duration* out, std::string* error) {
  return ParseFields(data, error, [&](uint32_t field, WireType type, WireReader& r, std::string*) {
    if (field == 1) return ReadInt64(r, type, &out->seconds);
    if (field == 2) return ReadInt32(r, type, &out->nanos);
    return Field::kUnknown;
  });
}

bool ParseTimestamp(std::string_view data, Timestamp* out, std::string* error) {
  return ParseFields(data, error, [&](uint32_t field, WireType type, WireReader& r, std::string*) {
    if (field == 1) return ReadInt64(r, type, &out->seconds);
    if (field == 2) return ReadInt32(r, type, &out->nanos);
    return Field::kUnknown;
  });
}

void WriteRpcStatus(WireWriter& w, const RpcStatus& s) {
  if (s.code != 0) w.Int32Field(1, s.code);
  if (!s.message.empty()) w.BytesField(2, s.message);
  for (const AnyMessage& any : s.details) {
    WriteMessage(w, 3, [&](WireWriter& inner) {
      if (!any.type_url.empty()) inner.BytesField(1, any.type_url);
      if (!any.value.empty()) inner.BytesField(2, any.value);
    });
  }
}

bool ParseRpcStatus(std::string_view data, RpcStatus* out, std::string* error) {
  return ParseFields(data, error, [&](uint32_t field, WireType type, WireReader& r, std::string* e) {
    switch (field) {
      case 1: return ReadInt32(r, type, &out->code);
      case 2: return ReadString(r, type, field, &out->message, e);
      case 3:
        return ReadMessage(r, type, "details", e, [&](std::string_view bytes, std::string* why) {
          AnyMessage any;
          const bool ok = ParseFields(bytes, why, [&](uint32_t f, WireType t, WireReader& rr, std::string* ee) {
            if (f == 1) return ReadString(rr, t, f, &any.type_url, ee);
            if (f == 2) return ReadBytes(rr, t, &any.value);
            return Field::kUnknown;
          });
          if (ok) out->details.push_back(std::move(any));
          return ok;
        });
    }
    return Field::kUnknown;
  });
}

namespace {

// Map entries: key (field 1) then value (field 2), both always written.
template <typename V, typename WriteValue>
void WriteSint32Map(WireWriter& w, uint32_t field, const std::map<int32_t, V>& map,
                    WriteValue&& write_value) {
  ForEachInWireOrder(map, [&](int32_t key, const V& value) {
    WriteMessage(w, field, [&](WireWriter& entry) {
      entry.Sint32Field(1, key);
      write_value(entry, value);
    });
  });
}

// Reads one map entry into (*map)[key]; read_value(reader, type, value*, error) -> Field.
template <typename V, typename ReadValue>
Field ReadSint32MapEntry(WireReader& r, WireType type, const char* name, std::string* error,
                         std::map<int32_t, V>* map, ReadValue&& read_value) {
  return ReadMessage(r, type, name, error, [&](std::string_view bytes, std::string* why) {
    int32_t key = 0;
    V value{};
    const bool ok = ParseFields(bytes, why, [&](uint32_t f, WireType t, WireReader& rr, std::string* e) {
      if (f == 1) return ReadSint32(rr, t, &key);
      if (f == 2) return read_value(rr, t, &value, e);
      return Field::kUnknown;
    });
    if (ok) (*map)[key] = std::move(value);
    return ok;
  });
}

template <typename T, typename Write>
void WriteMessageValue(WireWriter& w, const T& value, Write&& write) {
  WriteMessage(w, 2, [&](WireWriter& inner) { write(inner, value); });
}

}  // namespace

void WriteCompressedAttributes(WireWriter& w, const CompressedAttributes& a) {
  for (const std::string& word : a.words) w.BytesField(1, word);
  WriteSint32Map(w, 2, a.strings, [](WireWriter& e, int32_t v) { e.Sint32Field(2, v); });
  WriteSint32Map(w, 3, a.int64s, [](WireWriter& e, int64_t v) { e.Int64Field(2, v); });
  WriteSint32Map(w, 4, a.doubles, [](WireWriter& e, double v) { e.DoubleField(2, v); });
  WriteSint32Map(w, 5, a.bools, [](WireWriter& e, bool v) { e.BoolField(2, v); });
  WriteSint32Map(w, 6, a.timestamps, [](WireWriter& e, const Timestamp& v) {
    WriteMessageValue(e, v, WriteTimestamp);
  });
  WriteSint32Map(w, 7, a.durations, [](WireWriter& e, const Duration& v) {
    WriteMessageValue(e, v, WriteDuration);
  });
  WriteSint32Map(w, 8, a.bytes, [](WireWriter& e, const std::string& v) { e.BytesField(2, v); });
  WriteSint32Map(w, 9, a.string_maps, [](WireWriter& e, const CompressedStringMap& v) {
    WriteMessage(e, 2, [&](WireWriter& inner) {
      WriteSint32Map(inner, 1, v.entries, [](WireWriter& x, int32_t i) { x.Sint32Field(2, i); });
    });
  });
}

bool ParseCompressedAttributes(std::string_view data, CompressedAttributes* out,
                               std::string* error) {
  return ParseFields(data, error, [&](uint32_t field, WireType type, WireReader& r, std::string* e) {
    switch (field) {
      case 1: {
        std::string word;
        const Field f = ReadString(r, type, field, &word, e);
        if (f == Field::kRead) out->words.push_back(std::move(word));
        return f;
      }
      case 2:
        return ReadSint32MapEntry(r, type, "strings", e, &out->strings,
                                  [](WireReader& rr, WireType t, int32_t* v, std::string*) {
                                    return ReadSint32(rr, t, v);
                                  });
      case 3:
        return ReadSint32MapEntry(r, type, "int64s", e, &out->int64s,
                                  [](WireReader& rr, WireType t, int64_t* v, std::string*) {
                                    return ReadInt64(rr, t, v);
                                  });
      case 4:
        return ReadSint32MapEntry(r, type, "doubles", e, &out->doubles,
                                  [](WireReader& rr, WireType t, double* v, std::string*) {
                                    return ReadDouble(rr, t, v);
                                  });
      case 5:
        return ReadSint32MapEntry(r, type, "bools", e, &out->bools,
                                  [](WireReader& rr, WireType t, bool* v, std::string*) {
                                    return ReadBool(rr, t, v);
                                  });
      case 6:
        return ReadSint32MapEntry(
            r, type, "timestamps", e, &out->timestamps,
            [](WireReader& rr, WireType t, Timestamp* v, std::string* ee) {
              return ReadMessage(rr, t, "value", ee, [&](std::string_view b, std::string* why) {
                return ParseTimestamp(b, v, why);
              });
            });
      case 7:
        return ReadSint32MapEntry(
            r, type, "durations", e, &out->durations,
            [](WireReader& rr, WireType t, Duration* v, std::string* ee) {
              return ReadMessage(rr, t, "value", ee, [&](std::string_view b, std::string* why) {
                return ParseDuration(b, v, why);
              });
            });
      case 8:
        return ReadSint32MapEntry(r, type, "bytes", e, &out->bytes,
                                  [](WireReader& rr, WireType t, std::string* v, std::string*) {
                                    return ReadBytes(rr, t, v);
                                  });
      case 9:
        return ReadSint32MapEntry(
            r, type, "string_maps", e, &out->string_maps,
            [](WireReader& rr, WireType t, CompressedStringMap* v, std::string* ee) {
              return ReadMessage(rr, t, "value", ee, [&](std::string_view b, std::string* why) {
                return ParseFields(b, why, [&](uint32_t f, WireType tt, WireReader& r3, std::string* e3) {
                  if (f != 1) return Field::kUnknown;
                  return ReadSint32MapEntry(r3, tt, "entries", e3, &v->entries,
                                            [](WireReader& r4, WireType t4, int32_t* x, std::string*) {
                                              return ReadSint32(r4, t4, x);
                                            });
                });
              });
            });
    }
    return Field::kUnknown;
  });
}

void WriteReferencedAttributes(WireWriter& w, const ReferencedAttributes& r) {
  for (const std::string& word : r.words) w.BytesField(1, word);
  for (const AttributeMatch& m : r.attribute_matches) {
    WriteMessage(w, 2, [&](WireWriter& inner) {
      if (m.name != 0) inner.Sint32Field(1, m.name);
      if (m.condition != 0) inner.Int32Field(2, m.condition);
      if (!m.regex.empty()) inner.BytesField(3, m.regex);
      if (m.map_key != 0) inner.Sint32Field(4, m.map_key);
    });
  }
}

bool ParseReferencedAttributes(std::string_view data, ReferencedAttributes* out,
                               std::string* error) {
  return ParseFields(data, error, [&](uint32_t field, WireType type, WireReader& r, std::string* e) {
    if (field == 1) {
      std::string word;
      const Field f = ReadString(r, type, field, &word, e);
      if (f == Field::kRead) out->words.push_back(std::move(word));
      return f;
    }
    if (field == 2) {
      const std::string name = "attribute_matches[" + std::to_string(out->attribute_matches.size()) + "]";
      return ReadMessage(r, type, name.c_str(), e, [&](std::string_view bytes, std::string* why) {
        AttributeMatch m;
        const bool ok = ParseFields(bytes, why, [&](uint32_t f, WireType t, WireReader& rr, std::string* ee) {
          switch (f) {
            case 1: return ReadSint32(rr, t, &m.name);
            case 2: return ReadInt32(rr, t, &m.condition);
            case 3: return ReadString(rr, t, f, &m.regex, ee);
            case 4: return ReadSint32(rr, t, &m.map_key);
          }
          return Field::kUnknown;
        });
        if (ok) out->attribute_matches.push_back(std::move(m));
        return ok;
      });
    }
    return Field::kUnknown;
  });
}

}  // namespace codec

std::string EncodeCompressedAttributes(const CompressedAttributes& message) {
  std::string out;
  WireWriter w(&out);
  codec::WriteCompressedAttributes(w, message);
  return out;
}

Status DecodeCompressedAttributes(std::string_view data, CompressedAttributes* out) {
  std::string error;
  if (!codec::ParseCompressedAttributes(data, out, &error)) {
    return Status(Code::kInvalidArgument, "CompressedAttributes: " + error);
  }
  return Status::Ok();
}

// istio.mixer.v1.Attributes { map<string, AttributeValue> attributes = 1; }, the value a
// oneof: string 2, int64 3, double 4, bool 5, bytes 6, Timestamp 7, Duration 8, StringMap 9
// (StringMap { map<string, string> entries = 1; }). A oneof member is written even when it
// holds its type's default, since being set is what it says.
std::string EncodeAttributesMessage(const Attributes& attributes) {
  std::string out;
  WireWriter w(&out);
  using codec::WriteMessage;
  codec::ForEachInWireOrder(attributes.values(), [&](std::string_view name, const Value& value) {
    WriteMessage(w, 1, [&](WireWriter& entry) {
      entry.BytesField(1, name);
      WriteMessage(entry, 2, [&](WireWriter& v) {
        switch (KindOf(value)) {
          case ValueKind::kString: v.BytesField(2, *std::get_if<std::string>(&value)); break;
          case ValueKind::kInt64: v.Int64Field(3, *std::get_if<int64_t>(&value)); break;
          case ValueKind::kDouble: v.DoubleField(4, *std::get_if<double>(&value)); break;
          case ValueKind::kBool: v.BoolField(5, *std::get_if<bool>(&value)); break;
          case ValueKind::kBytes: v.BytesField(6, std::get_if<Bytes>(&value)->data); break;
          case ValueKind::kTimestamp:
            WriteMessage(v, 7, [&](WireWriter& t) { codec::WriteTimestamp(t, *std::get_if<Timestamp>(&value)); });
            break;
          case ValueKind::kDuration:
            WriteMessage(v, 8, [&](WireWriter& d) { codec::WriteDuration(d, *std::get_if<Duration>(&value)); });
            break;
          case ValueKind::kStringMap:
            WriteMessage(v, 9, [&](WireWriter& m) {
              codec::ForEachInWireOrder(*std::get_if<StringMap>(&value), [&](const std::string& k, const std::string& s) {
                WriteMessage(m, 1, [&](WireWriter& e) {
                  e.BytesField(1, k);
                  e.BytesField(2, s);
                });
              });
            });
            break;
        }
      });
    });
  });
  return out;
}

namespace {

using codec::Field;

bool ParseStringMapMessage(std::string_view data, StringMap* out, std::string* error) {
  return codec::ParseFields(data, error, [&](uint32_t field, WireType type, WireReader& r, std::string* e) {
    if (field != 1) return Field::kUnknown;
    return codec::ReadMessage(r, type, "entries", e, [&](std::string_view bytes, std::string* why) {
      std::string key, value;
      const bool ok = codec::ParseFields(bytes, why, [&](uint32_t f, WireType t, WireReader& rr, std::string* ee) {
        if (f == 1) return codec::ReadString(rr, t, f, &key, ee);
        if (f == 2) return codec::ReadString(rr, t, f, &value, ee);
        return Field::kUnknown;
      });
      if (ok) (*out)[std::move(key)] = std::move(value);
      return ok;
    });
  });
}

// One AttributeValue; *has_value says whether any member of the oneof was present.
bool ParseAttributeValue(std::string_view data, Value* out, bool* has_value, std::string* error) {
  return codec::ParseFields(data, error, [&](uint32_t field, WireType type, WireReader& r, std::string* e) {
    Field f = Field::kUnknown;
    switch (field) {
      case 2: {
        std::string s;
        f = codec::ReadString(r, type, field, &s, e);
        if (f == Field::kRead) *out = std::move(s);
        break;
      }
      case 3: {
        int64_t v;
        f = codec::ReadInt64(r, type, &v);
        if (f == Field::kRead) *out = v;
        break;
      }
      case 4: {
        double v;
        f = codec::ReadDouble(r, type, &v);
        if (f == Field::kRead) *out = v;
        break;
      }
      case 5: {
        bool v;
        f = codec::ReadBool(r, type, &v);
        if (f == Field::kRead) *out = v;
        break;
      }
      case 6: {
        Bytes v;
        f = codec::ReadBytes(r, type, &v.data);
        if (f == Field::kRead) *out = std::move(v);
        break;
      }
      case 7: {
        // A oneof message member merges into the member already set, if it is the same one.
        Timestamp t = std::holds_alternative<Timestamp>(*out) && *has_value ? *std::get_if<Timestamp>(out) : Timestamp{};
        f = codec::ReadMessage(r, type, "timestamp_value", e, [&](std::string_view b, std::string* why) {
          return codec::ParseTimestamp(b, &t, why);
        });
        if (f == Field::kRead) *out = t;
        break;
      }
      case 8: {
        Duration d = std::holds_alternative<Duration>(*out) && *has_value ? *std::get_if<Duration>(out) : Duration{};
        f = codec::ReadMessage(r, type, "duration_value", e, [&](std::string_view b, std::string* why) {
          return codec::ParseDuration(b, &d, why);
        });
        if (f == Field::kRead) *out = d;
        break;
      }
      case 9: {
        StringMap m = std::holds_alternative<StringMap>(*out) && *has_value ? *std::get_if<StringMap>(out) : StringMap{};
        f = codec::ReadMessage(r, type, "string_map_value", e, [&](std::string_view b, std::string* why) {
          return ParseStringMapMessage(b, &m, why);
        });
        if (f == Field::kRead) *out = std::move(m);
        break;
      }
    }
    if (f == Field::kRead) *has_value = true;
    return f;
  });
}

}  // namespace

Status DecodeAttributesMessage(std::string_view data, Attributes* out) {
  std::string error;
  const bool ok = codec::ParseFields(data, &error, [&](uint32_t field, WireType type, WireReader& r, std::string* e) {
    if (field != 1) return Field::kUnknown;
    return codec::ReadMessage(r, type, "attributes", e, [&](std::string_view bytes, std::string* why) {
      std::string name;
      Value value;
      bool has_value = false;
      const bool entry_ok = codec::ParseFields(bytes, why, [&](uint32_t f, WireType t, WireReader& rr, std::string* ee) {
        if (f == 1) return codec::ReadString(rr, t, f, &name, ee);
        if (f == 2) {
          return codec::ReadMessage(rr, t, "value", ee, [&](std::string_view b, std::string* w) {
            return ParseAttributeValue(b, &value, &has_value, w);
          });
        }
        return Field::kUnknown;
      });
      if (!entry_ok) return false;
      if (!has_value) {
        *why = "attribute \"" + name + "\" has no value";
        return false;
      }
      out->Set(name, std::move(value));
      return true;
    });
  });
  if (!ok) return Status(Code::kInvalidArgument, "Attributes: " + error);
  return Status::Ok();
}

}  // namespace mixerclient
