"""Discovery, as kubectl and the clients read it: /version, /api, /apis, /apis/<g>, /apis/<g>/<v>.

Each path answers with and without a trailing slash (the official Python client asks for
`/version/` and `/apis/`). A client that asks for aggregated discovery (Accept
`application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`, as kubectl 1.30+ does)
gets every group, version and resource in one answer; others get the classic documents.
Everything is built from the kind registry: a kind added there is discovered with no code here.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from aiohttp import web

from pilot.configstore import paths
from pkg.config.kinds import KindSchema, KindSet

KINDS: web.AppKey[KindSet] = web.AppKey("kinds", KindSet)
VERBS = ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]
# What the store speaks: the API of this Kubernetes release (server-side apply, aggregated
# discovery v2, OpenAPI v3).
KUBERNETES_MINOR = "32"
_AGGREGATED = ("v2", "v2beta1")


def add_routes(app: web.Application) -> None:
    slash = "{slash:/?}"
    app.router.add_get("/version" + slash, _version)
    app.router.add_get("/api" + slash, _core_versions)
    app.router.add_get("/api/{version:[^/]+}" + slash, _resource_list)
    app.router.add_get("/apis" + slash, _groups)
    app.router.add_get("/apis/{group:[^/]+}" + slash, _group)
    app.router.add_get("/apis/{group:[^/]+}/{version:[^/]+}" + slash, _resource_list)


def _aggregated(request: web.Request) -> str | None:
    """The aggregated-discovery version the client accepts before plain JSON, or None."""
    for media in request.headers.get("Accept", "").split(","):
        params = dict(p.strip().split("=", 1) for p in media.split(";")[1:] if "=" in p)
        if params.get("g") == "apidiscovery.k8s.io" and params.get("as") == "APIGroupDiscoveryList":
            if params.get("v") in _AGGREGATED:
                return params["v"]
        elif media.strip():
            return None
    return None


def _aggregated_response(version: str, items: list[dict[str, Any]]) -> web.Response:
    body = {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": f"apidiscovery.k8s.io/{version}",
        "metadata": {},
        "items": items,
    }
    response = web.json_response(body)
    response.headers["Content-Type"] = (
        f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
    )
    return response


def _discovery_group(kinds: KindSet, group: str, versions: tuple[str, ...]) -> dict[str, Any]:
    meta: dict[str, Any] = (
        {"name": group, "creationTimestamp": None} if group else {"creationTimestamp": None}
    )
    return {
        "metadata": meta,
        "versions": [
            {
                "version": version,
                "resources": [_discovery_resource(s, version) for s in kinds.at(group, version)],
                "freshness": "Current",
            }
            for version in versions
        ],
    }


# A subresource's kind (group, version, kind; None: the parent's) and verbs.
_SUBRESOURCES: dict[str, tuple[tuple[str, str, str] | None, list[str]]] = {
    "status": (None, ["get", "patch", "update"]),
    "scale": (("autoscaling", "v1", "Scale"), ["get", "patch", "update"]),
    "log": (None, ["get"]),
    "exec": (("", "v1", "PodExecOptions"), ["create", "get"]),
    "binding": (("", "v1", "Binding"), ["create"]),
}


def _subresources(schema: KindSchema) -> list[str]:
    implied = ["binding"] if schema.is_kubernetes and schema.kind == "Pod" else []
    return [*schema.subresources, *implied]


def _subresource_kind(schema: KindSchema, name: str, version: str) -> tuple[str, str, str]:
    kind, _ = _SUBRESOURCES[name]
    return kind or (schema.group, version, schema.kind)


def _discovery_resource(schema: KindSchema, version: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resource": schema.plural,
        "responseKind": {"group": schema.group, "version": version, "kind": schema.kind},
        "scope": schema.scope,
        "singularResource": schema.singular,
        "verbs": VERBS,
    }
    if schema.short_names:
        resource["shortNames"] = list(schema.short_names)
    if schema.categories:
        resource["categories"] = list(schema.categories)
    subresources = []
    for name in _subresources(schema):
        group, sub_version, kind = _subresource_kind(schema, name, version)
        subresources.append(
            {
                "subresource": name,
                "responseKind": {"group": group, "version": sub_version, "kind": kind},
                "verbs": _SUBRESOURCES[name][1],
            }
        )
    if subresources:
        resource["subresources"] = subresources
    return resource


async def _version(_: web.Request) -> web.Response:
    return web.json_response(
        {
            "major": "1",
            "minor": KUBERNETES_MINOR,
            "gitVersion": f"v1.{KUBERNETES_MINOR}.0+istio-py-config-store",
            "gitCommit": "",
            "gitTreeState": "",
            "buildDate": "",
            "goVersion": "",
            "compiler": "",
            "platform": "python",
        }
    )


def _server_address(request: web.Request) -> list[dict[str, str]]:
    return [{"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}]


async def _core_versions(request: web.Request) -> web.Response:
    kinds = request.app[KINDS]
    versions = kinds.groups().get("", ())
    aggregated = _aggregated(request)
    if aggregated is not None:
        items = [_discovery_group(kinds, "", versions)] if versions else []
        return _aggregated_response(aggregated, items)
    return web.json_response(
        {
            "kind": "APIVersions",
            "versions": list(versions),
            "serverAddressByClientCIDRs": _server_address(request),
        }
    )


async def _groups(request: web.Request) -> web.Response:
    kinds = request.app[KINDS]
    groups = {g: v for g, v in kinds.groups().items() if g}
    aggregated = _aggregated(request)
    if aggregated is not None:
        items = [_discovery_group(kinds, g, v) for g, v in groups.items()]
        return _aggregated_response(aggregated, items)
    return web.json_response(
        {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [_group_dict(g, v) for g, v in groups.items()],
        }
    )


async def _group(request: web.Request) -> web.Response:
    group = request.match_info["group"]
    versions = request.app[KINDS].groups().get(group) if group else None
    if not versions:
        raise paths.not_found()
    return web.json_response(
        {"kind": "APIGroup", "apiVersion": "v1", **_group_dict(group, versions)}
    )


def _group_dict(group: str, versions: tuple[str, ...]) -> dict[str, Any]:
    listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": listed, "preferredVersion": listed[0]}


async def _resource_list(request: web.Request) -> web.Response:
    group, version = request.match_info.get("group", ""), request.match_info["version"]
    schemas = request.app[KINDS].at(group, version)
    if not schemas:
        raise paths.not_found()
    return web.json_response(
        {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": [r for s in schemas for r in _api_resources(s, version)],
        }
    )


def _api_resource(schema: KindSchema) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "name": schema.plural,
        "singularName": schema.singular,
        "namespaced": schema.namespaced,
        "kind": schema.kind,
        "verbs": VERBS,
    }
    if schema.short_names:
        resource["shortNames"] = list(schema.short_names)
    if schema.categories:
        resource["categories"] = list(schema.categories)
    resource["storageVersionHash"] = storage_version_hash(schema)
    return resource


def _api_resources(schema: KindSchema, version: str) -> list[dict[str, Any]]:
    """The kind's resource, then one entry per subresource (`pods/status`), as Kubernetes lists
    them."""
    found = [_api_resource(schema)]
    for name in _subresources(schema):
        group, sub_version, kind = _subresource_kind(schema, name, version)
        entry: dict[str, Any] = {
            "name": f"{schema.plural}/{name}",
            "singularName": "",
            "namespaced": schema.namespaced,
            "kind": kind,
            "verbs": _SUBRESOURCES[name][1],
        }
        if (group, sub_version) != (schema.group, version):
            entry.update(group=group, version=sub_version)
        found.append(entry)
    return found


def storage_version_hash(schema: KindSchema) -> str:
    """Opaque, changes only when the stored version does (clients compare it for equality)."""
    digest = hashlib.sha256(f"{schema.group}/{schema.version}/{schema.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()
