"""Kubernetes' own kinds in the store's OpenAPI documents, as a Kubernetes API server publishes them.

Their models are Kubernetes' definitions (pkg/config/kubeschema.py: `io.k8s.api.core.v1.Pod`
and every model it refers to), turned from the JSON Schema they are shipped as back into the
OpenAPI form the API server serves: one type per field (the shipped `[type, "null"]` pairs
are the JSON decoder's leniency, not the model), IntOrString and Quantity as strings with their
format, references to `#/definitions/` (v2) or `#/components/schemas/` (v3), and the patch
metadata (`x-kubernetes-patch-merge-key`, ...) kubectl reads kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pkg.config import kubeschema
from pkg.config.kinds import KindSchema

Schema = dict[str, Any]
_UNIONS = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": "int-or-string",
    "io.k8s.apimachinery.pkg.api.resource.Quantity": "quantity",
}
_DROPPED = ("$schema", "$id", "additionalProperties")


def models(schemas: Iterable[KindSchema], ref: str) -> dict[str, Schema]:
    """Every model the kinds need (themselves, their lists and all they refer to), by name."""
    wanted: list[str] = []
    for schema in schemas:
        wanted.append(schema.openapi)
        if f"{schema.openapi}List" in kubeschema.definitions():
            wanted.append(f"{schema.openapi}List")
    out: dict[str, Schema] = {}
    while wanted:
        name = wanted.pop()
        if name in out:
            continue
        converted, refs = _convert(kubeschema.definitions()[name], ref, name)
        out[name] = converted
        wanted.extend(r for r in refs if r not in out)
    return out


def _convert(schema: Any, ref: str, name: str = "") -> tuple[Any, set[str]]:
    refs: set[str] = set()

    def walk(node: Any, own_name: str = "") -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        if own_name in _UNIONS:
            out: Schema = {"type": "string", "format": _UNIONS[own_name]}
            if "description" in node:
                out["description"] = node["description"]
            return out
        out = {}
        for key, value in node.items():
            if key in _DROPPED and not (key == "additionalProperties" and isinstance(value, dict)):
                continue
            if key == "$ref":
                target = kubeschema.ref_name(value)
                refs.add(target)
                out["$ref"] = f"{ref}{target}"
            elif key == "type":
                types = [value] if isinstance(value, str) else [t for t in value if t != "null"]
                if types:
                    out["type"] = types[0]
            elif key == "enum":
                out["enum"] = [v for v in value if v is not None]
            elif key == "properties":
                out["properties"] = {k: walk(v) for k, v in value.items()}
            elif key in ("oneOf", "anyOf"):
                # Only the two unions above use them: the first non-null type stands for all.
                kinds = [t for option in value for t in _types(option)]
                if kinds:
                    out["type"] = kinds[0]
            else:
                out[key] = walk(value)
        if "$ref" in out and len(out) > 1 and ref.startswith("#/components/"):
            # OpenAPI 3.0 ignores what stands beside a reference: allOf keeps it.
            out = {"allOf": [{"$ref": out.pop("$ref")}], **out}
        return out

    return walk(schema, name), refs


def _types(option: Any) -> list[str]:
    found = option.get("type") if isinstance(option, dict) else None
    if isinstance(found, str):
        return [found] if found != "null" else []
    return [t for t in found or () if t != "null"]
