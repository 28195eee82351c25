"""The collector's HTTP API over a real socket, as Envoy's Zipkin tracer and a UI call it."""

import asyncio
import json

import aiohttp
from aiohttp import web

from tools.zipkin.server import build_app
from tools.zipkin.store import SpanStore

SPANS = [
    {
        "traceId": "5af7183fb1d4cf5f5af7183fb1d4cf5f",
        "id": "352bff9a74ca9ad2",
        "name": "productpage.default.svc.cluster.local:9080/productpage",
        "kind": "SERVER",
        "timestamp": 1_700_000_000_000_000,
        "duration": 2500,
        "localEndpoint": {"serviceName": "productpage", "ipv4": "127.0.1.2"},
        "tags": {"http.status_code": "200"},
    }
]


def scenario(body):
    async def run():
        runner = web.AppRunner(build_app(SpanStore()), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            async with aiohttp.ClientSession(base_url=base) as session:
                await body(session)
        finally:
            await runner.cleanup()

    asyncio.run(asyncio.wait_for(run(), 30))


def test_posted_spans_come_back_by_trace_service_and_query():
    async def body(session):
        async with session.post("/api/v2/spans", json=SPANS) as r:
            assert r.status == 202
        async with session.get("/api/v2/services") as r:
            assert await r.json() == ["productpage"]
        async with session.get("/api/v2/spans", params={"serviceName": "productpage"}) as r:
            assert await r.json() == ["productpage.default.svc.cluster.local:9080/productpage"]
        async with session.get("/api/v2/trace/5af7183fb1d4cf5f5af7183fb1d4cf5f") as r:
            (got,) = await r.json()
            assert got["id"] == "352bff9a74ca9ad2"
            assert got["kind"] == "SERVER"
        async with session.get("/api/v2/traces", params={"serviceName": "productpage"}) as r:
            assert [[s["id"] for s in t] for t in await r.json()] == [["352bff9a74ca9ad2"]]
        async with session.get("/health") as r:
            assert (await r.json())["spans"] == 1

    scenario(body)


def test_bad_requests_are_400s_that_say_why_and_store_nothing():
    async def body(session):
        cases = [
            (b"{not json", "the body is not JSON"),
            (b'{"traceId": "1"}', "the body must be a JSON list of spans, got dict"),
            (
                json.dumps([SPANS[0], {"id": "1"}]).encode(),
                "spans[1].traceId: None is not a hex id",
            ),
        ]
        for data, message in cases:
            async with session.post(
                "/api/v2/spans", data=data, headers={"Content-Type": "application/json"}
            ) as r:
                assert r.status == 400
                assert message in await r.text()
        async with session.post(
            "/api/v2/spans", data=b"x", headers={"Content-Type": "application/x-thrift"}
        ) as r:
            assert r.status == 415
        async with session.get("/api/v2/traces", params={"limit": "many"}) as r:
            assert r.status == 400
            assert "limit: 'many'" in await r.text()
        async with session.get("/api/v2/trace/zz") as r:
            assert r.status == 404
        async with session.get("/api/v2/spans") as r:
            assert r.status == 400
        async with session.get("/api/v2/services") as r:
            assert await r.json() == []  # the half-good batch stored nothing

    scenario(body)
