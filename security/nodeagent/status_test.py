import contextlib
import random
from collections.abc import AsyncIterator

import aiohttp

from security.nodeagent.cache import CacheOptions, SecretCache
from security.nodeagent.fakeca import FakeCa
from security.nodeagent.server import SdsServer
from security.nodeagent.status import StatusServer
from security.nodeagent.testing import run_async


@contextlib.asynccontextmanager
async def status_server(ready: list[bool]) -> AsyncIterator[StatusServer]:
    cache = SecretCache(signer=FakeCa(), options=CacheOptions(), rng=random.Random(1))
    server = StatusServer(
        host="127.0.0.1",
        port=0,
        cache=cache,
        sds=SdsServer(cache=cache, trust_domain="cluster.local"),
        ready=lambda: ready[0],
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def get(port: int, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status, await response.text()


@run_async
async def test_ready_follows_the_agent() -> None:
    ready = [False]
    async with status_server(ready) as server:
        assert await get(server.port, "/ready") == (503, "not serving SDS\n")
        ready[0] = True
        assert await get(server.port, "/ready") == (200, "ready\n")


@run_async
async def test_debug_pages_are_json() -> None:
    async with status_server([True]) as server:
        assert await get(server.port, "/debug/secrets") == (200, "[]")
        status, text = await get(server.port, "/debug/sds")
        assert status == 200
        assert '"streams": []' in text
        assert (await get(server.port, "/nothing"))[0] == 404


@run_async
async def test_metrics_before_any_stream_or_secret() -> None:
    async with status_server([True]) as server:
        status, text = await get(server.port, "/metrics")
        assert status == 200
        assert "# TYPE total_pushes counter\ntotal_pushes 0.0\n" in text
        assert "total_active_connections 0.0\n" in text
        assert "cert_expiry_seconds{" not in text
