"""Value types and Go durations."""

import datetime

import pytest

from api.policy.v1beta1 import value_type_pb2
from pkg.lang.types import (
    INT64_MAX,
    INT64_MIN,
    ValueType,
    format_duration,
    parse_duration,
    wrap_int64,
)

ms = datetime.timedelta(milliseconds=1)


def test_value_type_mirrors_the_proto():
    proto = value_type_pb2.ValueType
    assert {t.name: t.value for t in ValueType} == dict(proto.items())
    assert ValueType(proto.Value("STRING_MAP")) is ValueType.STRING_MAP
    assert str(ValueType.DNS_NAME) == "DNS_NAME"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", datetime.timedelta(0)),
        ("-0", datetime.timedelta(0)),
        ("10s", datetime.timedelta(seconds=10)),
        ("1h30m", datetime.timedelta(hours=1, minutes=30)),
        ("1.5s", datetime.timedelta(seconds=1.5)),
        (".5ms", datetime.timedelta(microseconds=500)),
        ("2.ms", 2 * ms),
        ("-1.5h", -datetime.timedelta(hours=1.5)),
        ("+3m", datetime.timedelta(minutes=3)),
        ("100us", datetime.timedelta(microseconds=100)),
        ("100µs", datetime.timedelta(microseconds=100)),
        ("100μs", datetime.timedelta(microseconds=100)),
        ("1500ns", datetime.timedelta(microseconds=1)),  # nanoseconds below a µs are dropped
        ("1m1s1ms", datetime.timedelta(minutes=1, seconds=1, milliseconds=1)),
        ("2562047h47m16.854775807s", datetime.timedelta(microseconds=(2**63 - 1) // 1000)),
    ],
)
def test_parse_duration(text, value):
    assert parse_duration(text) == value


@pytest.mark.parametrize(
    "text", ["", "1", "s", "10", "1.s.", "1S", "1d", ".s", "1 s", " 1s", "--1s", "2562047h48m"]
)
def test_parse_duration_refuses(text):
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime.timedelta(0), "0s"),
        (datetime.timedelta(microseconds=5), "5µs"),
        (datetime.timedelta(microseconds=1500), "1.5ms"),
        (datetime.timedelta(seconds=10), "10s"),
        (datetime.timedelta(hours=1, minutes=30), "1h30m0s"),
        (datetime.timedelta(minutes=2, seconds=0.25), "2m0.25s"),
        (-datetime.timedelta(seconds=3), "-3s"),
    ],
)
def test_format_duration(value, text):
    assert format_duration(value) == text
    assert parse_duration(text) == value


def test_wrap_int64():
    assert wrap_int64(5) == 5
    assert wrap_int64(INT64_MAX + 1) == INT64_MIN
    assert wrap_int64(INT64_MIN - 1) == INT64_MAX
    assert wrap_int64(-INT64_MIN) == INT64_MIN
