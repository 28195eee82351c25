"""How istioctl shows resources: kubectl's short tables, YAML or JSON, and kubectl's ages."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from google.protobuf import message

from pkg.config.kinds import KindSchema
from pkg.config.resource import Resource, dump_yaml

if TYPE_CHECKING:  # the loader brings validation; `get` needs neither
    from pkg.config.loader import DocumentError

_Column = tuple[str, Callable[[message.Message], str]]


def qualified_name(schema: KindSchema, name: str) -> str:
    """`virtualservice.networking.istio.io/reviews`, as kubectl names what it changed."""
    return f"{schema.kind.lower()}.{schema.group}/{name}"


def _list(field: str) -> Callable[[message.Message], str]:
    return lambda spec: json.dumps(list(getattr(spec, field))) if getattr(spec, field) else ""


def _text(field: str) -> Callable[[message.Message], str]:
    return lambda spec: str(getattr(spec, field))


def _enum(field: str) -> Callable[[message.Message], str]:
    # By name, default included: MESH_EXTERNAL is the zero value, yet worth showing.
    def cell(spec: message.Message) -> str:
        enum = spec.DESCRIPTOR.fields_by_name[field].enum_type
        return enum.values_by_number[getattr(spec, field)].name

    return cell


# The columns Istio's CRDs declare (additionalPrinterColumns), before AGE.
_COLUMNS: dict[str, list[_Column]] = {
    "VirtualService": [("GATEWAYS", _list("gateways")), ("HOSTS", _list("hosts"))],
    "DestinationRule": [("HOST", _text("host"))],
    "ServiceEntry": [
        ("HOSTS", _list("hosts")),
        ("LOCATION", _enum("location")),
        ("RESOLUTION", _enum("resolution")),
    ],
    "WorkloadEntry": [("ADDRESS", _text("address"))],
}


def table(resources: Sequence[Resource], *, all_namespaces: bool, now: datetime.datetime) -> str:
    if not resources:
        return ""
    columns = _COLUMNS.get(resources[0].schema.kind, [])
    header = ["NAMESPACE"] if all_namespaces else []
    header += ["NAME", *(title for title, _ in columns), "AGE"]
    rows = []
    for resource in resources:
        meta = resource.metadata
        row = [meta.namespace] if all_namespaces else []
        row += [meta.name, *(cell(resource.spec) for _, cell in columns)]
        row.append(age(meta.creation_timestamp, now))
        rows.append(row)
    return grid(header, rows)


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


def as_yaml(resources: Sequence[Resource]) -> str:
    """One document per resource: the output is a file `istioctl apply -f` takes back."""
    return dump_yaml(list(resources)) if resources else ""


def as_json(resources: Sequence[Resource], *, single: bool) -> str:
    if single:
        data: dict[str, Any] = resources[0].to_dict()
    else:
        data = {
            "apiVersion": "v1",
            "kind": "List",
            "metadata": {"resourceVersion": ""},
            "items": [r.to_dict() for r in resources],
        }
    return json.dumps(data, indent=4) + "\n"


def age(created: str, now: datetime.datetime) -> str:
    if not created:
        return "<unknown>"
    try:
        then = datetime.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.UTC
        )
    except ValueError:
        return "<unknown>"
    return human_duration(int((now - then).total_seconds()))


def human_duration(seconds: int) -> str:
    """kubectl's HumanDuration: precise when recent, coarser as it grows."""
    if seconds < -1:
        return "<invalid>"
    seconds = max(seconds, 0)
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    if years < 8:
        rest = days % 365
        return f"{years}y{rest}d" if rest else f"{years}y"
    return f"{years}y"
