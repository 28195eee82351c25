"""Attribute bags: the typed name -> value sets Mixer evaluates its config against.

Values are plain Python objects, one per transport type of the wire format:
str (STRING, DNS_NAME, EMAIL_ADDRESS, URI), int (INT64), float (DOUBLE), bool (BOOL), bytes
(BYTES; IP_ADDRESS travels as bytes), datetime (TIMESTAMP, UTC-aware), timedelta (DURATION) and
dict[str, str] (STRING_MAP).

`TrackingBag` wraps a bag and records which attributes each lookup depended on, which is what a
Check response's `referenced_attributes` reports so that clients can cache the answer.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterator, KeysView, Mapping, Sequence
from typing import Protocol

from api.mixer.v1 import check_pb2
from mixer.attribute.dictionary import GLOBAL_WORDS
from mixer.attribute.referenced import ABSENCE, EXACT, References

Value = str | int | float | bool | bytes | datetime.datetime | datetime.timedelta | dict[str, str]

_UTC = datetime.UTC
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# google.protobuf.Duration's range: +-10000 years.
MAX_DURATION = datetime.timedelta(seconds=315_576_000_000)


class AttributeBag(Protocol):
    """What evaluating an expression needs from a bag; both `Bag` and `TrackingBag` have it."""

    def get(self, name: str) -> tuple[Value | None, bool]: ...

    def map_value(self, name: str, key: str) -> tuple[str, bool]: ...

    def names(self) -> KeysView[str]: ...


def _check_map(name: str, value: Mapping[object, object]) -> dict[str, str]:
    for k, v in value.items():
        if type(k) is not str or type(v) is not str:
            raise TypeError(
                f"attribute {name!r}: a string map needs str keys and values, "
                f"got {type(k).__name__} -> {type(v).__name__}"
            )
    return dict(value)  # type: ignore[arg-type]


def normalize(name: str, value: object) -> Value:
    """The bag's canonical form of `value`, or TypeError/ValueError saying what is wrong."""
    if type(name) is not str:
        raise TypeError(f"attribute names are str, got {type(name).__name__} {name!r}")
    # Exact types first (the common case), then subclasses converted to their base type so
    # encoding can dispatch on `type()`. bool before int: bool is an int subclass.
    kind = type(value)
    if kind in (str, float, bool, bytes):
        return value  # type: ignore[return-value]
    if kind is int:
        if not _INT64_MIN <= value <= _INT64_MAX:  # type: ignore[operator]
            raise ValueError(f"attribute {name!r}: {value} does not fit in an int64")
        return value  # type: ignore[return-value]
    if isinstance(value, datetime.timedelta):
        if not -MAX_DURATION <= value <= MAX_DURATION:
            raise ValueError(f"attribute {name!r}: duration {value} exceeds +-10000 years")
        return datetime.timedelta(value.days, value.seconds, value.microseconds)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return normalize(name, int(value))
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"attribute {name!r}: timestamp {value} has no timezone")
        utc = value if value.tzinfo is _UTC else value.astimezone(_UTC)
        # A subclass (e.g. from a date library) becomes a plain datetime.
        return (
            utc if type(utc) is datetime.datetime else datetime.datetime.combine(utc, utc.timetz())
        )
    if isinstance(value, Mapping):
        return _check_map(name, value)
    raise TypeError(f"attribute {name!r}: unsupported value type {kind.__name__}")


def same_value(a: object, b: object) -> bool:
    """Equal and of the same type (so True is not 1); NaN equals NaN (the same wire value)."""
    if type(a) is not type(b):
        return False
    if a == b:
        return True
    return type(a) is float and math.isnan(a) and math.isnan(b)  # type: ignore[arg-type]


class Bag:
    """An immutable set of named, typed attribute values.

    String maps are returned as the bag's own dicts: callers must not mutate them.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, object] | None = None) -> None:
        self._values: dict[str, Value] = (
            {name: normalize(name, value) for name, value in values.items()} if values else {}
        )

    @classmethod
    def trusted(cls, values: dict[str, Value]) -> Bag:
        """A bag owning `values` as is: for decoders whose output is already canonical."""
        bag = cls.__new__(cls)
        bag._values = values
        return bag

    def get(self, name: str) -> tuple[Value | None, bool]:
        value = self._values.get(name)
        return value, value is not None

    def map_value(self, name: str, key: str) -> tuple[str, bool]:
        """The value of `key` in the string map `name`; ("", False) if either is absent."""
        value = self._values.get(name)
        if value is None:
            return "", False
        if type(value) is not dict:
            raise TypeError(f"attribute {name!r} is a {type(value).__name__}, not a string map")
        entry = value.get(key)
        return ("", False) if entry is None else (entry, True)

    def names(self) -> KeysView[str]:
        return self._values.keys()

    def items(self) -> Iterator[tuple[str, Value]]:
        return iter(self._values.items())

    def as_dict(self) -> dict[str, Value]:
        """A shallow copy of the values, safe to modify."""
        return dict(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Bag):
            return NotImplemented
        mine, theirs = self._values, other._values
        if mine.keys() != theirs.keys():
            return False
        return all(same_value(v, theirs[k]) for k, v in mine.items())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {self._values[k]!r}" for k in sorted(self._values))
        return f"Bag({{{inner}}})"


class TrackingBag:
    """A bag that records every lookup as a reference (Istio's ProtoBag reference tracking).

    `get` records the name: EXACT if found (for a string map: the whole map, since the caller
    sees every key), ABSENCE if not. `map_value` records the (name, key) pair: EXACT if the key
    is present, ABSENCE if the key or the whole map is absent. `names()` is not a reference.
    Several evaluations can share one `References` (pass it in) or merge theirs afterwards.
    """

    __slots__ = ("bag", "references")

    def __init__(self, bag: Bag, references: References | None = None) -> None:
        self.bag = bag
        self.references = References() if references is None else references

    def get(self, name: str) -> tuple[Value | None, bool]:
        value, found = self.bag.get(name)
        self.references.record(name, None, EXACT if found else ABSENCE)
        return value, found

    def map_value(self, name: str, key: str) -> tuple[str, bool]:
        value, found = self.bag.map_value(name, key)
        self.references.record(name, key, EXACT if found else ABSENCE)
        return value, found

    def names(self) -> KeysView[str]:
        return self.bag.names()

    def referenced_attributes(
        self, global_words: Sequence[str] = GLOBAL_WORDS, global_word_count: int | None = None
    ) -> check_pb2.ReferencedAttributes:
        """The references so far, compressed for a client that knows `global_word_count`
        global words (None: all of them)."""
        return self.references.to_proto(global_words, global_word_count)
