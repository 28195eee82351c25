"""The page's server when its sources are down, or asked for nonsense: answers, never a 500."""

import asyncio
import socket

import aiohttp
from aiohttp import web

from tools.meshpage.server import build_app
from tools.meshpage.sources import SourceOptions, Sources


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scenario(body):
    async def run():
        down = f"http://127.0.0.1:{closed_port()}"
        sources = Sources(SourceOptions(prometheus=down, zipkin=down, config_store=down, timeout=2))
        runner = web.AppRunner(build_app(sources, refresh=1.0), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        try:
            base = f"http://127.0.0.1:{runner.addresses[0][1]}"
            async with aiohttp.ClientSession(base_url=base) as session:
                await body(session)
        finally:
            await runner.cleanup()

    asyncio.run(asyncio.wait_for(run(), 30))


def test_sources_down_give_an_empty_graph_that_names_them():
    async def body(session):
        async with session.get("/api/graph") as r:
            assert r.status == 200
            graph = await r.json()
        assert graph["nodes"] == []
        assert graph["edges"] == []
        assert graph["refresh_seconds"] == 1.0
        assert [e.split(" (")[0] for e in graph["errors"]] == ["Prometheus", "the config store"]
        async with session.get("/api/apps/reviews") as r:
            info = await r.json()
        assert r.status == 200
        assert info["routing"] == []
        assert info["traces"] == []
        assert len(info["errors"]) == 2
        async with session.get("/api/traces/abc") as r:
            assert r.status == 200
            assert (await r.json())["errors"]

    scenario(body)


def test_bad_names_are_400s_and_the_page_and_its_script_are_served():
    async def body(session):
        async with session.get("/api/apps/Not_An_App") as r:
            assert r.status == 400
            assert "is not an app name" in (await r.json())["error"]
        async with session.get("/api/traces/xyz") as r:
            assert r.status == 400
        async with session.get("/") as r:
            assert r.status == 200
            assert "cytoscape.min.js" in await r.text()
        async with session.get("/static/app.js") as r:
            assert r.status == 200
            assert "window.meshGraph" in await r.text()
        async with session.get("/vendor/cytoscape.min.js") as r:
            assert r.status == 200  # installed by tools/setup.sh (npm ci)
        async with session.get("/healthz") as r:
            assert r.status == 200

    scenario(body)
