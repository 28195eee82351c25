"""A CustomResourceDefinition for every Istio kind of the registry, as Istio's base chart has.

Every served version carries the same schema (the kinds are the same at each), the stored
one is kinds.yaml's, with Istio's printer columns, short names and categories, and the
status subresource. Kubernetes' own kinds are the API server's, so they get none.
"""

from __future__ import annotations

from typing import Any

from pkg.config import openapi
from pkg.config.kinds import ALL, KindSchema


def istio_kinds() -> list[KindSchema]:
    return [k for k in ALL if k.group.endswith(".istio.io")]


def crd(kind: KindSchema, docs: dict[str, str] | None = None) -> dict[str, Any]:
    schema = openapi.object_schema(kind, docs)
    names: dict[str, Any] = {
        "kind": kind.kind,
        "listKind": f"{kind.kind}List",
        "plural": kind.plural,
        "singular": kind.singular,
    }
    if kind.short_names:
        names["shortNames"] = list(kind.short_names)
    if kind.categories:
        names["categories"] = list(kind.categories)
    columns = [
        {
            "name": c.name,
            "type": c.type,
            "jsonPath": c.json_path,
            **({"description": c.description} if c.description else {}),
            **({"priority": c.priority} if c.priority else {}),
            **({"format": c.format} if c.format else {}),
        }
        for c in kind.columns
    ]
    versions = []
    for version in kind.served_versions:
        entry: dict[str, Any] = {
            "name": version,
            "served": True,
            "storage": version == kind.version,
            "schema": {"openAPIV3Schema": schema},
            "subresources": {"status": {}},
        }
        if columns:
            entry["additionalPrinterColumns"] = columns
        versions.append(entry)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{kind.plural}.{kind.group}",
            "labels": {"app": "istio-py", "chart": "base", "release": "istio"},
        },
        "spec": {"group": kind.group, "names": names, "scope": kind.scope, "versions": versions},
    }


def all_crds() -> list[dict[str, Any]]:
    kinds = istio_kinds()
    docs = openapi.descriptions(kinds)
    return [crd(kind, docs) for kind in kinds]
