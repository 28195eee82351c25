"""The agent's status server (HTTP, loopback): what it holds, and whether it serves.

- `GET /debug/secrets`: one JSON object per identity: serial, validity, renewal point,
  rotations, failures, last error, how many SDS streams watch it;
- `GET /debug/sds`: the SDS streams and counters (ACKs, NACKs, pushes);
- `GET /debug/workloads`: the workload sockets served (entry, identity, socket) and the
  entries refused, with why;
- `GET /ready`: 200 while the workload sockets are served, 503 otherwise;
- `GET /metrics`: Prometheus metrics (metrics.py).
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from pkg.monitoring import CONTENT_TYPE, render
from security.nodeagent.cache import SecretCache
from security.nodeagent.metrics import agent_registry
from security.nodeagent.server import SdsServer


class StatusServer:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        cache: SecretCache,
        sds: SdsServer,
        ready: Callable[[], bool],
        workloads: Callable[[], dict[str, object]] = dict,
    ) -> None:
        self._workloads = workloads
        self._host = host
        self._cache = cache
        self._sds = sds
        self._ready = ready
        self._registry = agent_registry(cache, sds)
        self._runner: web.AppRunner | None = None
        self.port = port

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/debug/secrets", self._secrets)
        app.router.add_get("/debug/sds", self._sds_status)
        app.router.add_get("/debug/workloads", self._workloads_status)
        app.router.add_get("/ready", self._ready_handler)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self.port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _secrets(self, request: web.Request) -> web.Response:
        return web.json_response([s.to_json() for s in self._cache.status()])

    async def _sds_status(self, request: web.Request) -> web.Response:
        return web.json_response(self._sds.status())

    async def _workloads_status(self, request: web.Request) -> web.Response:
        return web.json_response(self._workloads())

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=render(self._registry), headers={"Content-Type": CONTENT_TYPE})

    async def _ready_handler(self, request: web.Request) -> web.Response:
        if self._ready():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not serving SDS\n")
