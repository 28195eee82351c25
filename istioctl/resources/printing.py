"""How istioctl shows resources: the server's table (as `kubectl get` prints it), or the
objects as the server sent them, in YAML or JSON. No protobuf: showing needs no schema."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pkg.config import yamlstream
from pkg.config.kinds import KindSchema

if TYPE_CHECKING:  # the loader brings validation; `get` needs neither
    from pkg.config.loader import DocumentError


def qualified_name(schema: KindSchema, name: str) -> str:
    """`virtualservice.networking.istio.io/reviews`, as kubectl names what it changed."""
    return f"{schema.kind.lower()}.{schema.group}/{name}"


def table(tables: Sequence[dict[str, Any]], *, all_namespaces: bool) -> str:
    """The rows of the server's Tables (meta.k8s.io/v1) under one header, as kubectl prints
    them: column names in capitals, only priority 0, NAMESPACE first with `-A`."""
    columns = (tables[0].get("columnDefinitions") or []) if tables else []
    shown = [i for i, c in enumerate(columns) if not c.get("priority")]
    rows = [row for t in tables for row in t.get("rows") or []]
    if not rows:
        return ""
    header = ["NAMESPACE"] if all_namespaces else []
    header += [str(columns[i].get("name", "")).upper() for i in shown]
    lines = []
    for row in rows:
        cells = row.get("cells") or []
        line = [_namespace(row)] if all_namespaces else []
        line += [_cell(cells[i] if i < len(cells) else None) for i in shown]
        lines.append(line)
    return grid(header, lines)


def _namespace(row: dict[str, Any]) -> str:
    return str(((row.get("object") or {}).get("metadata") or {}).get("namespace") or "")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def grid(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns three spaces apart, kubectl's table layout."""
    lines = [list(header), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "   ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines
    ]
    return "\n".join(line.rstrip() for line in text) + "\n"


def warning_lines(document: DocumentError) -> str:
    """One `Warning: file: document N (Kind ns/name): field: message` line per warning."""
    where = f"{document.source}: document {document.document}"
    if document.resource:
        where += f" ({document.resource})"
    return "\n".join(
        f"Warning: {where}: {p.path + ': ' if p.path else ''}{p.message}" for p in document.problems
    )


def as_yaml(objects: Sequence[dict[str, Any]]) -> str:
    """One document per object: the output is a file `istioctl apply -f` takes back."""
    return yamlstream.dump_all([shown(o) for o in objects]) if objects else ""


def as_json(objects: Sequence[dict[str, Any]], *, single: bool) -> str:
    if single:
        data = shown(objects[0])
    else:
        data = {
            "apiVersion": "v1",
            "kind": "List",
            "metadata": {"resourceVersion": ""},
            "items": [shown(o) for o in objects],
        }
    return json.dumps(data, indent=4) + "\n"


def shown(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without its managedFields, which kubectl also leaves out by default."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or "managedFields" not in metadata:
        return obj
    return {**obj, "metadata": {k: v for k, v in metadata.items() if k != "managedFields"}}
