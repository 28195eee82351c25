"""Mixer's templates: the shapes of the instances adapters receive.

An `instance` resource (`compiledTemplate: metric`, `params: {...}`) maps attributes to a
template's fields with expressions; the runtime evaluates them per request and hands the
adapter one of the dataclasses below. `FIELDS` says what type each field's expression
must have, so instances are type-checked when config is loaded (Istio 1.x templates:
mixer/template/*/template.proto).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Mapping
from typing import Any


class Variety(enum.Enum):
    CHECK = "check"
    REPORT = "report"
    QUOTA = "quota"


class FieldKind(enum.Enum):
    STRING = "string"  # an expression of type STRING
    VALUE = "value"  # an expression of any type
    MAP_OF_VALUES = "map_of_values"  # a map of name -> expression of any type
    TIMESTAMP = "timestamp"


@dataclasses.dataclass(frozen=True)
class CheckNothing:
    name: str


@dataclasses.dataclass(frozen=True)
class ListEntry:
    name: str
    value: str


@dataclasses.dataclass(frozen=True)
class Quota:
    name: str
    dimensions: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Metric:
    name: str
    value: Any
    dimensions: Mapping[str, Any]
    monitored_resource_type: str = ""
    monitored_resource_dimensions: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class LogEntry:
    name: str
    variables: Mapping[str, Any]
    timestamp: datetime.datetime | None = None
    severity: str = ""
    monitored_resource_type: str = ""
    monitored_resource_dimensions: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Template:
    name: str
    variety: Variety
    instance_type: type
    fields: Mapping[str, FieldKind]  # the params an instance may set
    required: frozenset[str] = frozenset()


TEMPLATES: Mapping[str, Template] = {
    t.name: t
    for t in (
        Template("checknothing", Variety.CHECK, CheckNothing, {}),
        Template(
            "listentry", Variety.CHECK, ListEntry, {"value": FieldKind.STRING}, frozenset({"value"})
        ),
        Template("quota", Variety.QUOTA, Quota, {"dimensions": FieldKind.MAP_OF_VALUES}),
        Template(
            "metric",
            Variety.REPORT,
            Metric,
            {
                "value": FieldKind.VALUE,
                "dimensions": FieldKind.MAP_OF_VALUES,
                "monitored_resource_type": FieldKind.STRING,
                "monitored_resource_dimensions": FieldKind.MAP_OF_VALUES,
            },
            frozenset({"value"}),
        ),
        Template(
            "logentry",
            Variety.REPORT,
            LogEntry,
            {
                "variables": FieldKind.MAP_OF_VALUES,
                "timestamp": FieldKind.TIMESTAMP,
                "severity": FieldKind.STRING,
                "monitored_resource_type": FieldKind.STRING,
                "monitored_resource_dimensions": FieldKind.MAP_OF_VALUES,
            },
        ),
    )
}
