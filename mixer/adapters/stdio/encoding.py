"""Log lines as Istio's stdio adapter writes them (zap's JSON and console encoders).

JSON: `{"level":"info","time":"2018-07-30T12:00:00.000000Z","instance":"accesslog...",
<fields>}` with the fields after the three header keys, in the order given (the handler
sorts variables by name, as Istio does). Console: `<time>\t<level>\t<instance>\t{fields}`.
Values are written as zap writes Go values: durations as Go durations (`6.5ms`), times in
the same format as `time`, IP addresses dotted, other bytes base64, NaN and infinities as
strings.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from pkg.lang.types import format_duration


def format_time(moment: datetime.datetime) -> str:
    """UTC with microseconds, as Istio's stdio formatDate: 2006-01-02T15:04:05.000000Z."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_line(
    *,
    level: str,
    moment: datetime.datetime,
    instance: str,
    fields: Sequence[tuple[str, Any]],
    as_json: bool,
    cache: JsonableCache | None = None,
) -> str:
    """One output line, newline included."""
    # Inline for the common types: a call per field was most of a line's cost.
    if cache is None:
        body = {
            (name if type(name) is str else str(name)): (
                value if type(value) in _AS_IS else jsonable(value)
            )
            for name, value in fields
        }
    else:
        remembered = cache.jsonable
        body = {
            (name if type(name) is str else str(name)): (
                value if type(value) in _AS_IS else remembered(name, value)
            )
            for name, value in fields
        }
    if not as_json:
        tail = f"\t{_CONSOLE.encode(body)}" if body else ""
        return f"{format_time(moment)}\t{level}\t{instance}{tail}\n"
    head = _COMPACT.encode({"level": level, "time": format_time(moment), "instance": instance})
    if not body:
        return head + "\n"
    # Spliced rather than merged: a variable called `level` must not hide the real level
    # (zap writes both keys; a JSON reader keeps the last).
    return f"{head[:-1]},{_COMPACT.encode(body)[1:]}\n"


# What json.dumps(..., separators=...) builds on every call, built once (it keeps no state).
_COMPACT = json.JSONEncoder(separators=(",", ":"))
_CONSOLE = json.JSONEncoder(separators=(", ", ": "))
# Values jsonable returns as they are.
_AS_IS = frozenset({str, int, bool, type(None)})


class JsonableCache:
    """`jsonable` of each field's last value, given again when the field has that very value
    object again: Mixer hands the entries of one Report the same objects for what their
    deltas left alone (addresses, labels, times), and turning bytes into a dotted address or
    a time into text costs more than the lookup. Values are immutable or never modified."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        # One entry per field name (bounded by config); holding the value keeps its id unique.
        self._last: dict[object, tuple[Any, Any]] = {}

    def jsonable(self, name: object, value: Any) -> Any:
        last = self._last.get(name)
        if last is not None and last[0] is value:
            return last[1]
        out = jsonable(value)
        self._last[name] = (value, out)
        return out


def jsonable(value: Any) -> Any:
    """`value` as something json.dumps writes the way zap writes the Go value."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    if isinstance(value, datetime.timedelta):
        return format_duration(value)
    if isinstance(value, datetime.datetime):
        return format_time(value)
    if isinstance(value, bytes | bytearray):
        if len(value) in (4, 16):  # how IP_ADDRESS attributes travel
            return str(ipaddress.ip_address(bytes(value)))
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return str(value)
