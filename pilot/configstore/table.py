"""Server-side printing: the Table `kubectl get` asks for, and metadata-only views.

    Accept: application/json;as=Table;v=v1;g=meta.k8s.io           (kubectl get)
    Accept: application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io

A Table has a Name column, then the kind's printer columns (kinds.yaml, Istio's
additionalPrinterColumns; Age alone when a kind declares none), each cell worded as the API
server words a CRD's: strings as they are, lists and objects as compact JSON, dates as an age
(`5m`, `2d3h`). Each row carries the object's metadata (includeObject=Metadata, the default),
the whole object (Object) or nothing (None).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from pilot.configstore import printers, status
from pkg.config.kinds import KindSchema, PrinterColumn

_META_GROUP = "meta.k8s.io"
_AS = ("Table", "PartialObjectMetadata", "PartialObjectMetadataList")
_AGE = PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp")
_NAME = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "The object's name, unique in its namespace.",
    "priority": 0,
}
_PATH_PART = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


@dataclasses.dataclass(frozen=True)
class View:
    kind: str  # Table | PartialObjectMetadata | PartialObjectMetadataList
    version: str  # v1 | v1beta1 (meta.k8s.io)
    include_object: str  # None | Metadata | Object


def negotiate(request: web.Request) -> View | None:
    """The view the client asks for before plain JSON, or None for the objects themselves."""
    for media in request.headers.get("Accept", "").split(","):
        parts = [p.strip() for p in media.split(";")]
        params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        wanted = params.get("as")
        if (
            wanted in _AS
            and params.get("g") == _META_GROUP
            and params.get("v") in ("v1", "v1beta1")
        ):
            include = request.query.get("includeObject", "Metadata")
            if include not in ("None", "Metadata", "Object"):
                raise status.bad_request(
                    f'includeObject: Unsupported value: "{include}": supported values: '
                    '"None", "Metadata", "Object"'
                )
            return View(wanted, params["v"], include)
        if parts[0]:
            return None  # a plain type comes first: the client prefers it
    return None


def table(
    schema: KindSchema,
    objects: Iterable[dict[str, Any]],
    view: View,
    resource_version: str,
    *,
    headers: bool = True,
) -> dict[str, Any]:
    columns = list(schema.columns) or [_AGE]
    out: dict[str, Any] = {
        "kind": "Table",
        "apiVersion": f"{_META_GROUP}/{view.version}",
        "metadata": {"resourceVersion": resource_version},
    }
    if headers:
        out["columnDefinitions"] = [_NAME] + [
            {
                "name": c.name,
                "type": c.type,
                "format": c.format,
                "description": c.description,
                "priority": c.priority,
            }
            for c in columns
        ]
    out["rows"] = [_row(obj, columns, view) for obj in objects]
    return out


def partial(obj: dict[str, Any], view: View) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"{_META_GROUP}/{view.version}",
        "metadata": obj["metadata"],
    }


def partial_list(
    objects: Iterable[dict[str, Any]], view: View, resource_version: str
) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadataList",
        "apiVersion": f"{_META_GROUP}/{view.version}",
        "metadata": {"resourceVersion": resource_version},
        "items": [partial(o, view) for o in objects],
    }


def _row(obj: dict[str, Any], columns: list[PrinterColumn], view: View) -> dict[str, Any]:
    row: dict[str, Any] = {"cells": [obj["metadata"]["name"]] + [cell(obj, c) for c in columns]}
    if view.include_object == "Object":
        row["object"] = obj
    elif view.include_object == "Metadata":
        row["object"] = partial(obj, view)
    return row


def cell(obj: dict[str, Any], column: PrinterColumn) -> Any:
    if column.printer:
        return printers.PRINTERS[column.printer](obj)
    found, value = _find(obj, column.json_path)
    if not found:
        return None
    if column.type == "date":
        return age(value) if isinstance(value, str) else None
    if column.type == "string":
        return value if isinstance(value, str) else _compact(value)
    if column.type == "integer":
        return (
            int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )
    if column.type == "number":
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if column.type == "boolean":
        return value if isinstance(value, bool) else None
    return _compact(value)


def _find(obj: Any, path: str) -> tuple[bool, Any]:
    """A simple JSONPath (`.spec.hosts`, `.spec.ports[0].name`), as CRD columns use."""
    current = obj
    for key, index in _PATH_PART.findall(path):
        if key:
            if not isinstance(current, dict) or key not in current:
                return False, None
            current = current[key]
        else:
            if not isinstance(current, list) or int(index) >= len(current):
                return False, None
            current = current[int(index)]
    return True, current


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def age(timestamp: str, now: datetime.datetime | None = None) -> str:
    """How long ago, as kubectl shows it: 45s, 5m3s, 3h12m, 2d3h, 1y20d."""
    try:
        then = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    now = now or datetime.datetime.now(datetime.UTC)
    return human_duration(int((now - then).total_seconds()))


def human_duration(seconds: int) -> str:
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"
