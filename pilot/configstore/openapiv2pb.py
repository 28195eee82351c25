"""Swagger 2.0 documents as protobuf (api/openapi/v2), the form kubectl downloads.

Each JSON-schema keyword goes to its field; vendor extensions (`x-kubernetes-...`) and enum
members travel as YAML text, as kube-openapi reads them back.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import yaml

from api.openapi.v2 import openapiv2_pb2 as pb

_STRINGS = {
    "$ref": "_ref",
    "format": "format",
    "title": "title",
    "description": "description",
    "pattern": "pattern",
}
_NUMBERS = {"multipleOf": "multiple_of", "maximum": "maximum", "minimum": "minimum"}
_INTEGERS = {
    "maxLength": "max_length",
    "minLength": "min_length",
    "maxItems": "max_items",
    "minItems": "min_items",
    "maxProperties": "max_properties",
    "minProperties": "min_properties",
}
_BOOLEANS = {
    "exclusiveMaximum": "exclusive_maximum",
    "exclusiveMinimum": "exclusive_minimum",
    "uniqueItems": "unique_items",
    "readOnly": "read_only",
}


def encode(document: dict[str, Any]) -> bytes:
    """The document (Swagger 2.0 as JSON data) as an openapi.v2.Document message."""
    out = pb.Document(swagger=document["swagger"])
    out.info.title, out.info.version = document["info"]["title"], document["info"]["version"]
    for path, item in document["paths"].items():
        named = out.paths.path.add(name=path)
        for method, operation in item.items():
            op = getattr(named.value, method)
            op.description = operation.get("description", "")
            op.operation_id = operation.get("operationId", "")
            op.tags.extend(operation.get("tags", []))
            op.consumes.extend(operation.get("consumes", []))
            op.produces.extend(operation.get("produces", []))
            _extensions(op.vendor_extension, operation)
    for name, schema in document["definitions"].items():
        out.definitions.additional_properties.add(name=name, value=_schema(schema))
    return out.SerializeToString()


def _schema(schema: dict[str, Any]) -> pb.Schema:
    out = pb.Schema()
    for key, value in schema.items():
        if key in _STRINGS:
            setattr(out, _STRINGS[key], value)
        elif key in _NUMBERS:
            setattr(out, _NUMBERS[key], float(value))
        elif key in _INTEGERS:
            setattr(out, _INTEGERS[key], int(value))
        elif key in _BOOLEANS:
            setattr(out, _BOOLEANS[key], bool(value))
        elif key == "type":
            out.type.value.append(value)
        elif key == "required":
            out.required.extend(value)
        elif key == "enum":
            out.enum.extend(pb.Any(yaml=_yaml(v)) for v in value)
        elif key in ("default", "example"):
            getattr(out, key).yaml = _yaml(value)
        elif key == "items":
            out.items.schema.append(_schema(value))
        elif key == "additionalProperties":
            if isinstance(value, bool):
                out.additional_properties.boolean = value
            else:
                out.additional_properties.schema.CopyFrom(_schema(value))
        elif key == "properties":
            for name, sub in value.items():
                out.properties.additional_properties.add(name=name, value=_schema(sub))
        elif key == "allOf":
            out.all_of.extend(_schema(s) for s in value)
    _extensions(out.vendor_extension, schema)
    return out


def _extensions(field: Any, source: dict[str, Any]) -> None:
    for key, value in source.items():
        if key.startswith("x-"):
            field.add(name=key, value=pb.Any(yaml=_yaml(value)))


@functools.cache
def _yaml_of(text: str) -> str:
    return yaml.safe_dump(json.loads(text), default_flow_style=False)


def _yaml(value: Any) -> str:
    return _yaml_of(json.dumps(value, sort_keys=True))
