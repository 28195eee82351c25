"""The subresources of Kubernetes' own kinds, as the API server serves them.

.../<plural>/<name>/status    GET, PUT, PATCH: the object, whose status alone a write changes
.../deployments/<name>/scale  GET, PUT, PATCH: an autoscaling/v1 Scale (what `kubectl scale`
                              patches); a write sets the Deployment's spec.replicas
.../pods/<name>/binding       POST a Binding: the scheduler puts the pod on a node
.../pods/<name>/log           GET: the container's log, from the kubelet of the pod's node
                              (its status.hostIP, at the kubelet's port), as the API server
                              proxies it; `container`, `follow`, `tailLines`, `limitBytes`,
                              `timestamps`, `previous` pass through
.../pods/<name>/exec          GET, POST upgraded to a WebSocket: a command in a container,
                              streamed through the pod's kubelet (podexec.py)
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import aiohttp
from aiohttp import web

from pilot.configstore import (
    codec,
    conversion,
    options,
    patches,
    paths,
    podexec,
    status,
    strategy,
)
from pilot.configstore.store import Store
from pkg.config.kinds import KindSchema

STORE: web.AppKey[Store] = web.AppKey("subresource-store", Store)
KUBELET_PORT: web.AppKey[int] = web.AppKey("kubelet-port", int)
DEFAULT_KUBELET_PORT = 10250
_LOG_PARAMETERS = ("follow", "tailLines", "limitBytes", "timestamps", "previous", "sinceSeconds")
_SCALE_VERBS = ("GET", "PUT", "PATCH")


async def handle(request: web.Request, target: paths.Target) -> web.StreamResponse:
    match target.subresource, request.method:
        case "status", "GET":
            return await _get(request, target)
        case "status", "PUT":
            return await _update_status(request, target)
        case "status", "PATCH":
            return await _patch(request, target, strategy.STATUS)
        case "scale", method if method in _SCALE_VERBS:
            return await _scale(request, target)
        case "binding", "POST":
            return await _bind(request, target)
        case "log", "GET":
            return await _log(request, target)
        case "exec", "GET" | "POST":
            return await podexec.handle(request, target, _store(request), request.app[KUBELET_PORT])
    raise status.StatusError(
        405, "MethodNotAllowed", f"{request.method} is not supported on {request.path}"
    )


def _store(request: web.Request) -> Store:
    return request.app[STORE]


def _object(request: web.Request, target: paths.Target) -> dict[str, Any]:
    assert target.namespace is not None
    assert target.name is not None
    return _store(request).get(target.schema, target.namespace, target.name)


def _write(request: web.Request, target: paths.Target, kind: str, sub: str) -> options.WriteOptions:
    user_agent = request.headers.get("User-Agent", "")
    write = options.write_options(request.query, user_agent, kind=kind)
    return dataclasses.replace(write, api_version=target.api_version, subresource=sub)


async def _get(request: web.Request, target: paths.Target) -> web.Response:
    obj = conversion.outgoing(_object(request, target), target.schema, target.version)
    return codec.respond(request, obj)


async def _update_status(request: web.Request, target: paths.Target) -> web.Response:
    assert target.namespace is not None
    assert target.name is not None
    body = conversion.incoming(await codec.read(request), target.schema, target.version)
    write = _write(request, target, "UpdateOptions", strategy.STATUS)
    obj = await _store(request).update(target.schema, target.namespace, target.name, body, write)
    return codec.respond(request, conversion.outgoing(obj, target.schema, target.version))


async def _patch(request: web.Request, target: paths.Target, sub: str) -> web.Response:
    assert target.namespace is not None
    assert target.name is not None
    media = codec.content_type(request)
    accepted = tuple(t for t in patches.accepted(target.schema) if t != codec.APPLY_PATCH)
    if media not in accepted:
        raise codec.unsupported(accepted)
    patch = patches.applier(media, await codec.read(request, accepted), target.schema)
    schema, version = target.schema, target.version

    def mutate(current: dict[str, Any]) -> Any:
        out = conversion.outgoing(current, schema, version)
        return conversion.incoming(patch(out), schema, version)

    write = _write(request, target, "PatchOptions", sub)
    obj = await _store(request).patch(schema, target.namespace, target.name, mutate, write)
    return codec.respond(request, conversion.outgoing(obj, schema, version))


# Scale: the replicas of a Deployment, as an autoscaling/v1 Scale.


def scale_of(deployment: dict[str, Any]) -> dict[str, Any]:
    meta = deployment["metadata"]
    spec, state = deployment.get("spec") or {}, deployment.get("status") or {}
    labels = (spec.get("selector") or {}).get("matchLabels") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": {
            "replicas": state.get("replicas", 0),
            "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        },
    }


async def _scale(request: web.Request, target: paths.Target) -> web.Response:
    assert target.namespace is not None
    assert target.name is not None
    store, schema = _store(request), target.schema
    if request.method == "GET":
        return codec.respond(request, scale_of(_object(request, target)))
    if request.method == "PUT":
        body = await codec.read(request)
        change = lambda scale: body  # noqa: E731 (the request's Scale replaces the view)
        kind = "UpdateOptions"
    else:
        media = codec.content_type(request)
        accepted = tuple(t for t in patches.accepted(schema) if t != codec.APPLY_PATCH)
        if media not in accepted:
            raise codec.unsupported(accepted)
        raw = await codec.read(request, accepted)
        # A Scale has no lists: a strategic merge patch of it is a merge patch.
        scale_patch = patches.applier(
            codec.MERGE_PATCH if media == codec.STRATEGIC_PATCH else media, raw
        )
        change = scale_patch
        kind = "PatchOptions"

    def mutate(current: dict[str, Any]) -> dict[str, Any]:
        scale = change(scale_of(current))
        replicas = _replicas(schema, target.name or "", scale)
        wanted = ((scale or {}).get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise status.conflict(
                schema,
                target.name or "",
                "the object has been modified; please apply your changes to the latest "
                "version and try again",
            )
        return {**current, "spec": {**(current.get("spec") or {}), "replicas": replicas}}

    write = _write(request, target, kind, "")
    obj = await store.patch(schema, target.namespace, target.name, mutate, write)
    return codec.respond(request, scale_of(obj))


def _replicas(schema: KindSchema, name: str, scale: Any) -> int:
    replicas = (
        ((scale or {}).get("spec") or {}).get("replicas", 0) if isinstance(scale, dict) else None
    )
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise status.invalid_field(
            schema,
            name,
            "spec.replicas",
            f"Invalid value: {replicas!r}: must be greater than or equal to 0",
            kind="Scale",
        )
    return replicas


# Binding: the scheduler's one write of a pod.


async def _bind(request: web.Request, target: paths.Target) -> web.Response:
    assert target.namespace is not None
    assert target.name is not None
    body = await codec.read(request)
    node = ((body or {}).get("target") or {}).get("name") if isinstance(body, dict) else None
    if not node:
        raise status.invalid_field(
            target.schema, target.name, "target.name", "Required value", kind="Binding"
        )

    def mutate(current: dict[str, Any]) -> dict[str, Any]:
        return {**current, "spec": {**(current.get("spec") or {}), "nodeName": node}}

    write = _write(request, target, "CreateOptions", strategy.BINDING)
    await _store(request).patch(target.schema, target.namespace, target.name, mutate, write)
    done = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
    return web.json_response(done, status=201)


# Logs: proxied from the kubelet that runs the pod.


async def _log(request: web.Request, target: paths.Target) -> web.StreamResponse:
    pod = _object(request, target)
    name = target.name or ""
    container = request.query.get("container") or _default_container(pod, name)
    known = {c.get("name") for c in (pod.get("spec") or {}).get("containers") or []}
    known |= {c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or []}
    known |= {c.get("name") for c in (pod.get("status") or {}).get("containerStatuses") or []}
    if container not in known:
        raise status.bad_request(f"container {container} is not valid for pod {name}")
    host = (pod.get("status") or {}).get("hostIP") or ""
    if not host:
        raise status.bad_request(f"pod {name} does not have a host assigned")
    port = request.app[KUBELET_PORT]
    url = f"http://{host}:{port}/containerLogs/{target.namespace}/{name}/{container}"
    query = {k: request.query[k] for k in _LOG_PARAMETERS if k in request.query}
    follow = query.get("follow", "").lower() in ("true", "1")
    timeout = aiohttp.ClientTimeout(total=None if follow else 30, connect=5)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, params=query) as answer,
        ):
            if answer.status != 200:
                text = (await answer.text()).strip()
                raise status.StatusError(
                    answer.status if answer.status < 500 else 502,
                    "BadRequest" if answer.status < 500 else "InternalError",
                    text or f"the kubelet at {host}:{port} answered {answer.status}",
                )
            response = web.StreamResponse(headers={"Content-Type": "text/plain"})
            await response.prepare(request)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
            with contextlib.suppress(ConnectionError):
                await response.write_eof()
            return response
    except aiohttp.ClientError as error:
        raise status.StatusError(
            502,
            "InternalError",
            f'Get "{url}": the kubelet of pod {name} does not answer: {error}',
        ) from None


def _default_container(pod: dict[str, Any], name: str) -> str:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    chosen = annotations.get("kubectl.kubernetes.io/default-container")
    containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
    if chosen:
        return str(chosen)
    if len(containers) == 1:
        return str(containers[0])
    raise status.bad_request(
        f"a container name must be specified for pod {name}, choose one of: "
        f"[{' '.join(str(c) for c in containers)}]"
    )
