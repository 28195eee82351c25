#include "mixerclient/compressor.h"

#include <set>
#include <utility>

namespace mixerclient {

void CompressAttribute(std::string_view name, const Value& value, MessageDictionary* dict,
                       CompressedAttributes* out) {
  const int32_t index = dict->Index(name);
  switch (KindOf(value)) {
    case ValueKind::kString:
      out->strings[index] = dict->Index(*std::get_if<std::string>(&value));
      break;
    case ValueKind::kInt64: out->int64s[index] = *std::get_if<int64_t>(&value); break;
    case ValueKind::kDouble: out->doubles[index] = *std::get_if<double>(&value); break;
    case ValueKind::kBool: out->bools[index] = *std::get_if<bool>(&value); break;
    case ValueKind::kBytes: out->bytes[index] = std::get_if<Bytes>(&value)->data; break;
    case ValueKind::kTimestamp: out->timestamps[index] = *std::get_if<Timestamp>(&value); break;
    case ValueKind::kDuration: out->durations[index] = *std::get_if<Duration>(&value); break;
    case ValueKind::kStringMap: {
      CompressedStringMap& map = out->string_maps[index];
      for (const auto& [key, entry] : *std::get_if<StringMap>(&value)) {
        const int32_t k = dict->Index(key);  // key first: the words list reads key, value
        map.entries[k] = dict->Index(entry);
      }
      break;
    }
  }
}

CompressedAttributes Compress(const Attributes& attributes, int32_t global_word_count) {
  MessageDictionary dict(global_word_count);
  CompressedAttributes out;
  for (const auto& [name, value] : attributes.values()) CompressAttribute(name, value, &dict, &out);
  out.words = dict.TakeWords();
  return out;
}

namespace {

class Decoder {
 public:
  Decoder(const std::vector<std::string>& words, int32_t count, Attributes* out)
      : words_(words), count_(count), out_(out) {}

  bool Word(int32_t index, const char* field, const char* what, std::string_view* word) {
    if (LookupWord(index, words_, count_, word)) return true;
    error_ = std::string(field) + ": " + what + ": " + DescribeBadIndex(index, words_.size(), count_);
    return false;
  }

  bool Name(int32_t index, const char* field, std::string_view* name) {
    if (!Word(index, field, "attribute name", name)) return false;
    if (out_->Has(*name) || seen_.count(std::string(*name)) > 0) {
      error_ = "attribute \"" + std::string(*name) + "\" appears twice (again in " + field + ")";
      return false;
    }
    seen_.insert(std::string(*name));
    return true;
  }

  template <typename T>
  bool Plain(const std::map<int32_t, T>& map, const char* field) {
    for (const auto& [index, value] : map) {
      std::string_view name;
      if (!Name(index, field, &name)) return false;
      pending_.emplace_back(std::string(name), Value(value));
    }
    return true;
  }

  bool Run(const CompressedAttributes& m) {
    for (const auto& [ni, vi] : m.strings) {
      std::string_view name, value;
      if (!Name(ni, "strings", &name) || !Word(vi, "strings", "value", &value)) return false;
      pending_.emplace_back(std::string(name), Value(std::string(value)));
    }
    if (!Plain(m.int64s, "int64s") || !Plain(m.doubles, "doubles") || !Plain(m.bools, "bools") ||
        !Plain(m.timestamps, "timestamps") || !Plain(m.durations, "durations")) {
      return false;
    }
    for (const auto& [ni, data] : m.bytes) {
      std::string_view name;
      if (!Name(ni, "bytes", &name)) return false;
      pending_.emplace_back(std::string(name), Value(Bytes{data}));
    }
    for (const auto& [ni, map] : m.string_maps) {
      std::string_view name;
      if (!Name(ni, "string_maps", &name)) return false;
      StringMap entries;
      for (const auto& [ki, vi] : map.entries) {
        std::string_view key, value;
        if (!Word(ki, "string_maps", "entry key", &key) || !Word(vi, "string_maps", "entry value", &value)) {
          return false;
        }
        if (!entries.emplace(std::string(key), std::string(value)).second) {
          error_ = "string_maps[" + std::string(name) + "]: key \"" + std::string(key) + "\" appears twice";
          return false;
        }
      }
      pending_.emplace_back(std::string(name), Value(std::move(entries)));
    }
    for (auto& [name, value] : pending_) out_->Set(name, std::move(value));
    return true;
  }

  const std::string& error() const { return error_; }

 private:
  const std::vector<std::string>& words_;
  int32_t count_;
  Attributes* out_;
  std::set<std::string> seen_;
  std::vector<std::pair<std::string, Value>> pending_;
  std::string error_;
};

}  // namespace

Status Decompress(const CompressedAttributes& message, const std::vector<std::string>& message_words,
                  int32_t global_word_count, Attributes* out) {
  Attributes decoded;
  Decoder decoder(message_words, global_word_count, &decoded);
  if (!decoder.Run(message)) return Status(Code::kInvalidArgument, decoder.error());
  out->Merge(decoded);
  return Status::Ok();
}

}  // namespace mixerclient
