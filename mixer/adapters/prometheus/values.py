"""Instance values as Prometheus wants them: a float for the sample, strings for the labels.

Label values follow Istio's adapter.Stringify, so dashboards written for Istio match:
booleans are `true`/`false`, durations are Go durations (`1.5s`), IP addresses dotted.
"""

from __future__ import annotations

import datetime
import ipaddress
import math
from collections.abc import Mapping
from typing import Any

from pkg.lang.types import format_duration


def to_number(value: Any) -> float:
    """The sample value of an instance value; a duration counts in seconds (as Istio does)."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, datetime.timedelta):
        number = value.total_seconds()
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
    else:
        raise ValueError(f"a {type(value).__name__} value cannot be a metric value")
    if math.isnan(number):
        raise ValueError("NaN is not a metric value")
    return number


def label_value(value: Any) -> str:
    """The label text of one dimension value."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if value is None:
        return ""
    if isinstance(value, datetime.timedelta):
        return format_duration(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return value.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes | bytearray) and len(value) in (4, 16):
        return str(ipaddress.ip_address(bytes(value)))
    if isinstance(value, Mapping):
        return "&".join(f"{k}={label_value(v)}" for k, v in sorted(value.items()))
    return str(value)
