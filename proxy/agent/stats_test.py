"""The merged metrics endpoint over real HTTP: Envoy's, the app's and the agent's, in order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from proxy.agent.admin import AdminClient
from proxy.agent.readiness import ReadinessOptions
from proxy.agent.stats import AnnotationsError, StatsOptions, app_url_from
from proxy.agent.status import StatusOptions, StatusServer

ENVOY_TEXT = "# TYPE envoy_server_live gauge\nenvoy_server_live{} 1\n"
APP_TEXT = '# TYPE request_result_total counter\nrequest_result_total{response_code="200"} 3.0'


@contextlib.asynccontextmanager
async def http_server(path: str, status: int, text: str) -> AsyncIterator[str]:
    app = web.Application()

    async def handle(_: web.Request) -> web.Response:
        return web.Response(status=status, text=text)

    app.router.add_get(path, handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}{path}"
    finally:
        await runner.cleanup()


async def merged(stats: StatsOptions) -> tuple[int, str]:
    async with AdminClient("http://127.0.0.1:1") as admin:
        server = StatusServer(
            options=StatusOptions(
                ip="127.0.0.1",
                port=0,
                readiness=ReadinessOptions(proxy_type="sidecar", ip="127.0.0.1"),
                stats=stats,
            ),
            admin=admin,
        )
        await server.start()
        try:
            url = f"http://127.0.0.1:{server.port}/stats/prometheus"
            async with aiohttp.ClientSession() as client, client.get(url) as response:
                return response.status, await response.text()
        finally:
            await server.stop()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_envoy_app_and_agent_metrics_are_merged_in_that_order() -> None:
    async def scenario() -> None:
        async with (
            http_server("/stats/prometheus", 200, ENVOY_TEXT) as envoy,
            http_server("/metrics", 200, APP_TEXT) as app,
        ):
            status, text = await merged(StatsOptions(envoy_url=envoy, app_url=app))
        assert status == 200
        assert text.index("envoy_server_live") < text.index("request_result_total")
        assert text.index("request_result_total") < text.index("istio_agent_scrapes_total")
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert {"envoy_server_live", "request_result", "istio_agent_scrapes"} <= set(families)
        scrapes = {
            s.labels["type"]: s.value
            for s in families["istio_agent_scrapes"].samples
            if s.name.endswith("_total")
        }
        assert scrapes == {"envoy": 1.0, "application": 1.0, "agent": 1.0}

    run(scenario())


def test_an_app_that_fails_is_left_out_and_counted() -> None:
    async def scenario() -> None:
        async with (
            http_server("/stats/prometheus", 200, ENVOY_TEXT) as envoy,
            http_server("/metrics", 500, "boom") as app,
        ):
            status, text = await merged(StatsOptions(envoy_url=envoy, app_url=app))
        assert status == 200
        assert "envoy_server_live" in text
        assert "boom" not in text
        assert 'istio_agent_scrape_failures_total{type="application"} 1.0' in text

    run(scenario())


def test_envoy_down_is_a_503_that_says_which_scrape_failed() -> None:
    async def scenario() -> None:
        status, text = await merged(
            StatsOptions(envoy_url="http://127.0.0.1:1/stats/prometheus", timeout=2.0)
        )
        assert status == 503
        assert text.startswith("envoy metrics at http://127.0.0.1:1/stats/prometheus")

    run(scenario())


def test_prometheus_annotations_from_the_environment() -> None:
    env = {"ISTIO_PROMETHEUS_ANNOTATIONS": '{"scrape":"true","port":"9080","path":"/metrics"}'}
    assert app_url_from(env, "127.0.1.2") == "http://127.0.1.2:9080/metrics"
    assert app_url_from({}, "127.0.1.2") is None
    off = {"ISTIO_PROMETHEUS_ANNOTATIONS": '{"scrape":"false","port":"9080"}'}
    assert app_url_from(off, "127.0.1.2") is None
    for bad, message in [
        ("{", "not JSON"),
        ("[]", "must be a JSON object"),
        ('{"scrape":"true","port":"http"}', "port must be a port number"),
        ('{"scrape":"true","port":"9080","path":"metrics"}', "path must start with '/'"),
    ]:
        with pytest.raises(AnnotationsError, match=message):
            app_url_from({"ISTIO_PROMETHEUS_ANNOTATIONS": bad}, "127.0.1.2")
