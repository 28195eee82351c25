"""OpenAPI schemas of the kinds, generated from their protos' descriptors.

`spec_schema(kind)` is the structural OpenAPI v3 schema of a kind's spec, as Istio's CRDs
declare it: messages are objects of their fields (lowerCamelCase JSON names), enums strings,
repeated fields arrays (atomic), maps objects with additionalProperties, 64-bit integers
int-or-string, google.protobuf well-known types their JSON form (Duration a string, Struct
and Value any JSON). Descriptions are the comments of the .proto sources (protodoc.py).
`object_schema(kind)` is the whole resource, as a CRD's `openAPIV3Schema`; `to_v2` makes the
Swagger 2.0 form kubectl validates with (what a v2 schema cannot say is dropped, as the
Kubernetes API server drops it when it publishes a CRD at /openapi/v2).

No kind is named here: everything comes from the registry and the descriptors.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from pkg.config import protodoc
from pkg.config.kinds import KindSchema

Schema = dict[str, Any]

_INT_OR_STRING: Schema = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "x-kubernetes-int-or-string": True,
}
_ANY_JSON: Schema = {"x-kubernetes-preserve-unknown-fields": True}
_SCALARS: dict[int, Schema] = {
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "minimum": 0, "maximum": 4294967295},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "minimum": 0, "maximum": 4294967295},
    # proto3 JSON writes 64-bit integers as strings and reads either.
    FieldDescriptor.TYPE_INT64: _INT_OR_STRING,
    FieldDescriptor.TYPE_SINT64: _INT_OR_STRING,
    FieldDescriptor.TYPE_SFIXED64: _INT_OR_STRING,
    FieldDescriptor.TYPE_UINT64: _INT_OR_STRING,
    FieldDescriptor.TYPE_FIXED64: _INT_OR_STRING,
}
_WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Duration": {"type": "string"},
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Struct": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    "google.protobuf.Value": _ANY_JSON,
    "google.protobuf.ListValue": {"type": "array", "items": _ANY_JSON},
    "google.protobuf.Any": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.BoolValue": {"type": "boolean", "nullable": True},
    "google.protobuf.StringValue": {"type": "string", "nullable": True},
    "google.protobuf.BytesValue": {"type": "string", "format": "byte", "nullable": True},
    "google.protobuf.Int32Value": {"type": "integer", "format": "int32", "nullable": True},
    "google.protobuf.UInt32Value": {"type": "integer", "minimum": 0, "nullable": True},
    "google.protobuf.Int64Value": {**_INT_OR_STRING, "nullable": True},
    "google.protobuf.UInt64Value": {**_INT_OR_STRING, "nullable": True},
    "google.protobuf.FloatValue": {"type": "number", "format": "float", "nullable": True},
    "google.protobuf.DoubleValue": {"type": "number", "format": "double", "nullable": True},
}
_DESCRIPTIONS = {
    "apiVersion": "The versioned schema of this object (group/version).",
    "kind": "The REST resource this object represents, in CamelCase.",
    "metadata": "Standard object metadata: name, namespace, labels, annotations, and what the "
    "server records (resourceVersion, uid, generation, creationTimestamp, managedFields).",
    "status": "What the control plane reports about the object.",
}


class _Generator:
    def __init__(self, docs: Mapping[str, str]) -> None:
        self._docs = docs
        self._stack: list[str] = []

    def message(self, desc: Descriptor) -> Schema:
        if desc.full_name in _WELL_KNOWN:
            return copy.deepcopy(_WELL_KNOWN[desc.full_name])
        if desc.full_name in self._stack:
            # A message that contains itself: any object below this point (structural schemas
            # cannot recurse, and Istio's CRDs cut it the same way).
            return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        self._stack.append(desc.full_name)
        try:
            properties = {}
            for field in sorted(desc.fields, key=lambda f: f.json_name):
                schema = self.field(field)
                doc = self._docs.get(f"{desc.full_name}.{field.name}")
                if not doc:
                    doc = self._type_doc(field)
                if field.GetOptions().deprecated:
                    doc = f"{doc} Deprecated." if doc else "Deprecated."
                if doc:
                    schema = {"description": doc, **schema}
                properties[field.json_name] = schema
            return {"type": "object", "properties": properties}
        finally:
            self._stack.pop()

    def _type_doc(self, field: FieldDescriptor) -> str | None:
        """An undocumented field is what its (own, not a well-known) type's comment says."""
        kind = field.message_type or field.enum_type
        if kind is None or kind.full_name.startswith("google.protobuf."):
            return None
        return self._docs.get(kind.full_name)

    def field(self, field: FieldDescriptor) -> Schema:
        message = field.message_type
        if message is not None and message.GetOptions().map_entry:
            value = self.value(message.fields_by_name["value"])
            return {"type": "object", "additionalProperties": value}
        value = self.value(field)
        if field.is_repeated:
            return {"type": "array", "items": value}
        return value

    def value(self, field: FieldDescriptor) -> Schema:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            return self.message(field.message_type)
        if field.type == FieldDescriptor.TYPE_ENUM:
            return self.enum(field.enum_type)
        return copy.deepcopy(_SCALARS[field.type])

    def enum(self, desc: EnumDescriptor) -> Schema:
        return {"type": "string", "enum": [v.name for v in desc.values]}


def descriptions(kinds: list[KindSchema]) -> dict[str, str]:
    return protodoc.comments_or_none(k.proto for k in kinds)


def spec_schema(kind: KindSchema, docs: Mapping[str, str] | None = None) -> Schema:
    if docs is None:
        docs = descriptions([kind])
    desc = kind.message_class().DESCRIPTOR
    schema = _Generator(docs).message(desc)
    doc = docs.get(desc.full_name)
    return {"description": doc, **schema} if doc else schema


def object_schema(
    kind: KindSchema,
    docs: Mapping[str, str] | None = None,
    *,
    metadata: Schema | None = None,
) -> Schema:
    """The whole resource; `metadata` defaults to `{type: object}`, as in a CRD (where the API
    server supplies ObjectMeta's schema), or pass a reference to ObjectMeta's."""
    spec = spec_schema(kind, docs)
    description = spec.get("description", "")
    properties = {
        "apiVersion": {"type": "string", "description": _DESCRIPTIONS["apiVersion"]},
        "kind": {"type": "string", "description": _DESCRIPTIONS["kind"]},
        "metadata": metadata or {"type": "object"},
        "spec": spec,
        "status": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "description": _DESCRIPTIONS["status"],
        },
    }
    schema: Schema = {"type": "object", "properties": properties}
    return {"description": description, **schema} if description else schema


def to_v2(schema: Schema) -> Schema:
    """The Swagger 2.0 form: no nullable, anyOf or int-or-string type (any value there), and an
    object that keeps unknown fields takes any value (so kubectl does not flag its fields)."""
    if not isinstance(schema, dict):
        return schema
    out: Schema = {}
    for key, value in schema.items():
        if key in ("nullable", "anyOf", "oneOf", "not", "x-kubernetes-validations"):
            continue
        if key == "properties":
            out[key] = {name: to_v2(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = to_v2(value)
        elif key == "allOf":
            out.update(to_v2(value[0]))  # our only allOf: one $ref with a description beside
        else:
            out[key] = value
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        out.pop("type", None)
        out.pop("properties", None)
        out.pop("items", None)
    return out
