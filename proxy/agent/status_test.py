"""The status server's HTTP face; its 200 with a real Envoy is in agent_test."""

from __future__ import annotations

import asyncio

import aiohttp

from proxy.agent.admin import AdminClient
from proxy.agent.readiness import ReadinessOptions
from proxy.agent.status import StatusOptions, StatusServer


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as client, client.get(url) as response:
        return response.status, await response.text()


def test_not_ready_with_the_reason_then_shutting_down() -> None:
    async def scenario() -> None:
        # Nothing listens on port 1: Envoy's admin is "down".
        async with AdminClient("http://127.0.0.1:1") as admin:
            server = StatusServer(
                options=StatusOptions(
                    ip="127.0.0.1",
                    port=0,
                    readiness=ReadinessOptions(proxy_type="sidecar", ip="127.0.0.1"),
                ),
                admin=admin,
            )
            await server.start()
            try:
                base = f"http://127.0.0.1:{server.port}"
                code, text = await _get(f"{base}/healthz/ready")
                assert code == 503
                assert text.startswith("envoy admin is not answering: GET http://127.0.0.1:1/")
                assert await _get(f"{base}/healthz/live") == (200, "live\n")
                server.mark_shutting_down()
                assert await _get(f"{base}/healthz/ready") == (
                    503,
                    "pilot-agent is shutting down\n",
                )
            finally:
                await server.stop()

    asyncio.run(asyncio.wait_for(scenario(), 30))
