"""What the Kubernetes API server checks of a CustomResourceDefinition before it takes one.

The Kubernetes schemas (kubernetes-validate) only say a CRD has the right fields; the API
server also demands that each version's `openAPIV3Schema` be *structural* (apiextensions'
"Specifying a structural schema") and that the names, versions and printer columns agree.
A CRD that fails here is refused by a real cluster with 422, so the install is checked here
first. Each problem names its path: `spec.versions[0].schema.openAPIV3Schema.properties...`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

_TYPES = {"object", "array", "string", "integer", "number", "boolean"}
_FORBIDDEN = ("$ref", "$schema", "id", "definitions", "dependencies", "additionalItems",
              "patternProperties")  # fmt: skip
# Inside allOf/anyOf/oneOf/not a structural schema only constrains values further.
_NOT_IN_JUNCTORS = ("description", "type", "default", "additionalProperties", "nullable",
                    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource",
                    "x-kubernetes-int-or-string")  # fmt: skip
_JUNCTORS = ("allOf", "anyOf", "oneOf")
_INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]
_COLUMN_TYPES = {"integer", "number", "string", "boolean", "date"}
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_VERSION = re.compile(r"^v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$")


def schema_problems(schema: Any, path: str = "openAPIV3Schema") -> list[str]:
    """Why `schema` is not a structural CRD schema (empty when it is)."""
    if not isinstance(schema, Mapping):
        return [f"{path}: must be an object"]
    problems = list(_node(schema, path, in_junctor=False))
    if schema.get("type") != "object":
        problems.append(f"{path}.type: the root must be of type object")
    metadata = (schema.get("properties") or {}).get("metadata")
    if isinstance(metadata, Mapping):
        problems += _metadata(metadata, f"{path}.properties.metadata")
    return problems


def crd_problems(crd: Mapping[str, Any]) -> list[str]:
    """Why the API server would refuse this CustomResourceDefinition (empty: it would not)."""
    spec, problems = crd.get("spec") or {}, []
    names, group = spec.get("names") or {}, spec.get("group", "")
    if crd.get("metadata", {}).get("name") != f"{names.get('plural')}.{group}":
        problems.append("metadata.name: must be spec.names.plural + '.' + spec.group")
    if "." not in group:
        problems.append(f"spec.group: {group!r} should be a domain with at least one dot")
    for key in ("plural", "singular", "kind", "listKind"):
        value = names.get(key, "")
        if key in ("plural", "singular") and value and not _DNS1035.match(value):
            problems.append(f"spec.names.{key}: {value!r} must be a lowercase DNS-1035 label")
        if key == "kind" and not value:
            problems.append("spec.names.kind: required")
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        problems.append(f"spec.scope: {spec.get('scope')!r} is not Namespaced or Cluster")
    versions = spec.get("versions") or []
    if not versions:
        problems.append("spec.versions: must have at least one version")
    if [v.get("storage") for v in versions].count(True) != 1:
        problems.append("spec.versions: exactly one version must be the storage version")
    seen: set[str] = set()
    for index, version in enumerate(versions):
        where, name = f"spec.versions[{index}]", version.get("name", "")
        if name in seen:
            problems.append(f"{where}.name: {name!r} appears twice")
        seen.add(name)
        if not _DNS1035.match(name) or not _VERSION.match(name):
            problems.append(f"{where}.name: {name!r} is not a Kubernetes version (v1beta2...)")
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if schema is None:
            problems.append(f"{where}.schema.openAPIV3Schema: required")
        else:
            problems += schema_problems(schema, f"{where}.schema.openAPIV3Schema")
        for column_index, column in enumerate(version.get("additionalPrinterColumns") or []):
            at = f"{where}.additionalPrinterColumns[{column_index}]"
            if column.get("type") not in _COLUMN_TYPES:
                problems.append(f"{at}.type: {column.get('type')!r} is not a column type")
            if not str(column.get("jsonPath", "")).startswith("."):
                problems.append(f"{at}.jsonPath: must be a simple JSON path starting with '.'")
    return problems


def _node(schema: Mapping[str, Any], path: str, *, in_junctor: bool) -> Iterator[str]:
    for key in _FORBIDDEN:
        if key in schema:
            yield f"{path}.{key}: not allowed in a structural schema"
    if schema.get("uniqueItems") is True:
        yield f"{path}.uniqueItems: cannot be true (sets are x-kubernetes-list-type: set)"
    if schema.get("x-kubernetes-preserve-unknown-fields") is False:
        yield f"{path}.x-kubernetes-preserve-unknown-fields: must be true or undefined"
    if in_junctor:
        for key in _NOT_IN_JUNCTORS:
            if key in schema and not (key == "type" and _is_int_or_string_branch(schema)):
                yield f"{path}.{key}: must not be set inside allOf, anyOf, oneOf or not"
    else:
        yield from _typed(schema, path)
    if "properties" in schema and "additionalProperties" in schema:
        yield f"{path}: properties and additionalProperties are mutually exclusive"
    if schema.get("additionalProperties") is False:
        yield f"{path}.additionalProperties: false is not allowed"
    for name, sub in (schema.get("properties") or {}).items():
        yield from _child(sub, f"{path}.properties.{name}", in_junctor)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), Mapping):
            yield from _child(schema[key], f"{path}.{key}", in_junctor)
    for junctor in _JUNCTORS:
        for index, sub in enumerate(schema.get(junctor) or []):
            yield from _child(sub, f"{path}.{junctor}[{index}]", True)
    if isinstance(schema.get("not"), Mapping):
        yield from _child(schema["not"], f"{path}.not", True)
    if not in_junctor:
        yield from _junctor_fields(schema, path)


def _child(sub: Any, path: str, in_junctor: bool) -> Iterator[str]:
    if isinstance(sub, Mapping):
        yield from _node(sub, path, in_junctor=in_junctor)
    else:
        yield f"{path}: must be a schema object"


def _typed(schema: Mapping[str, Any], path: str) -> Iterator[str]:
    kind = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        if kind:
            yield f"{path}.type: must be empty with x-kubernetes-int-or-string"
        any_of = schema.get("anyOf")
        if any_of is not None and any_of != _INT_OR_STRING:
            yield f"{path}.anyOf: with x-kubernetes-int-or-string it must be {_INT_OR_STRING}"
        return
    if not kind:
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            yield f"{path}.type: must not be empty (structural schemas type every node)"
        return
    if kind not in _TYPES:
        yield f"{path}.type: {kind!r} is not one of {sorted(_TYPES)}"
    if kind == "array" and "items" not in schema:
        yield f"{path}.items: must be specified for an array"
    if kind != "object" and ("properties" in schema or "additionalProperties" in schema):
        yield f"{path}: properties are only for type object"
    if "enum" in schema and not all(_has_type(value, kind) for value in schema["enum"]):
        yield f"{path}.enum: every value must be of type {kind}"


def _junctor_fields(schema: Mapping[str, Any], path: str) -> Iterator[str]:
    """A field named inside a junctor must be specified outside it too."""
    outside = set((schema.get("properties") or {}).keys())
    branches = [b for j in _JUNCTORS for b in schema.get(j) or []]
    if isinstance(schema.get("not"), Mapping):
        branches.append(schema["not"])
    for branch in branches:
        if not isinstance(branch, Mapping):
            continue
        for name in (branch.get("properties") or {}).keys() - outside:
            yield f"{path}.properties.{name}: named inside a junctor, so must be outside too"
        if "items" in branch and "items" not in schema:
            yield f"{path}.items: named inside a junctor, so must be outside too"


def _is_int_or_string_branch(schema: Mapping[str, Any]) -> bool:
    return dict(schema) in _INT_OR_STRING


def _metadata(schema: Mapping[str, Any], path: str) -> Iterator[str]:
    # The API server owns ObjectMeta's schema; a CRD may only restrict name and generateName.
    for key in schema:
        if key not in ("type", "properties", "description"):
            yield f"{path}.{key}: only name and generateName may be restricted in metadata"
    for name, sub in (schema.get("properties") or {}).items():
        if name not in ("name", "generateName"):
            yield f"{path}.properties.{name}: only name and generateName may be restricted"
        elif isinstance(sub, Mapping) and sub.get("type", "string") != "string":
            yield f"{path}.properties.{name}.type: must be string"


def _has_type(value: Any, kind: str) -> bool:
    match kind:
        case "string":
            return isinstance(value, str)
        case "boolean":
            return isinstance(value, bool)
        case "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        case "number":
            return isinstance(value, int | float) and not isinstance(value, bool)
        case "object":
            return isinstance(value, dict)
        case "array":
            return isinstance(value, list)
    return True
