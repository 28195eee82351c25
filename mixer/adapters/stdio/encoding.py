"""Log lines as Istio's stdio adapter writes them (zap's JSON and console encoders).

JSON: `{"level":"info","time":"2018-07-30T12:00:00.000000Z","instance":"accesslog...",
<fields>}` with the fields after the three header keys, in the order given (the handler
sorts variables by name, as Istio does). Console: `<time>\t<level>\t<instance>\t{fields}`.
Values are written as zap writes Go values: durations as Go durations (`6.5ms`), times in
the same format as `time`, IP addresses dotted, other bytes base64, NaN and infinities as
strings.

`encode_line` writes one line from scratch; `LineEncoder` writes a stream of log entries,
each line from the pieces of the line before (see its docstring). Both write the same text.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import itertools
import json
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pkg.lang.types import format_duration


def format_time(moment: datetime.datetime) -> str:
    """UTC with microseconds, as Istio's stdio formatDate: 2006-01-02T15:04:05.000000Z.

    isoformat, not strftime: it is twice as fast, and it pads years below 1000 to four
    digits as Go's layout does (glibc's %Y does not)."""
    zone = moment.tzinfo
    if zone is None:  # naive: taken as UTC
        return moment.isoformat(timespec="microseconds") + "Z"
    if zone is not datetime.UTC:
        moment = moment.astimezone(datetime.UTC)
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"  # "+00:00" -> "Z"


def encode_line(
    *,
    level: str,
    moment: datetime.datetime,
    instance: str,
    fields: Sequence[tuple[str, Any]],
    as_json: bool,
) -> str:
    """One output line, newline included."""
    # Inline for the common types: a call per field was most of a line's cost.
    body = {
        (name if type(name) is str else str(name)): (
            value if type(value) in _AS_IS else jsonable(value)
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
# The C function json uses for str with ensure_ascii (the default of both encoders above).
_json_str: Callable[[str], str] = json.encoder.encode_basestring_ascii


class LineEncoder:
    """The lines of one stream of log entries, each built from the line before.

    Mixer hands consecutive entries of a Report the very same value objects for what their
    deltas left alone (mixer/runtime/reuse.py): of an access log entry's ~36 variables only
    the times, sizes and ids change from one request to the next. So each line keeps its
    pieces, `"name":value` per variable in name order, and the next line encodes again only
    the pieces whose value is another object. Held values keep their ids from being reused;
    values are immutable or never modified (instances' maps are shared).

    The text is `encode_line`'s for the variables sorted by name (the property test in
    encoding_test.py compares the two on random streams).
    """

    __slots__ = (
        "_encoder",
        "_heads",
        "_item_separator",
        "_json",
        "_names",
        "_ordered",
        "_pieces",
        "_prefixes",
        "_values",
    )

    def __init__(self, *, as_json: bool) -> None:
        self._json = as_json
        self._encoder = _COMPACT if as_json else _CONSOLE
        self._item_separator = "," if as_json else ", "
        self._heads: dict[tuple[str, str], tuple[str, str]] = {}
        self._names: tuple[Any, ...] | None = None  # the variables' keys, in dict order
        self._ordered: Callable[[Mapping[Any, Any]], tuple[Any, ...]] = lambda _: ()
        self._prefixes: list[str] = []  # '"name":' per variable, in name order
        self._values: tuple[Any, ...] = ()  # the last line's values, in name order
        self._pieces: list[str] = []  # the last line's '"name":value', in name order

    def encode(
        self, *, level: str, moment: datetime.datetime, instance: str, variables: Mapping[Any, Any]
    ) -> str:
        """One output line, newline included."""
        names = tuple(variables)
        if names != self._names:
            self._layout(names)
        values = self._ordered(variables)
        previous = self._values
        if len(previous) == len(values):
            pieces = self._pieces.copy()
            # Compared in C; only the pieces whose value changed are encoded in Python.
            for i in itertools.compress(range(len(values)), map(operator.is_not, values, previous)):
                pieces[i] = self._prefixes[i] + self._value(values[i])
        else:
            pieces = [
                prefix + self._value(v) for prefix, v in zip(self._prefixes, values, strict=True)
            ]
        self._values, self._pieces = values, pieces
        before, after = self._head(level, instance)
        time = format_time(moment)
        if self._json:
            tail = f",{self._item_separator.join(pieces)}}}\n" if pieces else "}\n"
            return f"{before}{time}{after}{tail}"
        tail = f"\t{{{self._item_separator.join(pieces)}}}\n" if pieces else "\n"
        return f"{time}{before}{after}{tail}"

    def _layout(self, names: tuple[Any, ...]) -> None:
        ordered = sorted(names)
        if len(ordered) > 1:
            self._ordered = operator.itemgetter(*ordered)
        elif ordered:  # itemgetter of one key gives the value, not a 1-tuple
            (only,) = ordered
            self._ordered = lambda mapping: (mapping[only],)
        else:
            self._ordered = lambda _: ()
        colon = ":" if self._json else ": "
        self._prefixes = [
            _json_str(name if type(name) is str else str(name)) + colon for name in ordered
        ]
        self._names, self._values, self._pieces = names, (), []

    def _value(self, value: Any) -> str:
        # The types that change from entry to entry first: ids, sizes, times, durations.
        kind = type(value)
        if kind is str:
            return _json_str(value)
        if kind is int:
            return int.__repr__(value)
        if kind is datetime.datetime:
            return _json_str(format_time(value))
        if kind is datetime.timedelta:
            return _json_str(format_duration(value))
        return self._encoder.encode(jsonable(value))

    def _head(self, level: str, instance: str) -> tuple[str, str]:
        """What goes before and after the time: JSON's opening keys, or the console's tabs."""
        head = self._heads.get((level, instance))
        if head is None:
            if self._json:
                head = (
                    f'{{"level":{_json_str(level)},"time":"',
                    f'","instance":{_json_str(instance)}',
                )
            else:
                head = (f"\t{level}", f"\t{instance}")
            if len(self._heads) < 64:  # levels x instance names: bounded by config
                self._heads[(level, instance)] = head
        return head


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
