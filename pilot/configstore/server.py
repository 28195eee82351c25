"""The store's HTTP face: the Kubernetes REST paths of every kind, list/watch/CRUD/patch.

Paths, bodies and errors are a Kubernetes API server's, so pkg/kube's client (and kubectl, and
the official client's CustomObjectsApi) work against it unchanged:

    /apis/<group>/<version>/namespaces/<ns>/<plural>          GET list|watch, POST create
    /apis/<group>/<version>/namespaces/<ns>/<plural>/<name>   GET, PUT, PATCH (merge), DELETE
    /apis/<group>/<version>/<plural>                          GET list|watch, all namespaces
    /apis, /apis/<group>, /apis/<group>/<version>, /version, /healthz
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import pathlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from pilot.configstore import admission, status
from pilot.configstore.store import Store, StoreOptions
from pilot.configstore.watch import Overflowed
from pkg.config.kinds import ALL, KindSchema, KindSet

log = logging.getLogger(__name__)

_STORE: web.AppKey[Store] = web.AppKey("store", Store)
_MERGE_PATCH = "application/merge-patch+json"
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclasses.dataclass(frozen=True)
class Options:
    address: str = "127.0.0.1"
    port: int = 8001  # 0 picks a free port (tests)
    db: str | pathlib.Path = "config-store.db"
    history: int = 10_000
    watch_queue_limit: int = 10_000
    shutdown_timeout: float = 5.0  # seconds requests in flight get to finish on stop


class ConfigStoreServer:
    """The store plus its HTTP server; `start()`, then `url`, then `stop()`."""

    def __init__(self, *, options: Options, kinds: KindSet = ALL) -> None:
        self._options = options
        self.store = Store(
            options=StoreOptions(
                db=options.db,
                history=options.history,
                watch_queue_limit=options.watch_queue_limit,
            ),
            kinds=kinds,
        )
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        await self.store.open()
        app = make_app(self.store)
        # Cancelling a handler when its client hangs up ends idle watches at once; writes are
        # shielded inside the store, so a hang-up never splits memory from disk.
        self._runner = web.AppRunner(
            app,
            handler_cancellation=True,
            shutdown_timeout=self._options.shutdown_timeout,
            access_log=None,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._options.address, self._options.port)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            await self.store.close()
            raise
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        """Stops listening, ends every watch stream, lets writes finish, closes the database."""
        if self._runner is not None:
            await self._runner.cleanup()  # on_shutdown closes the watches first
            self._runner = None
        await self.store.close()


@contextlib.asynccontextmanager
async def serving(options: Options) -> AsyncIterator[ConfigStoreServer]:
    server = ConfigStoreServer(options=options)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def make_app(store: Store) -> web.Application:
    app = web.Application(middlewares=[admission.feedback, _statuses])
    app[_STORE] = store

    async def end_watches(_: web.Application) -> None:
        store.close_watches()

    app.on_shutdown.append(end_watches)
    namespaced = "/apis/{group}/{version}/namespaces/{namespace}/{plural}"
    app.router.add_get(namespaced, _list_or_watch)
    app.router.add_post(namespaced, _create)
    item = namespaced + "/{name}"
    app.router.add_get(item, _get)
    app.router.add_put(item, _update)
    app.router.add_patch(item, _patch)
    app.router.add_delete(item, _delete)
    app.router.add_get("/apis/{group}/{version}/{plural}", _list_or_watch)
    app.router.add_get("/apis/{group}/{version}", _resource_list)
    app.router.add_get("/apis/{group}", _group)
    app.router.add_get("/apis", _groups)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/version", _version)
    return app


@web.middleware
async def _statuses(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Every refusal as a Kubernetes Status, including the router's own 404 and 405."""
    try:
        return await handler(request)
    except status.StatusError as error:
        return _status_response(error)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        reason = {404: "NotFound", 405: "MethodNotAllowed"}.get(error.status, error.reason)
        message = (
            "the server could not find the requested resource"
            if error.status == 404
            else f"{request.method} is not supported on {request.path}"
            if error.status == 405
            else error.text or error.reason
        )
        return _status_response(status.StatusError(error.status, reason, message))
    except Exception as error:
        # A bug, not a refusal: log it whole, answer like an API server would.
        log.exception("%s %s failed", request.method, request.path)
        return _status_response(
            status.StatusError(500, "InternalError", f"internal error: {error}")
        )


def _status_response(error: status.StatusError) -> web.Response:
    return web.json_response(error.to_dict(), status=error.code)


def _schema(request: web.Request) -> KindSchema:
    info = request.match_info
    schema = request.app[_STORE].kinds.by_plural(info["group"], info["version"], info["plural"])
    if schema is None:
        raise status.StatusError(
            404, "NotFound", "the server could not find the requested resource"
        )
    return schema


async def _body(request: web.Request) -> Any:
    return admission.decode_body(await request.read())


async def _list_or_watch(request: web.Request) -> web.StreamResponse:
    schema = _schema(request)
    namespace = request.match_info.get("namespace")
    if request.query.get("watch", "").lower() in ("true", "1"):
        return await _watch(request, schema, namespace)
    items, version = request.app[_STORE].list(schema, namespace)
    return web.json_response(
        {
            "apiVersion": schema.api_version,
            "kind": f"{schema.kind}List",
            "metadata": {"resourceVersion": str(version)},
            "items": items,
        }
    )


async def _watch(
    request: web.Request, schema: KindSchema, namespace: str | None
) -> web.StreamResponse:
    """Newline-delimited JSON events on one chunked response, until the client or server ends it."""
    store = request.app[_STORE]
    subscription = store.watch(schema, namespace, request.query.get("resourceVersion", ""))
    try:
        timeout = _timeout_seconds(request)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            async with asyncio.timeout(timeout):
                while batch := await subscription.next_batch():
                    lines = "".join(json.dumps(e.to_dict()) + "\n" for e in batch)
                    await response.write(lines.encode())
        except TimeoutError:
            pass  # timeoutSeconds: end the stream cleanly, as Kubernetes does
        except Overflowed:
            gone = status.expired("the watch fell too far behind; list again")
            event = {"type": "ERROR", "object": gone.to_dict()}
            await response.write((json.dumps(event) + "\n").encode())
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


async def _get(request: web.Request) -> web.Response:
    info = request.match_info
    obj = request.app[_STORE].get(_schema(request), info["namespace"], info["name"])
    return web.json_response(obj)


async def _create(request: web.Request) -> web.Response:
    schema, namespace = _schema(request), request.match_info["namespace"]
    obj = await request.app[_STORE].create(schema, namespace, await _body(request))
    return web.json_response(obj, status=201)


async def _update(request: web.Request) -> web.Response:
    info = request.match_info
    store, schema = request.app[_STORE], _schema(request)
    obj = await store.update(schema, info["namespace"], info["name"], await _body(request))
    return web.json_response(obj)


async def _patch(request: web.Request) -> web.Response:
    info = request.match_info
    if request.content_type != _MERGE_PATCH:
        error = status.StatusError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types "
            f"include: {_MERGE_PATCH}",
        )
        return _status_response(error)
    store, schema = request.app[_STORE], _schema(request)
    obj = await store.patch(schema, info["namespace"], info["name"], await _body(request))
    return web.json_response(obj)


async def _delete(request: web.Request) -> web.Response:
    info = request.match_info
    obj = await request.app[_STORE].delete(_schema(request), info["namespace"], info["name"])
    return web.json_response(obj)


async def _groups(request: web.Request) -> web.Response:
    kinds = request.app[_STORE].kinds
    groups: dict[str, list[str]] = {}
    for schema in kinds:
        versions = groups.setdefault(schema.group, [])
        if schema.version not in versions:
            versions.append(schema.version)
    return web.json_response(
        {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [_group_dict(group, versions) for group, versions in groups.items()],
        }
    )


async def _group(request: web.Request) -> web.Response:
    group = request.match_info["group"]
    versions = list(dict.fromkeys(s.version for s in request.app[_STORE].kinds if s.group == group))
    if not versions:
        raise web.HTTPNotFound()
    return web.json_response(
        {"kind": "APIGroup", "apiVersion": "v1", **_group_dict(group, versions)}
    )


def _group_dict(group: str, versions: list[str]) -> dict[str, Any]:
    listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": listed, "preferredVersion": listed[0]}


async def _resource_list(request: web.Request) -> web.Response:
    group, version = request.match_info["group"], request.match_info["version"]
    schemas = [s for s in request.app[_STORE].kinds if s.group == group and s.version == version]
    if not schemas:
        raise web.HTTPNotFound()
    verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
    return web.json_response(
        {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}",
            "resources": [
                {
                    "name": s.plural,
                    "singularName": s.kind.lower(),
                    "namespaced": True,
                    "kind": s.kind,
                    "shortNames": [s.short] if s.short != s.kind.lower() else [],
                    "verbs": verbs,
                }
                for s in schemas
            ],
        }
    )


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _version(_: web.Request) -> web.Response:
    return web.json_response(
        {"major": "1", "minor": "0", "gitVersion": "v1.0.0-config-store", "platform": "python"}
    )
