"""The simplest attribute bag: a mapping of names to values, for tests and tools.

Mixer's own bags (with reference tracking) live with Mixer; any object with the same two
methods can be evaluated against.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class DictBag:
    """Attributes from a mapping; a name mapped to None counts as absent."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self._values: Mapping[str, Any] = values or {}

    def get(self, name: str) -> tuple[Any, bool]:
        value = self._values.get(name)
        return value, value is not None

    def map_value(self, name: str, key: str) -> tuple[str, bool]:
        mapping = self._values.get(name)
        if mapping is None:
            return "", False
        value = mapping.get(key)
        return ("", False) if value is None else (value, True)

    def __repr__(self) -> str:
        return f"DictBag({dict(self._values)!r})"
