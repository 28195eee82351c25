"""The store's HTTP face: a Kubernetes API server for every kind of the registry.

Paths, bodies and errors are a Kubernetes API server's, so pkg/kube's client, kubectl and the
official `kubernetes` client work against it unchanged:

    /apis/<group>/<version>/namespaces/<ns>/<plural>          GET list|watch, POST, DELETE (collection)
    /apis/<group>/<version>/namespaces/<ns>/<plural>/<name>   GET, PUT, PATCH (merge, JSON,
                                                              apply), DELETE
    /apis/<group>/<version>/<plural>                          GET list|watch, all namespaces
    /api/<version>/...                                        the same for the core group
    /version, /api, /apis, /apis/<group>, /apis/<group>/<version>   discovery (discovery.py)
    /healthz

One module per concern: resources.py (the verbs), paths.py, codec.py (bodies in and out),
selectors.py, options.py (dry runs, field managers), conversion.py (versions), discovery.py,
patches.py (merge, JSON patch), apply.py and managedfields.py (server-side apply), admission.py
and objects.py (what a write stores), store.py (memory, SQLite, watch events).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import pathlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from pilot.configstore import (
    allocator,
    codec,
    discovery,
    feedback,
    openapidocs,
    resources,
    status,
    subresources,
)
from pilot.configstore.store import Store, StoreOptions
from pkg.config.kinds import ALL, KindSet

log = logging.getLogger(__name__)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclasses.dataclass(frozen=True)
class Options:
    address: str = "127.0.0.1"
    port: int = 8001  # 0 picks a free port (tests)
    db: str | pathlib.Path = "config-store.db"
    history: int = 10_000
    watch_queue_limit: int = 10_000
    shutdown_timeout: float = 5.0  # seconds requests in flight get to finish on stop
    service_cluster_ip_range: str = allocator.DEFAULT_SERVICE_RANGE  # Services' cluster IPs
    kubelet_port: int = subresources.DEFAULT_KUBELET_PORT  # where pods' logs are read
    system_namespaces: bool = False  # create default, kube-system and kube-public


class ConfigStoreServer:
    """The store plus its HTTP server; `start()`, then `url`, then `stop()`."""

    def __init__(self, *, options: Options, kinds: KindSet = ALL) -> None:
        self._options = options
        self.store = Store(
            options=StoreOptions(
                db=options.db,
                history=options.history,
                watch_queue_limit=options.watch_queue_limit,
                allocator=allocator.Allocator.parse(options.service_cluster_ip_range),
                system_namespaces=options.system_namespaces,
            ),
            kinds=kinds,
        )
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        await self.store.open()
        app = make_app(self.store, kubelet_port=self._options.kubelet_port)
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


def make_app(
    store: Store, *, kubelet_port: int = subresources.DEFAULT_KUBELET_PORT
) -> web.Application:
    app = web.Application(
        middlewares=[feedback.feedback, _statuses], client_max_size=codec.MAX_BODY
    )
    app[resources.STORE] = store
    app[subresources.STORE] = store
    app[subresources.KUBELET_PORT] = kubelet_port
    app[discovery.KINDS] = store.kinds

    async def end_watches(_: web.Application) -> None:
        store.close_watches()

    app.on_shutdown.append(end_watches)
    discovery.add_routes(app)
    openapidocs.add_routes(app, store.kinds)
    app.router.add_route("*", "/apis/{group}/{version}/{rest:.+}", resources.handle)
    app.router.add_route("*", "/api/{version}/{rest:.+}", resources.handle)
    app.router.add_get("/healthz", _healthz)
    return app


@web.middleware
async def _statuses(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Every refusal as a Kubernetes Status, including the router's own 404 and 405."""
    try:
        return await handler(request)
    except status.StatusError as error:
        return _status_response(error)
    except web.HTTPRequestEntityTooLarge:
        # Kubernetes' reason and wording, so clients show what they would from a cluster.
        return _status_response(
            status.StatusError(
                413,
                "RequestEntityTooLarge",
                f"Request entity too large: limit is {codec.MAX_BODY}",
            )
        )
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


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")
