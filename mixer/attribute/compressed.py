"""CompressedAttributes on the wire <-> attribute bags, for Check requests and Report batches.

Every name and every string value (string-map keys and values too) travels as a dictionary
index (see `dictionary`). Each typed map of the message carries one transport type; an
attribute may appear in only one of them.

Report batches are delta-encoded (Istio's mixerclient delta_update.cc and Mixer's Report
handler): entry 0 is a full bag, each later entry carries only the attributes whose value
changed, and the receiver applies the entries cumulatively. An entry with no `words` of its own
uses the request's `default_words`. A removal cannot be expressed as a delta; `encode_report`
then marks the batch INDEPENDENT_ENCODING, where every entry is complete.

Decoding runs on every Check and Report, so it is one pass over each map with plain integer range
checks; error paths re-scan the message to say precisely what is wrong.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import NoReturn, cast

from api.mixer.v1 import attributes_pb2, check_pb2, report_pb2
from mixer.attribute.bag import Bag, Value, same_value
from mixer.attribute.dictionary import (
    GLOBAL_WORDS,
    AttributeDecodeError,
    WordEncoder,
    check_caller_count,
    describe_index,
    index_for,
    usable_count,
    word_at,
)

__all__ = [
    "AttributeDecodeError",
    "decode",
    "decode_check",
    "decode_report",
    "decode_report_deltas",
    "encode",
    "encode_report",
]

_UTC = datetime.UTC
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=_UTC)
_timedelta = datetime.timedelta  # (days, seconds, microseconds)
# google.protobuf.Timestamp: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z.
_MIN_TIMESTAMP_SECONDS = -62_135_596_800
_MAX_TIMESTAMP_SECONDS = 253_402_300_799
# google.protobuf.Duration: +-10000 years.
_MAX_DURATION_SECONDS = 315_576_000_000
_MAX_NANOS = 999_999_999

# Decode order of the typed maps; it is also the order errors name them in.
_MAPS = ("strings", "int64s", "doubles", "bools", "timestamps", "durations", "bytes", "string_maps")


def decode(
    attrs: attributes_pb2.CompressedAttributes,
    global_words: Sequence[str] = GLOBAL_WORDS,
    global_word_count: int | None = None,
) -> Bag:
    """The bag a message carries; `global_word_count` is how many global words its sender
    knows (None: all of ours). Raises AttributeDecodeError."""
    count = check_caller_count(global_words, global_word_count)
    return Bag.trusted(_decode_values(attrs, attrs.words, global_words, count))


def decode_check(
    request: check_pb2.CheckRequest, global_words: Sequence[str] = GLOBAL_WORDS
) -> Bag:
    """The bag of a Check request (a `global_word_count` of 0 means the client did not say)."""
    return decode(request.attributes, global_words, request.global_word_count or None)


def decode_report(
    request: report_pb2.ReportRequest, global_words: Sequence[str] = GLOBAL_WORDS
) -> list[Bag]:
    """One bag per reported event, deltas applied. Errors name the entry: `attributes[3]: ...`."""
    return decode_report_deltas(request, global_words)[0]


def decode_report_deltas(
    request: report_pb2.ReportRequest, global_words: Sequence[str] = GLOBAL_WORDS
) -> tuple[list[Bag], list[Mapping[str, Value] | None]]:
    """`decode_report`'s bags, and for each what its entry carried: the attributes set anew
    (every other one is the previous bag's value, the very same object), or None where the
    entry stands alone (the first one, or INDEPENDENT_ENCODING). What Mixer uses to reuse
    the evaluation of expressions whose attributes an entry left alone."""
    count = check_caller_count(global_words, request.global_word_count or None)
    delta = request.repeated_attributes_semantics == report_pb2.ReportRequest.DELTA_ENCODING
    default_words: list[str] | None = None
    default_table: tuple[str, ...] | None = None  # built once: the entries share it
    bags: list[Bag] = []
    deltas: list[Mapping[str, Value] | None] = []
    previous: dict[str, Value] = {}
    for i, attrs in enumerate(request.attributes):
        words: Sequence[str] = attrs.words
        table = None
        if not words:
            if default_words is None:
                default_words = list(request.default_words)
                default_table = _word_table(default_words, global_words, count)
            words, table = default_words, default_table
        try:
            values = _decode_values(attrs, words, global_words, count, table)
        except AttributeDecodeError as e:
            raise AttributeDecodeError(f"attributes[{i}]: {e}") from None
        if delta and i > 0:
            # A delta replaces whole values (a string map too) and never removes one.
            merged = previous.copy()
            merged.update(values)
            deltas.append(values)
            values = merged
        else:
            deltas.append(None)
        bags.append(Bag.trusted(values))
        previous = values
    return bags, deltas


def _word_table(words: Sequence[str], gw: Sequence[str], count: int) -> tuple[str, ...]:
    # One table for both dictionaries: Python's negative indexing turns table[-1] into
    # words[0], table[-2] into words[1], ... exactly the wire's rule for message words.
    return (*gw[:count], *reversed(words))


def _decode_values(
    attrs: attributes_pb2.CompressedAttributes,
    message_words: Sequence[str],
    gw: Sequence[str],
    count: int,
    table: tuple[str, ...] | None = None,
) -> dict[str, Value]:
    """`table`: `_word_table(message_words, gw, count)` if the caller has it already."""
    words = message_words if type(message_words) is list else list(message_words)
    low = -len(words)  # valid indexes are low <= i < count
    if table is None:
        table = _word_table(words, gw, count)

    # upb maps iterate keys much faster than items(), so every loop indexes by key; names
    # are range-checked inline (a call per attribute cost a sixth of the decode).
    values: dict[str, Value] = {}
    strings = attrs.strings
    for ni in strings:
        vi = strings[ni]
        if not (low <= ni < count and low <= vi < count):
            if not low <= ni < count:
                _check_name(ni, "strings", words, count)
            raise AttributeDecodeError(
                f"strings[{table[ni]}]: value: {describe_index(vi, len(words), count)}"
            )
        values[table[ni]] = table[vi]
    if len(values) != len(strings):
        _raise_duplicate(attrs, words, gw, count)

    # Each map below may repeat a name an earlier map had; `expected` spots it without a test
    # per attribute (and a repeat within one map, via two indexes naming one word).
    expected = len(values)
    for field, convert in _SCALAR_MAPS:
        entries = getattr(attrs, field)
        if not entries:
            continue
        for ni in entries:
            if not low <= ni < count:
                _check_name(ni, field, words, count)
            if convert is None:
                values[table[ni]] = entries[ni]
                continue
            try:
                values[table[ni]] = convert(entries[ni])
            except _Invalid as e:
                raise AttributeDecodeError(f"{field}[{table[ni]}]: {e}") from None
        expected += len(entries)
        if len(values) != expected:
            _raise_duplicate(attrs, words, gw, count)

    string_maps = attrs.string_maps
    for ni in string_maps:
        if not low <= ni < count:
            _check_name(ni, "string_maps", words, count)
        name = table[ni]
        entries = string_maps[ni].entries
        mapped: dict[str, str] = {}
        for ki in entries:
            vi = entries[ki]
            if not (low <= ki < count and low <= vi < count):
                _raise_bad_entry(name, ki, vi, words, gw, count)
            mapped[table[ki]] = table[vi]
        if len(mapped) != len(entries):
            _raise_duplicate_key(name, entries, words, gw, count)
        values[name] = mapped
    if len(values) != expected + len(string_maps):
        _raise_duplicate(attrs, words, gw, count)
    return values


def _check_name(index: int, field: str, words: Sequence[str], count: int) -> NoReturn:
    """Raise for an attribute name index outside both dictionaries."""
    raise AttributeDecodeError(
        f"{field}: attribute name: {describe_index(index, len(words), count)}"
    )


def _timestamp(ts: object) -> datetime.datetime:
    seconds, nanos = ts.seconds, ts.nanos  # type: ignore[attr-defined]
    if not _MIN_TIMESTAMP_SECONDS <= seconds <= _MAX_TIMESTAMP_SECONDS:
        raise _Invalid(f"invalid timestamp: seconds {seconds} outside years 1..9999")
    if not 0 <= nanos <= _MAX_NANOS:
        raise _Invalid(f"invalid timestamp: nanos {nanos} outside [0, {_MAX_NANOS}]")
    # Python keeps microseconds: sub-microsecond precision is dropped (floor, as nanos >= 0).
    return _EPOCH + _timedelta(0, seconds, nanos // 1000)  # positional: faster


def _duration(d: object) -> datetime.timedelta:
    seconds, nanos = d.seconds, d.nanos  # type: ignore[attr-defined]
    if not -_MAX_DURATION_SECONDS <= seconds <= _MAX_DURATION_SECONDS:
        raise _Invalid(f"invalid duration: seconds {seconds} exceed +-10000 years")
    if not -_MAX_NANOS <= nanos <= _MAX_NANOS:
        raise _Invalid(f"invalid duration: nanos {nanos} outside [-{_MAX_NANOS}, {_MAX_NANOS}]")
    if (seconds < 0 < nanos) or (nanos < 0 < seconds):
        raise _Invalid(f"invalid duration: seconds {seconds} and nanos {nanos} differ in sign")
    micros = nanos // 1000 if nanos >= 0 else -(-nanos // 1000)  # truncate toward zero
    return _timedelta(0, seconds, micros)


class _Invalid(AttributeDecodeError):
    """A bad value, raised without the attribute's name; the decode loop adds it."""


# (field, converter or None): the maps whose values need no dictionary lookup.
_SCALAR_MAPS = (
    ("int64s", None),
    ("doubles", None),
    ("bools", None),
    ("timestamps", _timestamp),
    ("durations", _duration),
    ("bytes", None),
)


def _raise_duplicate(
    attrs: attributes_pb2.CompressedAttributes, words: list[str], gw: Sequence[str], count: int
) -> None:
    """Find the first attribute named twice and say where (only called when there is one)."""
    seen: dict[str, tuple[str, int]] = {}
    for field in _MAPS:
        for index in getattr(attrs, field):
            name = word_at(index, words, gw, count)
            if name is None:  # a later map not decoded yet; its own error comes after
                continue
            if name in seen:
                first_field, first_index = seen[name]
                if first_field == field:
                    raise AttributeDecodeError(
                        f"attribute {name!r} appears twice in {field} "
                        f"(indexes {first_index} and {index})"
                    )
                raise AttributeDecodeError(
                    f"attribute {name!r} appears in both {first_field} and {field}"
                )
            seen[name] = (field, index)
    raise AssertionError("no duplicate attribute found")  # pragma: no cover


def _raise_bad_entry(
    name: str, ki: int, vi: int, words: list[str], gw: Sequence[str], count: int
) -> None:
    key = word_at(ki, words, gw, count)
    if key is None:
        raise AttributeDecodeError(
            f"string_maps[{name}]: entry key: {describe_index(ki, len(words), count)}"
        )
    raise AttributeDecodeError(
        f"string_maps[{name}][{key!r}]: entry value: {describe_index(vi, len(words), count)}"
    )


def _raise_duplicate_key(
    name: str, entries: Mapping[int, int], words: list[str], gw: Sequence[str], count: int
) -> None:
    seen: dict[str, int] = {}
    for ki in entries:
        key = word_at(ki, words, gw, count)
        if key in seen:
            raise AttributeDecodeError(
                f"string_maps[{name}]: key {key!r} appears twice (indexes {seen[key]} and {ki})"
            )
        seen[key] = ki  # type: ignore[index]
    raise AssertionError("no duplicate key found")  # pragma: no cover


def encode(
    bag: Bag | Mapping[str, object],
    global_words: Sequence[str] = GLOBAL_WORDS,
    global_word_count: int | None = None,
) -> attributes_pb2.CompressedAttributes:
    """The message for a bag, using the first `global_word_count` global words (None: all)."""
    if not isinstance(bag, Bag):
        bag = Bag(bag)
    encoder = WordEncoder(index_for(global_words), usable_count(global_words, global_word_count))
    out = attributes_pb2.CompressedAttributes()
    _encode_into(out, bag.items(), encoder)
    _set_words(out.words, encoder.words)
    return out


def encode_report(
    bags: Iterable[Bag | Mapping[str, object]],
    global_words: Sequence[str] = GLOBAL_WORDS,
    global_word_count: int | None = None,
) -> report_pb2.ReportRequest:
    """A report batch for `bags`, delta-encoded with one shared `default_words` dictionary;
    INDEPENDENT_ENCODING if some attribute disappears from one bag to the next."""
    normalized = [b if isinstance(b, Bag) else Bag(b) for b in bags]
    count = usable_count(global_words, global_word_count)
    encoder = WordEncoder(index_for(global_words), count)
    request = report_pb2.ReportRequest(global_word_count=count)
    delta = all(prev.names() <= cur.names() for prev, cur in itertools.pairwise(normalized))
    if not delta:
        request.repeated_attributes_semantics = report_pb2.ReportRequest.INDEPENDENT_ENCODING
    previous: Bag | None = None
    for bag in normalized:
        items: Iterable[tuple[str, Value]] = bag.items()
        if delta and previous is not None:
            items = _changed(previous, bag)
        _encode_into(request.attributes.add(), items, encoder)
        previous = bag
    _set_words(request.default_words, encoder.words)
    return request


def _changed(previous: Bag, bag: Bag) -> Iterable[tuple[str, Value]]:
    for name, value in bag.items():
        old, found = previous.get(name)
        if not (found and same_value(old, value)):
            yield name, value


def _encode_into(
    out: attributes_pb2.CompressedAttributes,
    items: Iterable[tuple[str, Value]],
    encoder: WordEncoder,
) -> None:
    index = encoder.index
    for name, value in items:
        i = index(name)
        kind = type(value)
        # Bags hold canonical values (see bag.normalize), so exact type tests suffice.
        if kind is str:
            out.strings[i] = index(value)  # type: ignore[arg-type]
        elif kind is int:
            out.int64s[i] = value  # type: ignore[assignment]
        elif kind is float:
            out.doubles[i] = value  # type: ignore[assignment]
        elif kind is bool:
            out.bools[i] = value  # type: ignore[assignment]
        elif kind is bytes:
            out.bytes[i] = value  # type: ignore[assignment]
        elif kind is dict:
            entries = out.string_maps[i].entries
            for k, v in value.items():  # type: ignore[union-attr]
                ki = index(k)  # the key's word first: dictionaries read in key, value order
                entries[ki] = index(v)
        elif kind is datetime.datetime:
            delta = cast(datetime.datetime, value) - _EPOCH
            ts = out.timestamps[i]
            # timedelta keeps 0 <= seconds < 86400 and 0 <= microseconds: nanos come out >= 0.
            ts.seconds = delta.days * 86_400 + delta.seconds
            ts.nanos = delta.microseconds * 1000
        elif kind is datetime.timedelta:
            micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds  # type: ignore[union-attr]
            seconds, rest = divmod(abs(micros), 1_000_000)
            sign = -1 if micros < 0 else 1
            d = out.durations[i]
            d.seconds = sign * seconds
            d.nanos = sign * rest * 1000
        else:  # pragma: no cover - Bag refuses other types
            raise TypeError(f"attribute {name!r}: unsupported value type {kind.__name__}")


def _set_words(field: object, words: list[str]) -> None:
    try:
        field.extend(words)  # type: ignore[attr-defined]
    except (ValueError, UnicodeError):
        for word in words:
            try:
                word.encode("utf-8")
            except UnicodeError:
                raise ValueError(f"word {word!r} is not valid UTF-8 text") from None
        raise
