// CheckRequest and CheckResponse (with RouteDirective) on the wire.
#include <utility>

#include "mixerclient/codec.h"
#include "mixerclient/codec_internal.h"

namespace mixerclient {

using codec::Field;
using codec::WriteMessage;

std::string EncodeCheckRequest(const CheckRequest& message) {
  std::string out;
  WireWriter w(&out);
  if (message.attributes) {
    WriteMessage(w, 1, [&](WireWriter& a) { codec::WriteCompressedAttributes(a, *message.attributes); });
  }
  if (message.global_word_count != 0) w.VarintField(2, message.global_word_count);
  if (!message.deduplication_id.empty()) w.BytesField(3, message.deduplication_id);
  codec::ForEachInWireOrder(message.quotas, [&](const std::string& name, const QuotaParams& params) {
    WriteMessage(w, 4, [&](WireWriter& entry) {
      entry.BytesField(1, name);
      WriteMessage(entry, 2, [&](WireWriter& p) {
        if (params.amount != 0) p.Int64Field(1, params.amount);
        if (params.best_effort) p.BoolField(2, true);
      });
    });
  });
  return out;
}

Status DecodeCheckRequest(std::string_view data, CheckRequest* out) {
  std::string error;
  const bool ok = codec::ParseFields(data, &error, [&](uint32_t field, WireType type, WireReader& r, std::string* e) {
    switch (field) {
      case 1:
        return codec::ReadMessage(r, type, "attributes", e, [&](std::string_view b, std::string* why) {
          if (!out->attributes) out->attributes.emplace();
          return codec::ParseCompressedAttributes(b, &*out->attributes, why);
        });
      case 2: return codec::ReadUint32(r, type, &out->global_word_count);
      case 3: return codec::ReadString(r, type, field, &out->deduplication_id, e);
      case 4:
        return codec::ReadMessage(r, type, "quotas", e, [&](std::string_view b, std::string* why) {
          std::string name;
          QuotaParams params;
          const bool entry_ok = codec::ParseFields(b, why, [&](uint32_t f, WireType t, WireReader& rr, std::string* ee) {
            if (f == 1) return codec::ReadString(rr, t, f, &name, ee);
            if (f == 2) {
              return codec::ReadMessage(rr, t, "value", ee, [&](std::string_view pb, std::string* w) {
                return codec::ParseFields(pb, w, [&](uint32_t pf, WireType pt, WireReader& r3, std::string*) {
                  if (pf == 1) return codec::ReadInt64(r3, pt, &params.amount);
                  if (pf == 2) return codec::ReadBool(r3, pt, &params.best_effort);
                  return Field::kUnknown;
                });
              });
            }
            return Field::kUnknown;
          });
          if (entry_ok) out->quotas[std::move(name)] = params;
          return entry_ok;
        });
    }
    return Field::kUnknown;
  });
  if (!ok) return Status(Code::kInvalidArgument, "CheckRequest: " + error);
  return Status::Ok();
}

namespace {

void WriteHeaderOperation(WireWriter& w, const HeaderOperation& op) {
  if (!op.name.empty()) w.BytesField(1, op.name);
  if (!op.value.empty()) w.BytesField(2, op.value);
  if (op.operation != 0) w.Int32Field(3, op.operation);
}

void WriteRouteDirective(WireWriter& w, const RouteDirective& d) {
  for (const HeaderOperation& op : d.request_header_operations) {
    WriteMessage(w, 1, [&](WireWriter& o) { WriteHeaderOperation(o, op); });
  }
  for (const HeaderOperation& op : d.response_header_operations) {
    WriteMessage(w, 2, [&](WireWriter& o) { WriteHeaderOperation(o, op); });
  }
  if (d.direct_response_code != 0) w.VarintField(3, d.direct_response_code);
  if (!d.direct_response_body.empty()) w.BytesField(4, d.direct_response_body);
}

bool ParseHeaderOperation(std::string_view data, HeaderOperation* out, std::string* error) {
  return codec::ParseFields(data, error, [&](uint32_t f, WireType t, WireReader& r, std::string* e) {
    switch (f) {
      case 1: return codec::ReadString(r, t, f, &out->name, e);
      case 2: return codec::ReadString(r, t, f, &out->value, e);
      case 3: return codec::ReadInt32(r, t, &out->operation);
    }
    return Field::kUnknown;
  });
}

bool ParseRouteDirective(std::string_view data, RouteDirective* out, std::string* error) {
  return codec::ParseFields(data, error, [&](uint32_t f, WireType t, WireReader& r, std::string* e) {
    switch (f) {
      case 1:
      case 2: {
        auto* ops = f == 1 ? &out->request_header_operations : &out->response_header_operations;
        return codec::ReadMessage(r, t, f == 1 ? "request_header_operations" : "response_header_operations", e,
                                  [&](std::string_view b, std::string* why) {
                                    HeaderOperation op;
                                    if (!ParseHeaderOperation(b, &op, why)) return false;
                                    ops->push_back(std::move(op));
                                    return true;
                                  });
      }
      case 3: return codec::ReadUint32(r, t, &out->direct_response_code);
      case 4: return codec::ReadString(r, t, f, &out->direct_response_body, e);
    }
    return Field::kUnknown;
  });
}

void WritePrecondition(WireWriter& w, const PreconditionResult& p) {
  if (p.status) WriteMessage(w, 1, [&](WireWriter& s) { codec::WriteRpcStatus(s, *p.status); });
  if (p.valid_duration) WriteMessage(w, 2, [&](WireWriter& d) { codec::WriteDuration(d, *p.valid_duration); });
  if (p.valid_use_count != 0) w.Int32Field(3, p.valid_use_count);
  if (p.referenced_attributes) {
    WriteMessage(w, 5, [&](WireWriter& r) { codec::WriteReferencedAttributes(r, *p.referenced_attributes); });
  }
  if (p.route_directive) WriteMessage(w, 6, [&](WireWriter& d) { WriteRouteDirective(d, *p.route_directive); });
}

void WriteQuotaResult(WireWriter& w, const QuotaResult& q) {
  if (q.valid_duration) WriteMessage(w, 1, [&](WireWriter& d) { codec::WriteDuration(d, *q.valid_duration); });
  if (q.granted_amount != 0) w.Int64Field(2, q.granted_amount);
  if (q.referenced_attributes) {
    WriteMessage(w, 5, [&](WireWriter& r) { codec::WriteReferencedAttributes(r, *q.referenced_attributes); });
  }
  if (q.status) WriteMessage(w, 6, [&](WireWriter& s) { codec::WriteRpcStatus(s, *q.status); });
}

// Reads an optional message field, merging into the value already there.
template <typename T, typename Parse>
Field ReadOptional(WireReader& r, WireType t, const char* name, std::string* e, std::optional<T>* field,
                   Parse&& parse) {
  return codec::ReadMessage(r, t, name, e, [&](std::string_view b, std::string* why) {
    if (!*field) field->emplace();
    return parse(b, &**field, why);
  });
}

bool ParsePrecondition(std::string_view data, PreconditionResult* out, std::string* error) {
  return codec::ParseFields(data, error, [&](uint32_t f, WireType t, WireReader& r, std::string* e) {
    switch (f) {
      case 1: return ReadOptional(r, t, "status", e, &out->status, codec::ParseRpcStatus);
      case 2: return ReadOptional(r, t, "valid_duration", e, &out->valid_duration, codec::ParseDuration);
      case 3: return codec::ReadInt32(r, t, &out->valid_use_count);
      case 5:
        return ReadOptional(r, t, "referenced_attributes", e, &out->referenced_attributes,
                            codec::ParseReferencedAttributes);
      case 6: return ReadOptional(r, t, "route_directive", e, &out->route_directive, ParseRouteDirective);
    }
    return Field::kUnknown;
  });
}

bool ParseQuotaResult(std::string_view data, QuotaResult* out, std::string* error) {
  return codec::ParseFields(data, error, [&](uint32_t f, WireType t, WireReader& r, std::string* e) {
    switch (f) {
      case 1: return ReadOptional(r, t, "valid_duration", e, &out->valid_duration, codec::ParseDuration);
      case 2: return codec::ReadInt64(r, t, &out->granted_amount);
      case 5:
        return ReadOptional(r, t, "referenced_attributes", e, &out->referenced_attributes,
                            codec::ParseReferencedAttributes);
      case 6: return ReadOptional(r, t, "status", e, &out->status, codec::ParseRpcStatus);
    }
    return Field::kUnknown;
  });
}

}  // namespace

std::string EncodeCheckResponse(const CheckResponse& message) {
  std::string out;
  WireWriter w(&out);
  if (message.precondition) {
    WriteMessage(w, 2, [&](WireWriter& p) { WritePrecondition(p, *message.precondition); });
  }
  codec::ForEachInWireOrder(message.quotas, [&](const std::string& name, const QuotaResult& result) {
    WriteMessage(w, 3, [&](WireWriter& entry) {
      entry.BytesField(1, name);
      WriteMessage(entry, 2, [&](WireWriter& q) { WriteQuotaResult(q, result); });
    });
  });
  return out;
}

Status DecodeCheckResponse(std::string_view data, CheckResponse* out) {
  std::string error;
  const bool ok = codec::ParseFields(data, &error, [&](uint32_t field, WireType type, WireReader& r, std::string* e) {
    if (field == 2) return ReadOptional(r, type, "precondition", e, &out->precondition, ParsePrecondition);
    if (field == 3) {
      return codec::ReadMessage(r, type, "quotas", e, [&](std::string_view b, std::string* why) {
        std::string name;
        QuotaResult result;
        const bool entry_ok = codec::ParseFields(b, why, [&](uint32_t f, WireType t, WireReader& rr, std::string* ee) {
          if (f == 1) return codec::ReadString(rr, t, f, &name, ee);
          if (f == 2) {
            return codec::ReadMessage(rr, t, "value", ee, [&](std::string_view qb, std::string* w) {
              return ParseQuotaResult(qb, &result, w);
            });
          }
          return Field::kUnknown;
        });
        if (entry_ok) out->quotas[std::move(name)] = std::move(result);
        return entry_ok;
      });
    }
    return Field::kUnknown;
  });
  if (!ok) return Status(Code::kInvalidArgument, "CheckResponse: " + error);
  return Status::Ok();
}

}  // namespace mixerclient
