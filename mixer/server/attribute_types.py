"""Incoming attributes against the manifest: a value of the wrong type is the client's error."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from pkg.lang.types import ValueType

# Decoded values have exact types (the wire field they came in says which), so a type
# lookup is enough: no isinstance, which is slow for Mapping and wrong for bool-as-int.
_PYTHON_TYPES: Mapping[ValueType, type] = {
    ValueType.STRING: str,
    ValueType.DNS_NAME: str,
    ValueType.EMAIL_ADDRESS: str,
    ValueType.URI: str,
    ValueType.INT64: int,
    ValueType.DOUBLE: float,
    ValueType.BOOL: bool,
    ValueType.TIMESTAMP: datetime.datetime,
    ValueType.DURATION: datetime.timedelta,
    ValueType.STRING_MAP: dict,
    ValueType.IP_ADDRESS: bytes,
}


def type_errors(values: Iterable[tuple[str, Any]], types: Mapping[str, ValueType]) -> list[str]:
    """One message per attribute whose value does not have its declared type.

    Attributes no manifest declares are let through: a newer proxy may send more than this
    Mixer knows, and no rule can refer to them.
    """
    problems = []
    for name, value in values:
        declared = types.get(name)
        if declared is None:
            continue
        wanted = _PYTHON_TYPES.get(declared)
        if wanted is not None and type(value) is not wanted:
            problems.append(f"attribute {name} is declared {declared.name}, got {_describe(value)}")
    return problems


def _describe(value: Any) -> str:
    return {
        str: "a string",
        int: "an int64",
        float: "a double",
        bool: "a bool",
        bytes: "bytes",
        datetime.datetime: "a timestamp",
        datetime.timedelta: "a duration",
        dict: "a string map",
    }.get(type(value), type(value).__name__)
