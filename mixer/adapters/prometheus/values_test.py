"""Sample values and label text from instance values."""

from __future__ import annotations

import datetime
import ipaddress

import pytest

from mixer.adapters.prometheus.values import label_value, to_number
from pkg.lang.types import format_duration


def test_numbers():
    assert to_number(3) == 3.0
    assert to_number(2.5) == 2.5
    assert to_number("1") == 1.0
    assert to_number(True) == 1.0
    assert to_number(datetime.timedelta(milliseconds=1500)) == 1.5
    for bad, message in (
        ("x", "'x' is not a number"),
        (None, "a NoneType value cannot be a metric value"),
        (b"1", "a bytes value cannot be a metric value"),
        (float("nan"), "NaN is not a metric value"),
    ):
        with pytest.raises(ValueError, match=message):
            to_number(bad)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("reviews", "reviews"),
        (True, "true"),
        (False, "false"),
        (200, "200"),
        (2.0, "2"),
        (0.25, "0.25"),
        (None, ""),
        (datetime.timedelta(milliseconds=6, microseconds=577), "6.577ms"),
        (datetime.datetime(2018, 7, 30, 12, 0, tzinfo=datetime.UTC), "2018-07-30T12:00:00Z"),
        (bytes([10, 1, 2, 3]), "10.1.2.3"),
        (ipaddress.ip_address("::1"), "::1"),
        ({"b": 2, "a": "x"}, "a=x&b=2"),
    ],
)
def test_label_values_read_like_istios(value, text):
    assert label_value(value) == text


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (datetime.timedelta(0), "0s"),
        (datetime.timedelta(microseconds=250), "250µs"),
        (datetime.timedelta(microseconds=6500), "6.5ms"),
        (datetime.timedelta(milliseconds=1), "1ms"),
        (datetime.timedelta(seconds=1.5), "1.5s"),
        (datetime.timedelta(seconds=90), "1m30s"),
        (datetime.timedelta(hours=1), "1h0m0s"),
        (datetime.timedelta(hours=26, seconds=0.25), "26h0m0.25s"),
        (-datetime.timedelta(milliseconds=2), "-2ms"),
    ],
)
def test_go_durations(delta, text):
    assert format_duration(delta) == text
