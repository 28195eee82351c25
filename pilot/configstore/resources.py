"""The REST verbs of every kind: list, watch, get, create, update, patch, delete, deletecollection.

One handler serves every path under /apis/<group>/<version>/ and /api/<version>/ (see paths.py),
so a kind added to the registry is served with no code here. Objects are converted to the
version the path names on the way out, and to the stored one on the way in.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from typing import Any

from aiohttp import web

from pilot.configstore import (
    codec,
    conversion,
    options,
    patches,
    paths,
    selectors,
    status,
    subresources,
    table,
)
from pilot.configstore.store import Store
from pilot.configstore.watch import Overflowed

STORE: web.AppKey[Store] = web.AppKey("store", Store)


async def handle(request: web.Request) -> web.StreamResponse:
    store = request.app[STORE]
    target = paths.from_request(request, store.kinds)
    if target.subresource:
        return await subresources.handle(request, target)
    collection = target.name is None
    match request.method, collection:
        case "GET", True:
            return await _list_or_watch(request, target)
        case "POST", True if target.namespace is not None:
            return await _create(request, target)
        case "DELETE", True if target.namespace is not None:
            return await _delete_collection(request, target)
        case "GET", False:
            return await _get(request, target)
        case "PUT", False:
            return await _update(request, target)
        case "PATCH", False:
            return await _patch(request, target)
        case "DELETE", False:
            return await _delete(request, target)
    raise status.StatusError(
        405, "MethodNotAllowed", f"{request.method} is not supported on {request.path}"
    )


def _selector(request: web.Request, target: paths.Target) -> selectors.Selector:
    kind = target.schema.kind if target.schema.is_kubernetes else ""
    try:
        return selectors.parse(
            request.query.get("labelSelector", ""), request.query.get("fieldSelector", ""), kind
        )
    except selectors.SelectorError as error:
        raise status.bad_request(str(error)) from None


def _out(target: paths.Target, obj: dict[str, Any]) -> dict[str, Any]:
    return conversion.outgoing(obj, target.schema, target.version)


def _list(target: paths.Target, items: list[dict[str, Any]], version: int) -> dict[str, Any]:
    return {
        "apiVersion": target.api_version,
        "kind": f"{target.schema.kind}List",
        "metadata": {"resourceVersion": str(version)},
        "items": [_out(target, o) for o in items],
    }


def _shown(target: paths.Target, obj: dict[str, Any], view: table.View | None, **kw: Any) -> Any:
    """One object as the client asked to see it: itself, a Table row, or its metadata."""
    obj = _out(target, obj)
    if view is None:
        return obj
    if view.kind == "Table":
        version = obj["metadata"].get("resourceVersion", "")
        return table.table(target.schema, [obj], view, version, **kw)
    return table.partial(obj, view)


async def _list_or_watch(request: web.Request, target: paths.Target) -> web.StreamResponse:
    selector = _selector(request, target)
    view = table.negotiate(request)
    if request.query.get("watch", "").lower() in ("true", "1"):
        return await _watch(request, target, selector, view)
    items, version = request.app[STORE].list(target.schema, target.namespace, selector)
    listed = [_out(target, o) for o in items]
    if view is None:
        return codec.respond(request, _list(target, listed, version))
    if view.kind == "Table":
        return web.json_response(table.table(target.schema, listed, view, str(version)))
    return web.json_response(table.partial_list(listed, view, str(version)))


async def _watch(
    request: web.Request,
    target: paths.Target,
    selector: selectors.Selector,
    view: table.View | None,
) -> web.StreamResponse:
    """Newline-delimited JSON events on one chunked response, until the client or server ends it."""
    store = request.app[STORE]
    subscription = store.watch(
        target.schema, target.namespace, request.query.get("resourceVersion", ""), selector
    )
    try:
        timeout = _timeout_seconds(request)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        first = True  # a Table's columns come with the first event only, as on Kubernetes
        try:
            async with asyncio.timeout(timeout):
                while batch := await subscription.next_batch():
                    lines = []
                    for event in batch:
                        shown = _shown(target, event.object, view, headers=first)
                        lines.append(json.dumps({"type": event.type, "object": shown}) + "\n")
                        first = False
                    await response.write("".join(lines).encode())
        except TimeoutError:
            pass  # timeoutSeconds: end the stream cleanly, as Kubernetes does
        except Overflowed:
            gone = status.expired("the watch fell too far behind; list again")
            error_event = {"type": "ERROR", "object": gone.to_dict()}
            await response.write((json.dumps(error_event) + "\n").encode())
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response
    finally:
        store.unsubscribe(subscription)


def _timeout_seconds(request: web.Request) -> float | None:
    raw = request.query.get("timeoutSeconds")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise status.bad_request(f"invalid timeoutSeconds {raw!r}") from None


def _write_options(
    request: web.Request, target: paths.Target, kind: str, *, apply: bool = False
) -> options.WriteOptions:
    user_agent = request.headers.get("User-Agent", "")
    write = options.write_options(request.query, user_agent, kind=kind, apply=apply)
    return dataclasses.replace(write, api_version=target.api_version)


async def _get(request: web.Request, target: paths.Target) -> web.Response:
    assert target.namespace is not None
    assert target.name is not None
    obj = request.app[STORE].get(target.schema, target.namespace, target.name)
    view = table.negotiate(request)
    if view is not None:
        return web.json_response(_shown(target, obj, view))
    return codec.respond(request, _out(target, obj))


async def _create(request: web.Request, target: paths.Target) -> web.Response:
    assert target.namespace is not None
    write = _write_options(request, target, "CreateOptions")
    body = conversion.incoming(await codec.read(request), target.schema, target.version)
    obj = await request.app[STORE].create(target.schema, target.namespace, body, write)
    return codec.respond(request, _out(target, obj), code=201)


async def _update(request: web.Request, target: paths.Target) -> web.Response:
    assert target.namespace is not None
    assert target.name is not None
    write = _write_options(request, target, "UpdateOptions")
    body = conversion.incoming(await codec.read(request), target.schema, target.version)
    store = request.app[STORE]
    obj = await store.update(target.schema, target.namespace, target.name, body, write)
    return codec.respond(request, _out(target, obj))


async def _patch(request: web.Request, target: paths.Target) -> web.Response:
    assert target.namespace is not None
    assert target.name is not None
    media = codec.content_type(request)
    accepted = patches.accepted(target.schema)
    if media not in accepted:
        raise codec.unsupported(accepted)
    apply = media == codec.APPLY_PATCH
    write = _write_options(request, target, "PatchOptions", apply=apply)
    body = await codec.read(request, accepted)
    store, schema = request.app[STORE], target.schema
    if apply:
        config = conversion.incoming(body, schema, target.version)
        obj, created = await store.apply(schema, target.namespace, target.name, config, write)
        return codec.respond(request, _out(target, obj), code=201 if created else 200)
    patch = patches.applier(media, body, schema)

    def mutate(current: dict[str, Any]) -> Any:
        return conversion.incoming(patch(_out(target, current)), schema, target.version)

    obj = await store.patch(schema, target.namespace, target.name, mutate, write)
    return codec.respond(request, _out(target, obj))


async def _delete_options(request: web.Request) -> options.DeleteOptions:
    body = None
    if request.can_read_body:
        raw = await request.read()
        if raw.strip():
            body = codec.decode(raw, yaml_body=codec.content_type(request) == codec.YAML)
    return options.delete_options(request.query, body)


async def _delete(request: web.Request, target: paths.Target) -> web.Response:
    assert target.namespace is not None
    assert target.name is not None
    deletion = await _delete_options(request)
    store = request.app[STORE]
    obj = await store.delete(target.schema, target.namespace, target.name, deletion)
    return codec.respond(request, _out(target, obj))


async def _delete_collection(request: web.Request, target: paths.Target) -> web.Response:
    assert target.namespace is not None
    selector = _selector(request, target)
    deletion = await _delete_options(request)
    store = request.app[STORE]
    removed = await store.delete_collection(target.schema, target.namespace, selector, deletion)
    return codec.respond(request, _list(target, removed, store.resource_version))
