"""Kubernetes' own schemas of its built-in kinds, as the `kubernetes-validate` package ships them.

The package (pinned in requirements.lock) carries Kubernetes' OpenAPI definitions as JSON
Schema, one file per kind plus `_definitions.json` (every model, `io.k8s.api.core.v1.Pod` ...),
in a strict form that refuses unknown fields. This module reads them once and offers what the
mesh needs of them:

- `validate(document)`: every problem of one object, with the dotted path of the field (what
  the API server checks before it stores an object, structurally);
- `model(name)` and `node(...)` walking: the schema of any field, with Kubernetes' patch
  metadata (`x-kubernetes-patch-strategy`, `-patch-merge-key`, `-list-type`) for strategic
  merge patches, and the definitions the store's OpenAPI documents publish.

Checks that are Kubernetes' code rather than its schemas (name formats, port ranges, immutable
fields) are the store's (pilot/configstore/strategy.py).
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import json
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import referencing
import referencing.jsonschema

from pkg.config.validation.result import FieldPath, Problem

# The Kubernetes release whose schemas are used: the newest the pinned package carries.
KUBERNETES_VERSION = "1.37.0"
_DIR = f"v{KUBERNETES_VERSION}-local-strict"
_DEFS_PREFIX = "/api/_definitions.json#/$defs/"
_LOCAL_PREFIX = "#/$defs/"

Schema = dict[str, Any]


@functools.cache
def _package_file(name: str) -> Any:
    root = importlib.resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")
    return json.loads(root.joinpath(_DIR, name).read_text())


@functools.cache
def definitions() -> Mapping[str, Schema]:
    """Every model by its OpenAPI name (`io.k8s.api.core.v1.Service`), `$ref`s local to it."""
    return _package_file("_definitions.json")["$defs"]  # type: ignore[no-any-return]


def model(name: str) -> Schema:
    """One model (a copy): raises KeyError for a name Kubernetes does not define."""
    return copy.deepcopy(definitions()[name])


def model_of(api_version: str, kind: str) -> str:
    """The OpenAPI name of a kind (`apps/v1` Deployment -> `io.k8s.api.apps.v1.Deployment`)."""
    group, _, version = api_version.rpartition("/")
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind", ()):
            if (gvk["group"], gvk["version"], gvk["kind"]) == (group, version, kind):
                return name
    raise KeyError(f"Kubernetes defines no kind {kind} at {api_version}")


def ref_name(ref: str) -> str:
    """`#/$defs/io.k8s.api.core.v1.PodSpec` (or the file form) -> `io.k8s.api.core.v1.PodSpec`."""
    for prefix in (_DEFS_PREFIX, _LOCAL_PREFIX):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    raise ValueError(f"not a reference to a Kubernetes model: {ref}")


def resolve(schema: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A schema with its `$ref` followed (the field's own keys, such as patch metadata, kept)."""
    if not schema:
        return {}
    seen = 0
    out: dict[str, Any] = dict(schema)
    while "$ref" in out and seen < 32:
        target = definitions()[ref_name(out.pop("$ref"))]
        out = {**target, **out}
        seen += 1
    return out


def field(schema: Mapping[str, Any] | None, name: str) -> Mapping[str, Any]:
    """The schema of an object's field `name`: its own keys (patch metadata) over its type's."""
    resolved = resolve(schema)
    properties = resolved.get("properties") or {}
    if name in properties:
        return {**resolve(properties[name]), **_patch_keys(properties[name])}
    extra = resolved.get("additionalProperties")
    if isinstance(extra, dict):
        return resolve(extra)
    return {}


def items(schema: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The schema of a list's elements."""
    return resolve(resolve(schema).get("items"))


def _patch_keys(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k.startswith("x-kubernetes-")}


@functools.cache
def _validator(model_name: str) -> jsonschema.protocols.Validator:
    # The package's per-kind files say "apiVersion must be exactly this" (an enum); the object
    # model from the definitions says the rest. Both, with references resolved in the package.
    defs_resource = referencing.Resource.from_contents(
        _package_file("_definitions.json"), default_specification=referencing.jsonschema.DRAFT202012
    )
    registry: referencing.Registry = referencing.Registry().with_resource(
        "/api/_definitions.json", defs_resource
    )
    schema = {"$ref": f"{_DEFS_PREFIX}{model_name}"}
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate(document: Mapping[str, Any], model_name: str) -> list[Problem]:
    """What is wrong with `document` as a `model_name`, in Kubernetes' terms, field by field."""
    problems = []
    for error in _validator(model_name).iter_errors(document):
        where = _path(error.absolute_path)
        if error.validator == "additionalProperties":
            # One problem per unknown field, named whole, as the API server's strict decoding.
            for name in sorted(_unexpected(error)):
                path = str(FieldPath(where) / name)
                problems.append(Problem(path, f'unknown field "{path}"'))
            continue
        problems.append(Problem(where, _message(error)))
    return sorted(problems, key=lambda p: p.path)


def _path(parts: Any) -> str:
    path = FieldPath("")
    for part in parts:
        path = path / part
    return str(path)


_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "object": "an object",
    "array": "a list",
    "null": "null",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def _message(error: jsonschema.ValidationError) -> str:
    """jsonschema's finding, in the words the API server uses for the same mistake."""
    match error.validator:
        case "type":
            wanted = error.validator_value
            names = [wanted] if isinstance(wanted, str) else list(wanted)
            shown = " or ".join(_TYPE_NAMES.get(n, n) for n in names if n != "null")
            return f"Invalid value: {_json_type(error.instance)}: must be {shown}"
        case "oneOf" | "anyOf":
            # Kubernetes' only unions here: IntOrString and Quantity.
            return f"Invalid value: {_json_type(error.instance)}: must be an integer or a string"
        case "required":
            missing = str(error.message).split("'")[1] if "'" in error.message else ""
            return f"{missing}: Required value" if missing else "Required value"
        case "enum":
            allowed = ", ".join(json.dumps(v) for v in error.validator_value if v is not None)
            return f"Unsupported value: {json.dumps(error.instance)}: supported values: {allowed}"
        case "format":
            return f"Invalid value: {json.dumps(error.instance)}: must be a {error.validator_value}"
    return str(error.message)


def _unexpected(error: jsonschema.ValidationError) -> Iterator[str]:
    instance = error.instance if isinstance(error.instance, dict) else {}
    schema = error.schema if isinstance(error.schema, dict) else {}
    known = set(schema.get("properties") or {})
    for key in instance:
        if key not in known:
            yield str(key)
