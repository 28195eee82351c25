"""The C++ wire codec, byte for byte against the Python protobuf runtime (upb).

Three properties, over random messages of every type the client sends or reads:
- encode in C++, parse with the generated api.mixer.v1 *_pb2: the same message, and the
  same bytes as protobuf's deterministic serialization;
- serialize with protobuf, decode in C++: the same message field by field, and encoding it
  again gives the same bytes;
- a bag compressed by the C++ client is the bag Mixer's own decoder reads.
"""

from __future__ import annotations

import datetime
import math

import pytest
from google.protobuf import descriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.mixer.v1 import attributes_pb2, check_pb2, report_pb2
from mixer.attribute.compressed import decode, decode_report
from mixerclient.python import _mixerclient as mc

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Proto full name -> binding class name.
CPP = {
    "istio.mixer.v1.CompressedAttributes": "CompressedAttributes",
    "istio.mixer.v1.StringMap": "StringMap",
    "istio.mixer.v1.CheckRequest": "CheckRequest",
    "istio.mixer.v1.CheckRequest.QuotaParams": "QuotaParams",
    "istio.mixer.v1.CheckResponse": "CheckResponse",
    "istio.mixer.v1.CheckResponse.PreconditionResult": "PreconditionResult",
    "istio.mixer.v1.CheckResponse.QuotaResult": "QuotaResult",
    "istio.mixer.v1.ReferencedAttributes": "ReferencedAttributes",
    "istio.mixer.v1.ReferencedAttributes.AttributeMatch": "AttributeMatch",
    "istio.mixer.v1.RouteDirective": "RouteDirective",
    "istio.mixer.v1.HeaderOperation": "HeaderOperation",
    "istio.mixer.v1.ReportRequest": "ReportRequest",
    "istio.mixer.v1.ReportResponse": "ReportResponse",
    "google.protobuf.Timestamp": "Timestamp",
    "google.protobuf.Duration": "Duration",
    "google.rpc.Status": "Status",
    "google.protobuf.Any": "Any",
}
F = descriptor.FieldDescriptor


def is_map(field: descriptor.FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def to_cpp(msg):
    """The binding's struct holding the same fields as a protobuf message."""
    full_name = msg.DESCRIPTOR.full_name
    obj = getattr(mc, CPP[full_name])()
    for field in msg.DESCRIPTOR.fields:
        value = getattr(msg, field.name)
        if full_name == "istio.mixer.v1.CompressedAttributes" and field.name == "bytes":
            mc.set_attributes_bytes(obj, dict(value))
        elif is_map(field):
            inner = field.message_type.fields_by_name["value"].message_type
            setattr(obj, field.name, {k: to_cpp(v) if inner else v for k, v in value.items()})
        elif field.is_repeated:
            setattr(obj, field.name, [to_cpp(v) if field.message_type else v for v in value])
        elif field.message_type is not None:
            if msg.HasField(field.name):
                setattr(obj, field.name, to_cpp(value))
        else:
            setattr(obj, field.name, value)
    return obj


def from_cpp(obj, cls):
    """The protobuf message holding the same fields as a binding struct."""
    msg = cls()
    full_name = cls.DESCRIPTOR.full_name
    for field in cls.DESCRIPTOR.fields:
        if full_name == "istio.mixer.v1.CompressedAttributes" and field.name == "bytes":
            for k, v in mc.attributes_bytes(obj).items():
                msg.bytes[k] = v
            continue
        value = getattr(obj, field.name)
        if is_map(field):
            inner = field.message_type.fields_by_name["value"].message_type
            target = getattr(msg, field.name)
            for k, v in value.items():
                if inner is not None:
                    target[k].CopyFrom(from_cpp(v, inner._concrete_class))
                else:
                    target[k] = v
        elif field.is_repeated:
            target = getattr(msg, field.name)
            for v in value:
                if field.message_type is not None:
                    target.add().CopyFrom(from_cpp(v, field.message_type._concrete_class))
                else:
                    target.append(v)
        elif field.message_type is not None:
            if value is not None:
                getattr(msg, field.name).CopyFrom(
                    from_cpp(value, field.message_type._concrete_class)
                )
        else:
            setattr(msg, field.name, value)
    return msg


# Random protobuf messages, from their descriptors.

INT32 = st.integers(-(2**31), 2**31 - 1)
SCALARS = {
    F.TYPE_INT32: INT32,
    F.TYPE_SINT32: INT32,
    F.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    F.TYPE_UINT32: st.integers(0, 2**32 - 1),
    F.TYPE_BOOL: st.booleans(),
    F.TYPE_DOUBLE: st.floats(allow_nan=True, allow_infinity=True),
    F.TYPE_STRING: st.text(max_size=12),
    F.TYPE_BYTES: st.binary(max_size=12),
    F.TYPE_ENUM: st.one_of(st.integers(0, 3), INT32),  # proto3 enums are open
}


def scalar(field: descriptor.FieldDescriptor) -> st.SearchStrategy:
    if field.type == F.TYPE_SINT32 and field.name in ("name", "map_key"):
        # Mostly indexes near the dictionaries, sometimes anything.
        return st.one_of(st.integers(-4, 230), INT32)
    return SCALARS[field.type]


@st.composite
def messages(draw, cls, depth: int = 0):
    msg = cls()
    for field in cls.DESCRIPTOR.fields:
        if is_map(field):
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            entries = draw(
                st.dictionaries(scalar(key_field), st.none(), max_size=3 if depth < 3 else 1)
            )
            target = getattr(msg, field.name)
            for key in entries:
                if value_field.message_type is not None:
                    target[key].CopyFrom(
                        draw(messages(value_field.message_type._concrete_class, depth + 1))
                    )
                else:
                    target[key] = draw(scalar(value_field))
        elif field.is_repeated:
            n = draw(st.integers(0, 2 if depth < 3 else 0))
            target = getattr(msg, field.name)
            for _ in range(n):
                if field.message_type is not None:
                    target.add().CopyFrom(
                        draw(messages(field.message_type._concrete_class, depth + 1))
                    )
                else:
                    target.append(draw(scalar(field)))
        elif field.message_type is not None:
            if depth < 4 and draw(st.booleans()):
                getattr(msg, field.name).CopyFrom(
                    draw(messages(field.message_type._concrete_class, depth + 1))
                )
        elif draw(st.booleans()):
            setattr(msg, field.name, draw(scalar(field)))
    return msg


KINDS = [
    (check_pb2.CheckRequest, mc.encode_check_request, mc.decode_check_request),
    (check_pb2.CheckResponse, mc.encode_check_response, mc.decode_check_response),
    (report_pb2.ReportRequest, mc.encode_report_request, mc.decode_report_request),
    (report_pb2.ReportResponse, mc.encode_report_response, mc.decode_report_response),
]


def same_bytes_property(cls, encode, decode_cpp):
    @SETTINGS
    @given(messages(cls))
    def check(msg):
        expected = msg.SerializeToString(deterministic=True)
        # Encode in C++, parse with protobuf.
        encoded = encode(to_cpp(msg))
        assert encoded == expected
        assert cls.FromString(encoded).SerializeToString(deterministic=True) == expected
        # Serialize with protobuf, decode in C++.
        decoded = decode_cpp(expected)
        assert from_cpp(decoded, cls).SerializeToString(deterministic=True) == expected
        assert encode(decoded) == expected

    return check


test_check_request_bytes = same_bytes_property(*KINDS[0])
test_check_response_bytes = same_bytes_property(*KINDS[1])
test_report_request_bytes = same_bytes_property(*KINDS[2])
test_report_response_bytes = same_bytes_property(*KINDS[3])


# Bags, as a proxy or a service builds them.

WORDS = st.sampled_from(mc.global_words()[:30]) | st.text(min_size=1, max_size=8)
UTC = datetime.UTC
VALUES = st.one_of(
    st.text(max_size=10),
    WORDS,
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.binary(max_size=8),
    st.datetimes(
        min_value=datetime.datetime(1, 1, 2),
        max_value=datetime.datetime(9999, 12, 30),
        timezones=st.just(UTC),
    ),
    st.timedeltas(
        min_value=datetime.timedelta(days=-(10**6)), max_value=datetime.timedelta(days=10**6)
    ),
    st.dictionaries(WORDS, WORDS, max_size=4),
)
BAGS = st.dictionaries(WORDS, VALUES, max_size=8)


def same_values(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for k, v in a.items():
        w = b[k]
        if type(v) is not type(w):
            return False
        if isinstance(v, float) and math.isnan(v):
            if not math.isnan(w):
                return False
        elif v != w:
            return False
    return True


@SETTINGS
@given(BAGS, st.sampled_from([222, mc.BASE_GLOBAL_WORD_COUNT, 0]))
def test_compressed_bags_are_what_mixer_decodes(bag, count):
    request = mc.CheckRequest()
    request.attributes = mc.compress(bag, count)
    request.global_word_count = count
    request.deduplication_id = "id-1"
    data = mc.encode_check_request(request)
    parsed = check_pb2.CheckRequest.FromString(data)
    assert parsed.SerializeToString(deterministic=True) == data
    # Mixer's server-side decoder reads back exactly the bag (and so does ours).
    assert same_values(decode(parsed.attributes, global_word_count=count or None).as_dict(), bag)
    assert same_values(mc.decompress(request.attributes, request.attributes.words, count), bag)


@SETTINGS
@given(BAGS)
def test_attributes_message_matches_protobuf(bag):
    data = mc.encode_attributes_message(bag)
    parsed = attributes_pb2.Attributes.FromString(data)
    assert parsed.SerializeToString(deterministic=True) == data
    assert same_values(mc.decode_attributes_message(parsed.SerializeToString()), bag)


@SETTINGS
@given(st.lists(BAGS, min_size=1, max_size=6))
def test_report_batches_are_what_mixer_decodes(bags):
    sent: list[bytes] = []
    client = mc.Client(
        lambda request, completion: completion(0, "", b""),
        lambda request, completion: (sent.append(request), completion(0, "", b"")),
        mc.FakeTime(),
        deduplication_id_base="t-",
    )
    for bag in bags:
        client.report(bag)
    client.flush()
    decoded = []
    for data in sent:
        request = report_pb2.ReportRequest.FromString(data)
        assert request.SerializeToString(deterministic=True) == data
        decoded.extend(b.as_dict() for b in decode_report(request))
    assert len(decoded) == len(bags)
    for got, want in zip(decoded, bags, strict=True):
        assert same_values(got, want)


def test_decoding_refuses_bad_input_with_the_field_path():
    bad = check_pb2.CheckResponse()
    bad.precondition.status.message = "x"
    data = bytearray(bad.SerializeToString())
    data[-1] = 0xFF  # the message's last byte: no longer UTF-8
    with pytest.raises(
        ValueError, match="precondition: status: field 2: string is not valid UTF-8"
    ):
        mc.decode_check_response(bytes(data))
    for truncated in (b"\x12", b"\x12\x05\x0a", b"\x12\x80"):
        with pytest.raises(ValueError, match="CheckResponse:"):
            mc.decode_check_response(truncated)
