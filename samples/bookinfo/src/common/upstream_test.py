"""Naming upstreams from the environment, and calling them (directly or through a proxy)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from samples.bookinfo.src.common import testing
from samples.bookinfo.src.common.testing import RecordingServer
from samples.bookinfo.src.common.upstream import Reply, Upstream, fetch_json, new_client_session


def test_defaults_are_the_service_name_and_9080() -> None:
    assert str(Upstream.from_env("details", {}).url("details", "0")) == (
        "http://details:9080/details/0"
    )


@pytest.mark.parametrize("domain", ["default.svc.cluster.local", ".default.svc.cluster.local"])
def test_services_domain_is_appended_after_a_dot(domain: str) -> None:
    upstream = Upstream.from_env("reviews", {"SERVICES_DOMAIN": domain})
    assert str(upstream.base_url) == "http://reviews.default.svc.cluster.local:9080"


def test_hostname_and_port_variables_override() -> None:
    env = {"RATINGS_HOSTNAME": "127.0.1.4", "RATINGS_SERVICE_PORT": "19080"}
    upstream = Upstream.from_env("ratings", env)
    assert upstream.service == "ratings"
    assert str(upstream.url("ratings", "0")) == "http://127.0.1.4:19080/ratings/0"


def test_path_segments_are_encoded() -> None:
    upstream = Upstream.from_env("details", {})
    assert upstream.url("details", "a/b c").raw_path == "/details/a%2Fb%20c"


async def _fetch(url, timeout: float = 5.0) -> Reply:
    async with new_client_session() as session:
        return await fetch_json(session, url, headers={"x-request-id": "r-1"}, timeout=timeout)


def test_fetch_json_results(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)

    def respond(request: testing.RecordedRequest) -> web.Response:
        match request.path:
            case "/json":
                return web.json_response({"a": 1})
            case "/text":
                return web.Response(text="not json")
            case _:
                return web.json_response({"error": "nope"}, status=503)

    async def scenario() -> None:
        async with RecordingServer(respond) as fake:
            assert await _fetch(fake.url / "json") == Reply(status=200, body={"a": 1})
            assert await _fetch(fake.url / "text") == Reply(status=200, body=None)
            assert await _fetch(fake.url / "other") == Reply(status=503, body=None)
            assert fake.requests[0].headers["x-request-id"] == "r-1"
        with testing.refused_port() as port:
            assert await _fetch(f"http://127.0.0.1:{port}/x") == Reply(status=None)

    asyncio.run(scenario())


def test_fetch_json_gives_up_at_its_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)

    async def scenario() -> None:
        never = asyncio.Event()

        async def hang(request: web.BaseRequest) -> web.Response:
            await never.wait()
            return web.Response()

        runner = web.ServerRunner(web.Server(hang))
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            reply = await _fetch(f"http://127.0.0.1:{port}/slow", timeout=0.2)
            assert reply == Reply(status=None)
        finally:
            never.set()
            await runner.cleanup()

    asyncio.run(scenario())


def test_calls_go_through_http_proxy_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sidecar contract: absolute-form request line, Host naming the service, no DNS."""
    for name in ("HTTP_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)

    async def scenario() -> None:
        async with RecordingServer(testing.json_routes({"/reviews/": {"id": "0"}})) as proxy:
            monkeypatch.setenv("http_proxy", str(proxy.url))
            upstream = Upstream.from_env("reviews", {})
            reply = await _fetch(upstream.url("reviews", "0"))
            assert reply == Reply(status=200, body={"id": "0"})
            [call] = proxy.requests
            assert (call.method, call.target, call.host) == (
                "GET",
                "http://reviews:9080/reviews/0",
                "reviews:9080",
            )

    asyncio.run(scenario())
