import asyncio
import itertools

import aiohttp
import pytest
from aiohttp import web

from tools.bench import loadgen


def test_schedule_spaces_requests_evenly() -> None:
    due = loadgen.schedule(rate=4, duration=1.5)
    assert due == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]


@pytest.mark.parametrize(("rate", "duration"), [(0, 1), (10, 0), (-1, 1)])
def test_schedule_rejects_non_positive(rate: float, duration: float) -> None:
    with pytest.raises(ValueError, match="rate and duration must be positive"):
        loadgen.schedule(rate, duration)


def test_every_scheduled_request_is_sent_and_answered() -> None:
    async def main() -> loadgen.LoadResult:
        async def hello(_: web.Request) -> web.Response:
            return web.Response(text="hi")

        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        try:
            async with aiohttp.ClientSession() as session:

                async def request() -> None:
                    async with session.get(f"http://{host}:{port}/") as response:
                        response.raise_for_status()
                        await response.read()

                return await loadgen.run_open_loop(request, rate=50, duration=0.3, timeout=5)
        finally:
            await runner.cleanup()

    result = asyncio.run(main())
    assert result.sent == 15
    assert result.errors == 0
    assert len(result.latencies) == 15
    assert all(latency > 0 for latency in result.latencies)
    # Timed from the due time, a request never looks faster than from its actual start.
    assert sorted(result.latencies)[-1] >= sorted(result.service)[-1] > 0
    assert result.achieved_rate > 0
    data = result.to_json()
    assert data["ok"] == 15
    assert data["latency"]["count"] == data["service_time"]["count"] == 15


def test_failures_and_timeouts_count_as_errors() -> None:
    calls = itertools.count()

    async def request() -> None:
        n = next(calls)
        if n % 3 == 1:
            raise ConnectionError("refused")
        if n % 3 == 2:
            await asyncio.sleep(10)  # cut short by the timeout

    result = asyncio.run(loadgen.run_open_loop(request, rate=100, duration=0.06, timeout=0.05))
    assert result.sent == 6
    assert result.errors == 4
    assert len(result.latencies) == 2
    assert any("ConnectionError: refused" in s for s in result.error_samples)
    assert any(s.startswith("TimeoutError") for s in result.error_samples)
