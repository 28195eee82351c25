"""The OpenAPI documents the store publishes, as a Kubernetes API server publishes its CRDs':

    /openapi/v2                   Swagger 2.0, every kind at every version; protobuf when asked
                                  for it (kubectl validates with it before it sends an object)
    /openapi/v3                   the index: one document per group-version
    /openapi/v3/apis/<g>/<v>      OpenAPI 3.0 of that group-version (kubectl explain, apply)

Schemas come from pkg/config/openapi.py (the protos' descriptors and comments). The paths'
operations say what each verb consumes, so kubectl's client-side apply picks JSON merge patch,
as it does for custom resources. No `fieldValidation` parameter is advertised, so kubectl
validates on its side with the v2 schemas (the store refuses unknown fields anyway).
Documents are built once, on first use, off the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from aiohttp import web

from pilot.configstore import codec, discovery, kubeopenapi, openapiv2pb, paths
from pkg.config import openapi
from pkg.config.kinds import KindSchema, KindSet

# kubectl asks for the old spelling (with @), which is no valid media type to answer with.
V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1"
_PATCH_TYPES = list(codec.PATCH_TYPES)
_ANSWERS = [codec.JSON, codec.YAML]


def add_routes(app: web.Application, kinds: KindSet) -> None:
    app[DOCUMENTS] = Documents(kinds)
    app.router.add_get("/openapi/v2", _v2)
    app.router.add_get("/openapi/v3", _v3_index)
    app.router.add_get("/openapi/v3/apis/{group}/{version}", _v3)
    app.router.add_get("/openapi/v3/api/{version}", _v3)


async def _v2(request: web.Request) -> web.Response:
    documents = request.app[DOCUMENTS]
    if "application/com.github.proto-openapi.spec.v2" in request.headers.get("Accept", ""):
        body = await documents.get("v2-protobuf")
        return web.Response(body=body, headers={"Content-Type": V2_PROTOBUF})
    return web.json_response(await documents.get("v2"))


async def _v3_index(request: web.Request) -> web.Response:
    return web.json_response(await request.app[DOCUMENTS].get("v3"))


async def _v3(request: web.Request) -> web.Response:
    key = "/".join(
        filter(None, [request.match_info.get("group", ""), request.match_info["version"]])
    )
    found = (await request.app[DOCUMENTS].get("v3-groups")).get(key)
    if found is None:
        raise paths.not_found()
    return web.json_response(found)


class Documents:
    """Every document of one kind set, built together the first time one is asked for."""

    def __init__(self, kinds: KindSet) -> None:
        self._kinds = kinds
        self._built: dict[str, Any] | None = None
        self._lock = asyncio.Lock()

    async def get(self, name: str) -> Any:
        async with self._lock:
            if self._built is None:
                # Compiling the proto sources for their comments takes a moment: not on the loop.
                self._built = await asyncio.to_thread(build, self._kinds)
        return self._built[name]


DOCUMENTS: web.AppKey[Documents] = web.AppKey("openapi", Documents)


def build(kinds: KindSet) -> dict[str, Any]:
    docs = openapi.descriptions([k for k in kinds if not k.is_kubernetes])
    v2 = _v2_document(kinds, docs)
    groups = {
        _gv(group, version): _v3_document(kinds, group, version, docs)
        for group, versions in kinds.groups().items()
        for version in versions
    }
    index = {
        "paths": {
            _prefix(gv): {"serverRelativeURL": f"/openapi/v3/{_prefix(gv)}?hash={_digest(doc)}"}
            for gv, doc in groups.items()
        }
    }
    return {"v2": v2, "v2-protobuf": openapiv2pb.encode(v2), "v3": index, "v3-groups": groups}


def _gv(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def _prefix(gv: str) -> str:
    return f"apis/{gv}" if "/" in gv else f"api/{gv}"


def _digest(doc: Any) -> str:
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest().upper()


def model_name(schema: KindSchema, version: str, kind: str | None = None) -> str:
    """`io.istio.networking.v1.VirtualService`, as the API server names a CRD's model;
    Kubernetes' own kinds by their model's name (`io.k8s.api.apps.v1.Deployment`)."""
    if schema.is_kubernetes:
        return f"{schema.openapi}List" if kind == f"{schema.kind}List" else schema.openapi
    group = ".".join(reversed(schema.group.split("."))) if schema.group else "io.k8s.api.core"
    return f"{group}.{version}.{kind or schema.kind}"


def _gvk(schema: KindSchema, version: str, kind: str | None = None) -> dict[str, str]:
    return {"group": schema.group, "kind": kind or schema.kind, "version": version}


# The metadata types every kind refers to; descriptions are ours.


def _meta_types(ref: str) -> dict[str, Any]:
    string = {"type": "string"}
    strings = {"type": "object", "additionalProperties": {"type": "string"}}
    return {
        f"{_META}.ObjectMeta": {
            "description": "Metadata every persisted object has.",
            "type": "object",
            "properties": {
                "annotations": {**strings, "description": "Unstructured key-value data."},
                "creationTimestamp": {
                    "type": "string",
                    "format": "date-time",
                    "description": "When the object was created; set by the server.",
                },
                "generateName": {
                    **string,
                    "description": "A prefix the server makes a unique name from, when the "
                    "object has no name.",
                },
                "generation": {
                    "type": "integer",
                    "format": "int64",
                    "description": "Counts changes of the spec; set by the server.",
                },
                "labels": {**strings, "description": "Keys and values that selectors match."},
                "managedFields": {
                    "type": "array",
                    "items": {"$ref": f"{ref}{_META}.ManagedFieldsEntry"},
                    "description": "Which manager set which fields; kept by the server.",
                },
                "name": {**string, "description": "Unique in the namespace."},
                "namespace": {**string, "description": "The namespace the name is unique in."},
                "resourceVersion": {
                    **string,
                    "description": "The version of the object's last change; opaque.",
                },
                "uid": {**string, "description": "Unique in time and space; set by the server."},
            },
        },
        f"{_META}.ManagedFieldsEntry": {
            "description": "The fields one manager owns.",
            "type": "object",
            "properties": {
                "apiVersion": string,
                "fieldsType": string,
                "fieldsV1": {"$ref": f"{ref}{_META}.FieldsV1"},
                "manager": string,
                "operation": string,
                "subresource": string,
                "time": {"type": "string", "format": "date-time"},
            },
        },
        f"{_META}.FieldsV1": {"description": "A set of fields, as a trie.", "type": "object"},
        f"{_META}.ListMeta": {
            "description": "Metadata of a list.",
            "type": "object",
            "properties": {
                "continue": string,
                "remainingItemCount": {"type": "integer", "format": "int64"},
                "resourceVersion": string,
            },
        },
    }


def _models(
    schema: KindSchema, version: str, docs: dict[str, str], ref: str
) -> dict[str, dict[str, Any]]:
    if schema.is_kubernetes:
        return kubeopenapi.models([schema], ref)
    meta_ref: dict[str, Any] = {"$ref": f"{ref}{_META}.ObjectMeta"}
    if ref.startswith("#/components"):
        # OpenAPI 3: a reference does not take a description beside it, allOf does.
        meta_ref = {"allOf": [meta_ref], "description": "Standard object metadata."}
    model = openapi.object_schema(schema, docs, metadata=meta_ref)
    name = model_name(schema, version)
    listed = {
        "description": f"A list of {schema.kind}.",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string"},
            "items": {"type": "array", "items": {"$ref": f"{ref}{name}"}},
            "kind": {"type": "string"},
            "metadata": {"$ref": f"{ref}{_META}.ListMeta"},
        },
    }
    return {
        name: {**model, "x-kubernetes-group-version-kind": [_gvk(schema, version)]},
        f"{name}List": {
            **listed,
            "x-kubernetes-group-version-kind": [_gvk(schema, version, f"{schema.kind}List")],
        },
    }


def _operations(schema: KindSchema, version: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Path -> method -> (action, what it consumes, its description)."""
    base = f"/apis/{schema.group}/{version}" if schema.group else f"/api/{version}"
    scoped = (
        f"{base}/namespaces/{{namespace}}/{schema.plural}"
        if schema.namespaced
        else (f"{base}/{schema.plural}")
    )
    kind = schema.kind
    out = {
        scoped: {
            "get": ("list", [], f"list or watch objects of kind {kind}"),
            "post": ("post", list(codec.OBJECT_TYPES), f"create a {kind}"),
            "delete": ("deletecollection", [], f"delete a collection of {kind}"),
        },
        f"{scoped}/{{name}}": {
            "get": ("get", [], f"read the specified {kind}"),
            "put": ("put", list(codec.OBJECT_TYPES), f"replace the specified {kind}"),
            "patch": ("patch", _PATCH_TYPES, f"partially update the specified {kind}"),
            "delete": ("delete", [], f"delete a {kind}"),
        },
    }
    if schema.namespaced:
        out[f"{base}/{schema.plural}"] = {
            "get": ("list", [], f"list or watch objects of kind {kind} in every namespace")
        }
    return out  # type: ignore[return-value]


def _v2_document(kinds: KindSet, docs: dict[str, str]) -> dict[str, Any]:
    ref = "#/definitions/"
    definitions: dict[str, Any] = {
        name: openapi.to_v2(model) for name, model in _meta_types(ref).items()
    }
    path_items: dict[str, Any] = {}
    for schema in kinds:
        for version in schema.served_versions:
            for name, model in _models(schema, version, docs, ref).items():
                definitions[name] = model if schema.is_kubernetes else openapi.to_v2(model)
            for path, methods in _operations(schema, version).items():
                item = path_items.setdefault(path, {})
                for method, (action, consumes, description) in methods.items():
                    item[method] = {
                        "description": description,
                        "operationId": f"{method}{schema.kind}{version}",
                        "consumes": consumes or ["*/*"],
                        "produces": _ANSWERS,
                        "tags": [_gv(schema.group, version)],
                        "x-kubernetes-action": action,
                        "x-kubernetes-group-version-kind": _gvk(schema, version),
                    }
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": f"v1.{discovery.KUBERNETES_MINOR}.0"},
        "paths": dict(sorted(path_items.items())),
        "definitions": dict(sorted(definitions.items())),
    }


_QUERY = {
    "dryRun": "When All, validate and answer without storing anything.",
    "fieldManager": "Who owns the fields this request sets.",
    "force": "Server-side apply only: take fields other managers own.",
    "labelSelector": "Only objects whose labels match.",
    "fieldSelector": "Only objects whose metadata.name or metadata.namespace match.",
    "resourceVersion": "Where a watch starts.",
    "timeoutSeconds": "Ends a watch after this many seconds.",
    "watch": "Stream changes instead of listing.",
}
_QUERY_OF = {
    "list": ["labelSelector", "fieldSelector", "resourceVersion", "timeoutSeconds", "watch"],
    "post": ["dryRun", "fieldManager"],
    "put": ["dryRun", "fieldManager"],
    "patch": ["dryRun", "fieldManager", "force"],
    "delete": ["dryRun"],
    "deletecollection": ["dryRun", "labelSelector", "fieldSelector"],
    "get": [],
}


def _v3_document(kinds: KindSet, group: str, version: str, docs: dict[str, str]) -> dict[str, Any]:
    ref = "#/components/schemas/"
    schemas: dict[str, Any] = dict(_meta_types(ref))
    path_items: dict[str, Any] = {}
    for schema in kinds.at(group, version):
        models = _models(schema, version, docs, ref)
        schemas.update(models)
        name = model_name(schema, version)
        for path, methods in _operations(schema, version).items():
            item = path_items.setdefault(path, {})
            for method, (action, consumes, description) in methods.items():
                answer = f"{name}List" if action in ("list", "deletecollection") else name
                operation: dict[str, Any] = {
                    "tags": [_gv(group, version)],
                    "description": description,
                    "operationId": f"{method}{schema.kind}{version}",
                    "parameters": _parameters(path, action),
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {
                                m: {"schema": {"$ref": f"{ref}{answer}"}} for m in _ANSWERS
                            },
                        }
                    },
                    "x-kubernetes-action": action,
                    "x-kubernetes-group-version-kind": _gvk(schema, version),
                }
                if consumes:
                    body = {"$ref": f"{ref}{name}"} if action != "patch" else {"type": "object"}
                    operation["requestBody"] = {
                        "content": {m: {"schema": body} for m in consumes},
                        "required": True,
                    }
                item[method] = operation
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": f"v1.{discovery.KUBERNETES_MINOR}.0"},
        "paths": dict(sorted(path_items.items())),
        "components": {"schemas": dict(sorted(schemas.items()))},
    }


def _parameters(path: str, action: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
        for p in ("namespace", "name")
        if f"{{{p}}}" in path
    ]
    for name in _QUERY_OF[action]:
        kind = (
            "boolean"
            if name in ("force", "watch")
            else "integer"
            if name == "timeoutSeconds"
            else "string"
        )
        found.append(
            {
                "name": name,
                "in": "query",
                "description": _QUERY[name],
                "schema": {"type": kind, "uniqueItems": True},
            }
        )
    return found
