"""A list provider for tests: a real HTTP server on loopback serving one list.

async with ListProvider("v1\\nv2\\n") as provider:
    params = {"providerUrl": provider.url, ...}
    provider.body = "v3\\n"          # the next fetch sees the new list
    provider.status = 503            # the provider answers errors
    await provider.stop()            # the provider is gone (connection refused)
    await provider.start()           # back, on the same port
"""

from __future__ import annotations

import dataclasses
import socket

from aiohttp import web


@dataclasses.dataclass
class ListProvider:
    body: str = ""
    status: int = 200
    path: str = "/list.txt"
    host: str = "127.0.0.1"
    port: int = 0
    requests: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(self.path, self._serve)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        if self.port == 0:
            self.port = _free_port(self.host)
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ListProvider:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.Response(status=self.status, text=self.body)


def _free_port(host: str) -> int:
    # A port fixed at first start, so stop() and start() bring the provider back where it was.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]
