"""Checks a plain YAML/JSON value against a proto message's shape, before it is parsed.

protobuf's own JSON parser stops at the first problem and names it loosely; this walk finds
every unknown field and wrong type, each with its full path (`spec.http[0].route[1].weight`).
It also returns the value in the form protobuf's parser wants: Istio users write durations the
Go way (`5m`, `30ms`, `1h30m`), proto3 JSON only knows seconds (`300s`).
"""

from __future__ import annotations

import math
import re
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from pkg.config.validation.removed import replace_removed
from pkg.config.validation.result import FieldPath, ValidationResult

_DURATION = re.compile(r"^([-+]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_NANOS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_INTEGER_TEXT = re.compile(r"^-?[0-9]{1,20}$")
_MAX_DURATION_TEXT = 64
_MAX_DURATION_NANOS = 2**63 - 1
_INT32 = (-(2**31), 2**31 - 1)
_UINT32 = (0, 2**32 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_UINT64 = (0, 2**64 - 1)
_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: _INT32,
    FieldDescriptor.TYPE_SINT32: _INT32,
    FieldDescriptor.TYPE_SFIXED32: _INT32,
    FieldDescriptor.TYPE_UINT32: _UINT32,
    FieldDescriptor.TYPE_FIXED32: _UINT32,
    FieldDescriptor.TYPE_INT64: _INT64,
    FieldDescriptor.TYPE_SINT64: _INT64,
    FieldDescriptor.TYPE_SFIXED64: _INT64,
    FieldDescriptor.TYPE_UINT64: _UINT64,
    FieldDescriptor.TYPE_FIXED64: _UINT64,
}
_WRAPPERS = {
    "google.protobuf.BoolValue": FieldDescriptor.TYPE_BOOL,
    "google.protobuf.StringValue": FieldDescriptor.TYPE_STRING,
    "google.protobuf.BytesValue": FieldDescriptor.TYPE_BYTES,
    "google.protobuf.Int32Value": FieldDescriptor.TYPE_INT32,
    "google.protobuf.UInt32Value": FieldDescriptor.TYPE_UINT32,
    "google.protobuf.Int64Value": FieldDescriptor.TYPE_INT64,
    "google.protobuf.UInt64Value": FieldDescriptor.TYPE_UINT64,
    "google.protobuf.FloatValue": FieldDescriptor.TYPE_FLOAT,
    "google.protobuf.DoubleValue": FieldDescriptor.TYPE_DOUBLE,
}


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _shorten(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_duration(text: str) -> str | None:
    """A Go-style duration ('1h30m', '0.5s', '30ms') as proto3 JSON ('5400s'); None if malformed.

    As in Go, a duration is at most 2^63-1 nanoseconds (about 292 years).
    """
    if len(text) > _MAX_DURATION_TEXT:
        return None  # no real duration is this long; the pattern below would backtrack on it
    match = _DURATION.match(text)
    if not match:
        return None
    nanos = 0
    for number, unit in _DURATION_PART.findall(text):
        whole, _, fraction = number.partition(".")
        scale = _UNIT_NANOS[unit]
        nanos += int(whole or 0) * scale
        if fraction:
            nanos += int(fraction) * scale // 10 ** len(fraction)
    if nanos > _MAX_DURATION_NANOS:
        return None
    sign = "-" if match.group(1) == "-" and nanos else ""
    seconds, rest = divmod(nanos, 1_000_000_000)
    return f"{sign}{seconds}.{rest:09d}s" if rest else f"{sign}{seconds}s"


def check_message(
    value: Any, descriptor: Descriptor, path: FieldPath, out: ValidationResult
) -> Any:
    """Adds a problem to `out` for every field of `value` that `descriptor` does not allow.

    Returns the value normalized for json_format.ParseDict (meaningful only when `out` is ok).
    """
    if not isinstance(value, dict):
        out.error(path, f"expected an object ({descriptor.name}), got {type_name(value)}")
        return value
    value = replace_removed(value, descriptor.full_name, path, out)
    normalized = {}
    fields = {f.json_name: f for f in descriptor.fields}
    fields.update({f.name: f for f in descriptor.fields})
    oneofs_seen: dict[str, str] = {}
    for key, item in value.items():
        field_path = path / str(key)
        field = fields.get(key)
        if field is None:
            known = ", ".join(sorted(f.json_name for f in descriptor.fields))
            out.error(field_path, f"unknown field {key!r} of {descriptor.name} (known: {known})")
            continue
        oneof = field.containing_oneof
        if oneof is not None and item is not None:
            # Proto3 `optional` fields sit in a synthetic oneof of their own: no conflict.
            other = oneofs_seen.setdefault(oneof.name, key)
            if other != key:
                out.error(field_path, f"only one of {other!r} and {key!r} may be set")
        if item is None:
            continue  # null means "not set", as in Kubernetes
        if item == {} or item == []:
            out.empty_fields.add(path / field.json_name)
        normalized[key] = _check_field(item, field, field_path, out)
    return normalized


def _is_map(field: FieldDescriptor) -> bool:
    message = field.message_type
    return message is not None and message.GetOptions().map_entry


def _check_field(value: Any, field: FieldDescriptor, path: FieldPath, out: ValidationResult) -> Any:
    if _is_map(field):
        if not isinstance(value, dict):
            out.error(path, f"expected a map, got {type_name(value)}")
            return value
        key_field = field.message_type.fields_by_name["key"]
        value_field = field.message_type.fields_by_name["value"]
        normalized = {}
        for key, item in value.items():
            key_path = path / str(key)
            if not isinstance(key, str | int) or isinstance(key, bool):
                out.error(key_path, f"map keys must be strings, got {type_name(key)}")
            elif key_field.type != FieldDescriptor.TYPE_STRING:
                problem = _check_scalar(str(key), key_field.type)
                if problem:
                    out.error(key_path, f"invalid map key: {problem}")
            normalized[str(key)] = _check_value(item, value_field, key_path, out)
        return normalized
    if field.is_repeated:
        if not isinstance(value, list):
            out.error(path, f"expected a list, got {type_name(value)}")
            return value
        return [_check_value(item, field, path / i, out) for i, item in enumerate(value)]
    return _check_value(value, field, path, out)


def _check_value(value: Any, field: FieldDescriptor, path: FieldPath, out: ValidationResult) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return _check_message_value(value, field.message_type, path, out)
    if field.type == FieldDescriptor.TYPE_ENUM:
        names = [v.name for v in field.enum_type.values]
        numbers = {v.number for v in field.enum_type.values}
        if isinstance(value, str) and value in names:
            return value
        if isinstance(value, int) and not isinstance(value, bool) and value in numbers:
            return value
        out.error(path, f"invalid value {value!r}: expected one of {', '.join(names)}")
        return value
    problem = _check_scalar(value, field.type)
    if problem:
        out.error(path, problem)
    return value


def _check_message_value(value: Any, descriptor: Descriptor, path: FieldPath, out) -> Any:
    name = descriptor.full_name
    if name == "google.protobuf.Duration":
        canonical = parse_duration(value) if isinstance(value, str) else None
        if canonical is None:
            out.error(
                path,
                f"malformed duration {_shorten(value)}: write a number with a unit, like '1.5s' "
                "or '100ms', at most 2562047h",
            )
            return value
        return canonical
    if name == "google.protobuf.Timestamp":
        if not isinstance(value, str):
            out.error(path, f"expected an RFC 3339 timestamp string, got {type_name(value)}")
    elif name in _WRAPPERS:
        problem = _check_scalar(value, _WRAPPERS[name])
        if problem:
            out.error(path, problem)
    elif name == "google.protobuf.Struct":
        if not isinstance(value, dict):
            out.error(path, f"expected an object, got {type_name(value)}")
    elif name == "google.protobuf.ListValue":
        if not isinstance(value, list):
            out.error(path, f"expected a list, got {type_name(value)}")
    elif name == "google.protobuf.Value":
        pass  # any JSON value
    elif name == "google.protobuf.Any":
        if not isinstance(value, dict) or "@type" not in value:
            out.error(path, "expected an object with an '@type'")
    else:
        return check_message(value, descriptor, path, out)
    return value


def _check_scalar(value: Any, kind: int) -> str | None:
    if kind == FieldDescriptor.TYPE_BOOL:
        return None if isinstance(value, bool) else f"expected a boolean, got {type_name(value)}"
    if kind == FieldDescriptor.TYPE_STRING:
        return None if isinstance(value, str) else f"expected a string, got {type_name(value)}"
    if kind == FieldDescriptor.TYPE_BYTES:
        return None if isinstance(value, str) else f"expected base64 text, got {type_name(value)}"
    if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected a number, got {type_name(value)}"
        return "expected a finite number" if not math.isfinite(value) else None
    low, high = _INT_RANGES[kind]
    number = value
    if isinstance(value, str):
        # proto3 JSON carries integers as strings too (64-bit ones always).
        if not _INTEGER_TEXT.match(value):
            return f"expected an integer, got {_shorten(value)}"
        number = int(value)
    if isinstance(number, bool) or not isinstance(number, int):
        return f"expected an integer, got {type_name(value)}"
    if not low <= number <= high:
        return f"{number} is out of range [{low}, {high}]"
    return None
