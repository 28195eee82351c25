"""The process shell every service shares: flags, the bound port, access log, SIGTERM."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from samples.bookinfo.src.common import server, testing
from samples.bookinfo.src.common.testing import ServiceProcess

# A service with one slow endpoint that waits until told to finish, to test graceful shutdown.
_SLOW_SERVICE = textwrap.dedent(
    """
    import asyncio, sys
    from aiohttp import web
    from samples.bookinfo.src.common import server

    release = asyncio.Event()

    async def slow(request):
        print("handling slow request", flush=True)
        await release.wait()
        return web.Response(text="finished")

    async def on_shutdown(app):
        # The server closed its listener; let the in-flight request complete.
        release.set()

    def build_app():
        app = web.Application()
        app.router.add_get("/slow", slow)
        app.on_shutdown.append(on_shutdown)
        return app

    sys.exit(server.main("slow", build_app, sys.argv[1:]))
    """
)


def test_flags_default_to_loopback_and_9080() -> None:
    assert server.parse_args("svc", []) == server.ServeOptions(address="127.0.0.1", port=9080)
    assert server.parse_args("svc", ["--address", "127.0.1.7", "--port", "0"]) == (
        server.ServeOptions(address="127.0.1.7", port=0)
    )


@pytest.fixture
def slow_service(tmp_path: Path) -> Iterator[ServiceProcess]:
    repo_root = testing.SRC_DIR.parents[2]
    argv = [sys.executable, "-c", _SLOW_SERVICE, "--address", "127.0.0.1", "--port", "0"]
    running = testing.start_process(
        argv, name="slow", log_dir=tmp_path, env={"PYTHONPATH": str(repo_root)}
    )
    try:
        yield running
    finally:
        running.stop()


def test_port_zero_logs_the_bound_port(slow_service: ServiceProcess) -> None:
    assert slow_service.url.host == "127.0.0.1"
    assert slow_service.url.port not in (None, 0)


def test_sigterm_finishes_in_flight_requests_and_exits_zero(
    slow_service: ServiceProcess,
) -> None:
    async def scenario() -> testing.HttpResult:
        request = asyncio.ensure_future(
            testing.fetch(slow_service.url.with_path("/slow"), headers={"x-request-id": "slow-1"})
        )
        await asyncio.to_thread(slow_service.wait_for_log, "handling slow request")
        slow_service.process.terminate()
        return await request

    result = asyncio.run(scenario())
    assert result.status == 200
    assert result.text == "finished"
    assert slow_service.process.wait(timeout=testing.STOP_TIMEOUT_SECONDS) == 0
    log = slow_service.log_text()
    assert "slow stopping" in log
    assert "GET /slow 200 x-request-id=slow-1" in log


def test_peer_identity_comes_from_the_nearest_hop_of_xfcc():
    xfcc = "By=spiffe://cluster.local/ns/default/sa/a;Hash=ab;URI=spiffe://cluster.local/ns/default/sa/x,By=spiffe://cluster.local/ns/default/sa/bookinfo-ratings;Hash=cd;URI=spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
    assert server.peer_identity(xfcc) == "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
    assert server.peer_identity("") == ""
    assert server.peer_identity("By=x;Hash=y") == ""
