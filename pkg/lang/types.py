"""Value types of attributes and expressions, and how each one is held in Python.

The enum mirrors istio.policy.v1beta1.ValueType number for number, so `ValueType(n)` accepts
a proto enum value as it is. The Python form of each type (what a bag returns and what an
expression evaluates to):

    STRING, EMAIL_ADDRESS, URI, DNS_NAME   str
    INT64                                  int (kept within int64)
    DOUBLE                                 float
    BOOL                                   bool
    TIMESTAMP                              timezone-aware datetime.datetime
    DURATION                               datetime.timedelta
    STRING_MAP                             Mapping[str, str]
    IP_ADDRESS                             bytes, 4 or 16 packed bytes (as Mixer carries it)
"""

from __future__ import annotations

import datetime
import enum
import re


class ValueType(enum.IntEnum):
    VALUE_TYPE_UNSPECIFIED = 0
    STRING = 1
    INT64 = 2
    DOUBLE = 3
    BOOL = 4
    TIMESTAMP = 5
    IP_ADDRESS = 6
    EMAIL_ADDRESS = 7
    URI = 8
    DNS_NAME = 9
    DURATION = 10
    STRING_MAP = 11

    def __str__(self) -> str:
        return self.name


# Types held as str, whatever their meaning.
STRINGY = frozenset({ValueType.STRING, ValueType.EMAIL_ADDRESS, ValueType.URI, ValueType.DNS_NAME})

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


def wrap_int64(value: int) -> int:
    """`value` as Go's int64 arithmetic leaves it: two's complement wrap-around."""
    if INT64_MIN <= value <= INT64_MAX:
        return value
    return ((value - INT64_MIN) % (1 << 64)) + INT64_MIN


# Go's time.ParseDuration: an optional sign, then one or more decimal numbers with a unit.
_DURATION = re.compile(r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+")
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NANOS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def parse_duration(text: str) -> datetime.timedelta | None:
    """A Go duration string (`"10s"`, `"1h30m"`, `"-1.5ms"`, `"0"`) as a timedelta, or None.

    Like Go, a duration over int64 nanoseconds is refused. timedelta keeps microseconds, so
    the nanoseconds of `"1500ns"` are dropped (toward zero).
    """
    if text in ("0", "+0", "-0"):
        return datetime.timedelta(0)
    if not _DURATION.fullmatch(text):
        return None
    negative = text.startswith("-")
    nanos = 0
    for whole, fraction, unit in _DURATION_PART.findall(text.lstrip("+-")):
        scale = _UNIT_NANOS[unit]
        nanos += int(whole or "0") * scale
        if fraction:
            nanos += int(fraction) * scale // 10 ** len(fraction)
    if nanos > INT64_MAX + (1 if negative else 0):
        return None
    micros = nanos // 1000
    return datetime.timedelta(microseconds=-micros if negative else micros)


def format_duration(value: datetime.timedelta) -> str:
    """A timedelta the way Go prints a time.Duration: `1h30m0s`, `1.5s`, `250ms`, `0s`."""
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    if micros == 0:
        return "0s"
    if micros < 1_000:
        return f"{sign}{micros}µs"
    if micros < 1_000_000:
        return f"{sign}{_decimal(micros, 1_000)}ms"
    hours, rest = divmod(micros, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    out = sign
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return f"{out}{_decimal(rest, 1_000_000)}s"


def _decimal(value: int, unit: int) -> str:
    whole, fraction = divmod(value, unit)
    if not fraction:
        return str(whole)
    digits = str(fraction).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"
