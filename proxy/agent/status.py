"""The agent's status server on `<ip>:15020`: the readiness Envoy's port 15021 forwards to.

`GET /healthz/ready` answers 200 only while this proxy can carry traffic (see readiness.py),
503 with the reason otherwise; `GET /healthz/live` answers 200 while the agent runs;
`GET /stats/prometheus` is the merged metrics endpoint (see stats.py).
"""

from __future__ import annotations

import dataclasses

from aiohttp import web

from proxy.agent import options as agent_options
from proxy.agent.admin import AdminClient
from proxy.agent.readiness import ReadinessOptions, check_ready
from proxy.agent.stats import CONTENT_TYPE, ScrapeFailed, StatsMerger, StatsOptions


@dataclasses.dataclass(frozen=True, kw_only=True)
class StatusOptions:
    ip: str
    port: int = agent_options.STATUS_PORT  # 0 picks a free port (tests)
    readiness: ReadinessOptions
    stats: StatsOptions | None = None  # None: no merged metrics endpoint


class StatusServer:
    def __init__(self, *, options: StatusOptions, admin: AdminClient) -> None:
        self._options = options
        self._admin = admin
        self._runner: web.AppRunner | None = None
        self._shutting_down = False
        self._stats = StatsMerger(options.stats) if options.stats is not None else None
        self.port = options.port

    def mark_shutting_down(self) -> None:
        """From now on not ready: the pod is leaving, whatever Envoy says."""
        self._shutting_down = True

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz/ready", self._ready)
        app.router.add_get("/healthz/live", self._live)
        if self._stats is not None:
            app.router.add_get("/stats/prometheus", self._merged_stats)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._options.ip, self._options.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _ready(self, request: web.Request) -> web.Response:
        if self._shutting_down:
            return web.Response(status=503, text="pilot-agent is shutting down\n")
        reason = await check_ready(self._admin, self._options.readiness)
        if reason is not None:
            return web.Response(status=503, text=reason + "\n")
        return web.Response(status=200, text="ready\n")

    async def _merged_stats(self, request: web.Request) -> web.Response:
        assert self._stats is not None
        try:
            body = await self._stats.scrape()
        except ScrapeFailed as error:
            return web.Response(status=503, text=f"{error}\n")
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def _live(self, request: web.Request) -> web.Response:
        return web.Response(status=200, text="live\n")
