"""Attribute vocabularies (name -> ValueType) from attributemanifest documents.

Reads plain YAML/JSON documents, so that config validation (in api/) can use it without
the typed-resource machinery that itself depends on validation.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from pkg.lang.types import ValueType

MANIFEST_KIND = "attributemanifest"


def from_manifests(documents: Iterable[Mapping[str, Any] | None]) -> dict[str, ValueType]:
    """Every attribute declared by the attributemanifest documents; other kinds are skipped.

    Raises ValueError for an attribute without a known value type, or declared twice with
    two different types.
    """
    types: dict[str, ValueType] = {}
    for document in documents:
        if not document or document.get("kind") != MANIFEST_KIND:
            continue
        attributes = (document.get("spec") or {}).get("attributes") or {}
        for name, info in attributes.items():
            value_type = _value_type(
                name, (info or {}).get("valueType", (info or {}).get("value_type"))
            )
            if types.get(name, value_type) is not value_type:
                raise ValueError(
                    f"attribute {name} declared as both {types[name].name} and {value_type.name}"
                )
            types[name] = value_type
    return types


def _value_type(name: str, raw: object) -> ValueType:
    if raw is None:
        raise ValueError(f"attribute {name} has no value type")
    try:
        value_type = ValueType[raw] if isinstance(raw, str) else ValueType(raw)  # type: ignore[arg-type]
    except (KeyError, ValueError):
        raise ValueError(f"attribute {name}: unknown value type {raw!r}") from None
    if value_type is ValueType.VALUE_TYPE_UNSPECIFIED:
        raise ValueError(f"attribute {name} has no value type")
    return value_type


def load(path: str | pathlib.Path) -> dict[str, ValueType]:
    """The vocabulary of a YAML file of attributemanifests."""
    with open(path, encoding="utf-8") as stream:
        return from_manifests(yaml.safe_load_all(stream))
