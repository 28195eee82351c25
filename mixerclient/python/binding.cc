// _mixerclient: the Python binding of the C++ core (nanobind).
//
// This file is compiled with exceptions and RTTI (nanobind needs both); the core is not.
// Two rules keep that sound: nothing here subclasses a core interface (the transport is a
// FunctionTransport of lambdas, the clocks are the core's own classes), and every call from
// the core back into Python (transport, completion callbacks) catches every exception before
// it could unwind through the core's frames.
#include <nanobind/nanobind.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "mixerclient/client.h"
#include "mixerclient/codec.h"
#include "mixerclient/compressor.h"
#include "mixerclient/global_dictionary.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace mixerclient {
namespace {

// --- Python values <-> attribute values -------------------------------------------------

struct PyTypes {
  nb::object datetime, timedelta, epoch, utc, ip_base;
};

const PyTypes& Types() {
  static PyTypes* types = [] {
    auto* t = new PyTypes();  // lives as long as the interpreter; never freed at exit
    nb::module_ dt = nb::module_::import_("datetime");
    t->datetime = dt.attr("datetime");
    t->timedelta = dt.attr("timedelta");
    t->utc = dt.attr("timezone").attr("utc");
    t->epoch = t->datetime(1970, 1, 1, "tzinfo"_a = t->utc);
    t->ip_base = nb::module_::import_("ipaddress").attr("_BaseAddress");
    return t;
  }();
  return *types;
}

std::string Utf8(nb::handle str, const std::string& where) {
  Py_ssize_t size;
  const char* data = PyUnicode_AsUTF8AndSize(str.ptr(), &size);
  if (data == nullptr) {
    PyErr_Clear();
    throw nb::value_error((where + ": a string that is not valid Unicode (lone surrogate?)").c_str());
  }
  return std::string(data, static_cast<size_t>(size));
}

// Microseconds of a timedelta, exactly.
int64_t TotalMicros(nb::handle delta) {
  const int64_t days = nb::cast<int64_t>(delta.attr("days"));
  const int64_t seconds = nb::cast<int64_t>(delta.attr("seconds"));
  const int64_t micros = nb::cast<int64_t>(delta.attr("microseconds"));
  return (days * 86400 + seconds) * 1000000 + micros;
}

Value ToValue(nb::handle obj, const std::string& name) {
  PyObject* p = obj.ptr();
  if (PyBool_Check(p)) return Value(p == Py_True);
  if (PyLong_Check(p)) {
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(p, &overflow);
    if (overflow != 0) throw nb::value_error(("attribute '" + name + "': does not fit in an int64").c_str());
    return Value(static_cast<int64_t>(v));
  }
  if (PyFloat_Check(p)) return Value(PyFloat_AsDouble(p));
  if (PyUnicode_Check(p)) return Value(Utf8(obj, "attribute '" + name + "'"));
  if (PyBytes_Check(p)) return Value(Bytes{std::string(PyBytes_AsString(p), static_cast<size_t>(PyBytes_Size(p)))});
  if (PyByteArray_Check(p)) {
    return Value(Bytes{std::string(PyByteArray_AsString(p), static_cast<size_t>(PyByteArray_Size(p)))});
  }
  const PyTypes& t = Types();
  if (nb::isinstance(obj, t.datetime)) {
    if (obj.attr("utcoffset")().is_none()) {
      throw nb::value_error(("attribute '" + name + "': a timestamp needs a timezone").c_str());
    }
    const int64_t micros = TotalMicros(obj - t.epoch);
    const int64_t seconds = micros >= 0 ? micros / 1000000 : -((-micros + 999999) / 1000000);
    return Value(Timestamp{seconds, static_cast<int32_t>((micros - seconds * 1000000) * 1000)});
  }
  if (nb::isinstance(obj, t.timedelta)) {
    const int64_t micros = TotalMicros(obj);
    return Value(Duration{micros / 1000000, static_cast<int32_t>((micros % 1000000) * 1000)});  // same signs
  }
  if (nb::isinstance(obj, t.ip_base)) {
    nb::bytes packed = nb::borrow<nb::bytes>(obj.attr("packed"));
    return Value(Bytes{std::string(packed.c_str(), packed.size())});
  }
  if (PyDict_Check(p) || nb::hasattr(obj, "items")) {
    StringMap map;
    const auto add = [&](nb::handle k, nb::handle v) {
      if (!PyUnicode_Check(k.ptr()) || !PyUnicode_Check(v.ptr())) {
        throw nb::type_error(("attribute '" + name + "': a string map needs str keys and values").c_str());
      }
      map.emplace(Utf8(k, "attribute '" + name + "' key"), Utf8(v, "attribute '" + name + "' value"));
    };
    if (PyDict_Check(p)) {
      PyObject *k, *v;
      Py_ssize_t pos = 0;
      while (PyDict_Next(p, &pos, &k, &v)) add(k, v);
    } else {
      for (nb::handle item : obj.attr("items")()) add(item[0], item[1]);
    }
    return Value(std::move(map));
  }
  throw nb::type_error(("attribute '" + name + "': unsupported value type " +
                        nb::cast<std::string>(nb::str(obj.type().attr("__name__"))))
                           .c_str());
}

Attributes ToAttributes(nb::handle mapping) {
  Attributes out;
  if (!PyDict_Check(mapping.ptr()) && !nb::hasattr(mapping, "items")) {
    throw nb::type_error("attributes must be a mapping of name -> value");
  }
  const auto add = [&](nb::handle k, nb::handle v) {
    if (!PyUnicode_Check(k.ptr())) throw nb::type_error("attribute names must be str");
    std::string name = Utf8(k, "attribute name");
    Value value = ToValue(v, name);
    out.Set(name, std::move(value));
  };
  if (PyDict_Check(mapping.ptr())) {
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(mapping.ptr(), &pos, &k, &v)) add(k, v);
  } else {
    for (nb::handle item : mapping.attr("items")()) add(item[0], item[1]);
  }
  return out;
}

nb::object Text(std::string_view s) {
  return nb::steal(PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace"));
}

nb::object FromValue(const Value& value) {
  const PyTypes& t = Types();
  switch (KindOf(value)) {
    case ValueKind::kString: return Text(*std::get_if<std::string>(&value));
    case ValueKind::kInt64: return nb::int_(*std::get_if<int64_t>(&value));
    case ValueKind::kDouble: return nb::float_(*std::get_if<double>(&value));
    case ValueKind::kBool: return nb::bool_(*std::get_if<bool>(&value));
    case ValueKind::kBytes: {
      const std::string& d = std::get_if<Bytes>(&value)->data;
      return nb::bytes(d.data(), d.size());
    }
    case ValueKind::kTimestamp: {
      const Timestamp& ts = *std::get_if<Timestamp>(&value);
      return t.epoch + t.timedelta("seconds"_a = ts.seconds, "microseconds"_a = ts.nanos / 1000);
    }
    case ValueKind::kDuration: {
      const Duration& d = *std::get_if<Duration>(&value);
      return t.timedelta("seconds"_a = d.seconds, "microseconds"_a = d.nanos / 1000);  // truncates to zero
    }
    case ValueKind::kStringMap: {
      nb::dict out;
      for (const auto& [k, v] : *std::get_if<StringMap>(&value)) out[Text(k)] = Text(v);
      return std::move(out);
    }
  }
  return nb::none();
}

nb::dict FromAttributes(const Attributes& attributes) {
  nb::dict out;
  for (const auto& [name, value] : attributes.values()) out[Text(name)] = FromValue(value);
  return out;
}

nb::bytes AsBytes(const std::string& s) { return nb::bytes(s.data(), s.size()); }

std::string_view ViewOf(const nb::bytes& b) { return std::string_view(b.c_str(), b.size()); }

template <typename T, Status (*Decode)(std::string_view, T*)>
T DecodeOrRaise(const nb::bytes& data) {
  T out;
  const Status s = Decode(ViewOf(data), &out);
  if (!s.ok()) throw nb::value_error(s.message().c_str());
  return out;
}

// --- The client -----------------------------------------------------------------------------

// The completion a Python transport calls once: completion(code, message, response).
class Completion {
 public:
  explicit Completion(TransportDone done) : done_(std::move(done)) {}
  void Call(int32_t code, const std::string& message, const nb::bytes& response) {
    if (!done_) throw std::runtime_error("this Mixer call was completed already");
    TransportDone done = std::move(*done_);
    done_.reset();
    done(Status(static_cast<Code>(code), message), ViewOf(response));
  }
  bool pending() const { return done_.has_value(); }

 private:
  std::optional<TransportDone> done_;
};

class PyFakeTime {
 public:
  explicit PyFakeTime(int64_t start_nanos) : time_(start_nanos) {}
  FakeTimeSource* source() { return &time_; }
  FakeTimeSource time_;
};

void Unraisable(nb::python_error& e, const char* where) { e.discard_as_unraisable(where); }

class PyClient {
 public:
  PyClient(const ClientOptions& options, nb::object check, nb::object report, PyFakeTime* fake_time)
      : check_(std::move(check)),
        report_(std::move(report)),
        transport_([this](std::string r, TransportDone d) { Call(check_, std::move(r), std::move(d)); },
                   [this](std::string r, TransportDone d) { Call(report_, std::move(r), std::move(d)); }),
        client_(options, &transport_, fake_time != nullptr ? static_cast<const TimeSource*>(fake_time->source()) : &steady_) {}

  void Check(nb::handle attributes, const std::vector<std::pair<std::string, int64_t>>& quotas, nb::object done) {
    Attributes attrs = ToAttributes(attributes);
    std::vector<QuotaRequirement> requirements;
    for (const auto& [name, amount] : quotas) requirements.push_back(QuotaRequirement{name, amount});
    client_.Check(attrs, requirements, [done](const CheckResult& result) {
      nb::gil_scoped_acquire gil;
      try {
        done(result);
      } catch (nb::python_error& e) {
        Unraisable(e, "mixerclient check callback");
      } catch (...) {
      }
    });
  }

  void Report(nb::handle attributes) { client_.Report(ToAttributes(attributes)); }
  void Flush() { client_.Flush(); }
  int64_t Tick() { return client_.Tick(); }

  nb::dict Stats() const {
    const ClientStats s = client_.stats();
    nb::dict d;
    d["total_check_calls"] = s.total_check_calls;
    d["total_check_cache_hits"] = s.total_check_cache_hits;
    d["total_check_cache_misses"] = s.total_check_cache_misses;
    d["total_quota_calls"] = s.total_quota_calls;
    d["total_quota_cache_hits"] = s.total_quota_cache_hits;
    d["total_remote_check_calls"] = s.total_remote_check_calls;
    d["total_remote_quota_prefetches"] = s.total_remote_quota_prefetches;
    d["total_remote_check_refreshes"] = s.total_remote_check_refreshes;
    d["check_transport_errors"] = s.check_transport_errors;
    d["total_report_calls"] = s.total_report_calls;
    d["total_remote_report_calls"] = s.total_remote_report_calls;
    d["report_batches_failed"] = s.report_batches_failed;
    d["report_entries_failed"] = s.report_entries_failed;
    d["report_batches_dropped"] = s.report_batches_dropped;
    d["report_entries_dropped"] = s.report_entries_dropped;
    d["check_uncacheable"] = s.check_uncacheable;
    d["check_cache_size"] = s.check_cache_size;
    d["quota_cache_size"] = s.quota_cache_size;
    d["global_word_count"] = s.global_word_count;
    d["report_batches_in_flight"] = s.report_batches_in_flight;
    return d;
  }

 private:
  // Hands a request to a Python transport. If the transport raises, the call fails with
  // UNAVAILABLE (as a transport failure would) and the error is reported as unraisable.
  void Call(const nb::object& transport, std::string request, TransportDone done) {
    nb::gil_scoped_acquire gil;
    auto* completion = new Completion(std::move(done));
    nb::object handle = nb::cast(completion, nb::rv_policy::take_ownership);
    try {
      transport(AsBytes(request), handle);
    } catch (nb::python_error& e) {
      const std::string what = e.what();
      Unraisable(e, "mixerclient transport");
      if (completion->pending()) {
        try {
          completion->Call(static_cast<int32_t>(Code::kUnavailable), "transport raised: " + what, nb::bytes("", 0));
        } catch (...) {
        }
      }
    } catch (...) {
    }
  }

  nb::object check_;
  nb::object report_;
  SteadyTimeSource steady_;
  FunctionTransport transport_;
  Client client_;
};

}  // namespace
}  // namespace mixerclient

using namespace mixerclient;

NB_MODULE(_mixerclient, m) {
  m.doc() = "Mixer's client (the C++ core of mixerclient/): caches, batching and the wire codec.";

  nb::class_<Timestamp>(m, "Timestamp")
      .def(nb::init<>())
      .def("__init__", [](Timestamp* t, int64_t s, int32_t n) { new (t) Timestamp{s, n}; }, "seconds"_a, "nanos"_a = 0)
      .def_rw("seconds", &Timestamp::seconds)
      .def_rw("nanos", &Timestamp::nanos);
  nb::class_<Duration>(m, "Duration")
      .def(nb::init<>())
      .def("__init__", [](Duration* d, int64_t s, int32_t n) { new (d) Duration{s, n}; }, "seconds"_a, "nanos"_a = 0)
      .def_rw("seconds", &Duration::seconds)
      .def_rw("nanos", &Duration::nanos);
  nb::class_<CompressedStringMap>(m, "StringMap").def(nb::init<>()).def_rw("entries", &CompressedStringMap::entries);
  nb::class_<CompressedAttributes>(m, "CompressedAttributes")
      .def(nb::init<>())
      .def_rw("words", &CompressedAttributes::words)
      .def_rw("strings", &CompressedAttributes::strings)
      .def_rw("int64s", &CompressedAttributes::int64s)
      .def_rw("doubles", &CompressedAttributes::doubles)
      .def_rw("bools", &CompressedAttributes::bools)
      .def_rw("timestamps", &CompressedAttributes::timestamps)
      .def_rw("durations", &CompressedAttributes::durations)
      .def_rw("bytes", &CompressedAttributes::bytes)
      .def_rw("string_maps", &CompressedAttributes::string_maps);
  nb::class_<AnyMessage>(m, "Any")
      .def(nb::init<>())
      .def_rw("type_url", &AnyMessage::type_url)
      .def_prop_rw(
          "value", [](const AnyMessage& a) { return AsBytes(a.value); },
          [](AnyMessage& a, const nb::bytes& b) { a.value = std::string(ViewOf(b)); });
  nb::class_<RpcStatus>(m, "Status")
      .def(nb::init<>())
      .def_rw("code", &RpcStatus::code)
      .def_rw("message", &RpcStatus::message)
      .def_rw("details", &RpcStatus::details);
  nb::class_<QuotaParams>(m, "QuotaParams")
      .def(nb::init<>())
      .def_rw("amount", &QuotaParams::amount)
      .def_rw("best_effort", &QuotaParams::best_effort);
  nb::class_<CheckRequest>(m, "CheckRequest")
      .def(nb::init<>())
      .def_rw("attributes", &CheckRequest::attributes)
      .def_rw("global_word_count", &CheckRequest::global_word_count)
      .def_rw("deduplication_id", &CheckRequest::deduplication_id)
      .def_rw("quotas", &CheckRequest::quotas);
  nb::class_<AttributeMatch>(m, "AttributeMatch")
      .def(nb::init<>())
      .def_rw("name", &AttributeMatch::name)
      .def_rw("condition", &AttributeMatch::condition)
      .def_rw("regex", &AttributeMatch::regex)
      .def_rw("map_key", &AttributeMatch::map_key);
  nb::class_<ReferencedAttributes>(m, "ReferencedAttributes")
      .def(nb::init<>())
      .def_rw("words", &ReferencedAttributes::words)
      .def_rw("attribute_matches", &ReferencedAttributes::attribute_matches);
  nb::class_<HeaderOperation>(m, "HeaderOperation")
      .def(nb::init<>())
      .def_rw("name", &HeaderOperation::name)
      .def_rw("value", &HeaderOperation::value)
      .def_rw("operation", &HeaderOperation::operation);
  nb::class_<RouteDirective>(m, "RouteDirective")
      .def(nb::init<>())
      .def_rw("request_header_operations", &RouteDirective::request_header_operations)
      .def_rw("response_header_operations", &RouteDirective::response_header_operations)
      .def_rw("direct_response_code", &RouteDirective::direct_response_code)
      .def_rw("direct_response_body", &RouteDirective::direct_response_body);
  nb::class_<PreconditionResult>(m, "PreconditionResult")
      .def(nb::init<>())
      .def_rw("status", &PreconditionResult::status)
      .def_rw("valid_duration", &PreconditionResult::valid_duration)
      .def_rw("valid_use_count", &PreconditionResult::valid_use_count)
      .def_rw("referenced_attributes", &PreconditionResult::referenced_attributes)
      .def_rw("route_directive", &PreconditionResult::route_directive);
  nb::class_<QuotaResult>(m, "QuotaResult")
      .def(nb::init<>())
      .def_rw("valid_duration", &QuotaResult::valid_duration)
      .def_rw("granted_amount", &QuotaResult::granted_amount)
      .def_rw("referenced_attributes", &QuotaResult::referenced_attributes)
      .def_rw("status", &QuotaResult::status);
  nb::class_<CheckResponse>(m, "CheckResponse")
      .def(nb::init<>())
      .def_rw("precondition", &CheckResponse::precondition)
      .def_rw("quotas", &CheckResponse::quotas);
  nb::class_<ReportRequest>(m, "ReportRequest")
      .def(nb::init<>())
      .def_rw("attributes", &ReportRequest::attributes)
      .def_rw("default_words", &ReportRequest::default_words)
      .def_rw("global_word_count", &ReportRequest::global_word_count)
      .def_rw("repeated_attributes_semantics", &ReportRequest::repeated_attributes_semantics);
  nb::class_<ReportResponse>(m, "ReportResponse").def(nb::init<>());

  // The CompressedAttributes.bytes map holds raw bytes: read and set it as bytes, not str.
  m.def("attributes_bytes", [](const CompressedAttributes& a) {
    nb::dict out;
    for (const auto& [k, v] : a.bytes) out[nb::int_(k)] = AsBytes(v);
    return out;
  });
  m.def("set_attributes_bytes", [](CompressedAttributes& a, const std::map<int32_t, nb::bytes>& values) {
    a.bytes.clear();
    for (const auto& [k, v] : values) a.bytes[k] = std::string(ViewOf(v));
  });

  m.def("encode_check_request", [](const CheckRequest& r) { return AsBytes(EncodeCheckRequest(r)); });
  m.def("encode_check_response", [](const CheckResponse& r) { return AsBytes(EncodeCheckResponse(r)); });
  m.def("encode_report_request", [](const ReportRequest& r) { return AsBytes(EncodeReportRequest(r)); });
  m.def("encode_report_response", [](const ReportResponse& r) { return AsBytes(EncodeReportResponse(r)); });
  m.def("decode_check_request", &DecodeOrRaise<CheckRequest, DecodeCheckRequest>);
  m.def("decode_check_response", &DecodeOrRaise<CheckResponse, DecodeCheckResponse>);
  m.def("decode_report_request", &DecodeOrRaise<ReportRequest, DecodeReportRequest>);
  m.def("decode_report_response", &DecodeOrRaise<ReportResponse, DecodeReportResponse>);
  m.def("encode_attributes_message", [](nb::handle attrs) { return AsBytes(EncodeAttributesMessage(ToAttributes(attrs))); });
  m.def("decode_attributes_message", [](const nb::bytes& data) {
    Attributes out;
    const Status s = DecodeAttributesMessage(ViewOf(data), &out);
    if (!s.ok()) throw nb::value_error(s.message().c_str());
    return FromAttributes(out);
  });
  m.def("compress", [](nb::handle attrs, int32_t count) { return Compress(ToAttributes(attrs), count); },
        "attributes"_a, "global_word_count"_a = GlobalDictionary::Size());
  m.def(
      "decompress",
      [](const CompressedAttributes& c, const std::vector<std::string>& words, int32_t count) {
        Attributes out;
        const Status s = Decompress(c, words, count, &out);
        if (!s.ok()) throw nb::value_error(s.message().c_str());
        return FromAttributes(out);
      },
      "message"_a, "words"_a, "global_word_count"_a = GlobalDictionary::Size());
  m.def("global_words", [] {
    std::vector<std::string> words;
    for (int32_t i = 0; i < GlobalDictionary::Size(); ++i) words.emplace_back(GlobalDictionary::Word(i));
    return words;
  });
  m.def("http_status_for", [](int32_t code) { return HttpStatusFor(static_cast<Code>(code)); });
  m.attr("BASE_GLOBAL_WORD_COUNT") = kBaseGlobalWordCount;

  nb::class_<CheckResult>(m, "CheckResult")
      .def_prop_ro("code", [](const CheckResult& r) { return r.status.raw_code(); })
      .def_prop_ro("message", [](const CheckResult& r) { return r.status.message(); })
      .def_prop_ro("ok", [](const CheckResult& r) { return r.status.ok(); })
      .def_prop_ro("http_status", [](const CheckResult& r) { return HttpStatusFor(r.status.code()); })
      .def_ro("check_cache_hit", &CheckResult::check_cache_hit)
      .def_ro("quota_cache_hit", &CheckResult::quota_cache_hit)
      .def_ro("route_directive", &CheckResult::route_directive)
      .def("__repr__", [](const CheckResult& r) {
        return "CheckResult(" + r.status.ToString() + (r.check_cache_hit ? ", check cache hit" : "") +
               (r.quota_cache_hit ? ", quota cache hit" : "") + ")";
      });

  nb::class_<Completion>(m, "Completion")
      .def("__call__", &Completion::Call, "code"_a, "message"_a, "response"_a)
      .def_prop_ro("pending", &Completion::pending);

  nb::class_<PyFakeTime>(m, "FakeTime")
      .def(nb::init<int64_t>(), "start_nanos"_a = 1'000'000'000)
      .def_prop_ro("now_nanos", [](PyFakeTime& t) { return t.time_.NowNanos(); })
      .def("advance_ms", [](PyFakeTime& t, int64_t ms) { t.time_.AdvanceMillis(ms); })
      .def("advance_ns", [](PyFakeTime& t, int64_t ns) { t.time_.AdvanceNanos(ns); });

  nb::class_<PyClient>(m, "Client")
      .def(
          "__init__",
          [](PyClient* self, nb::object check, nb::object report, PyFakeTime* time, int32_t check_num_entries,
             bool network_fail_open, int32_t quota_num_entries, int64_t quota_expiration_ms, int32_t max_batch_entries,
             int32_t max_batch_time_ms, int32_t max_in_flight_batches, std::string deduplication_id_base,
             double check_refresh_fraction) {
            ClientOptions o;
            o.check.num_entries = check_num_entries;
            o.check.network_fail_open = network_fail_open;
            o.check.refresh_fraction = check_refresh_fraction;
            o.quota.num_entries = quota_num_entries;
            o.quota.expiration_ms = quota_expiration_ms;
            o.report.max_batch_entries = max_batch_entries;
            o.report.max_batch_time_ms = max_batch_time_ms;
            o.report.max_in_flight_batches = max_in_flight_batches;
            o.deduplication_id_base = std::move(deduplication_id_base);
            new (self) PyClient(o, std::move(check), std::move(report), time);
          },
          "check_transport"_a, "report_transport"_a, "time"_a.none() = nb::none(), "check_num_entries"_a = 10000,
          "network_fail_open"_a = true, "quota_num_entries"_a = 10000, "quota_expiration_ms"_a = 600000,
          "max_batch_entries"_a = 1000, "max_batch_time_ms"_a = 1000, "max_in_flight_batches"_a = 8,
          "deduplication_id_base"_a = "", "check_refresh_fraction"_a = 0.1, nb::keep_alive<1, 4>())
      .def("check", &PyClient::Check, "attributes"_a, "quotas"_a, "done"_a)
      .def("report", &PyClient::Report, "attributes"_a)
      .def("flush", &PyClient::Flush)
      .def("tick", &PyClient::Tick)
      .def("stats", &PyClient::Stats);
}
