import asyncio

import pytest

from tools.bench import closedloop


def test_keeps_exactly_concurrency_requests_in_flight() -> None:
    in_flight = 0
    most = 0

    async def request() -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1

    result = asyncio.run(closedloop.run_closed_loop(request, concurrency=4, duration=0.2))
    assert most == 4
    assert in_flight == 0
    assert result.errors == 0
    assert result.completed >= 4  # every worker finished at least its first request
    assert all(latency >= 0.01 for latency in result.latencies)  # sleep's lower bound
    assert result.throughput == result.completed / result.wall
    data = result.to_json()
    assert data["ok"] == result.completed
    assert data["concurrency"] == 4
    assert data["latency"]["count"] == result.completed


def test_failures_and_timeouts_count_as_errors_and_the_loop_goes_on() -> None:
    calls = 0

    async def request() -> None:
        nonlocal calls
        calls += 1
        if calls % 3 == 1:
            raise RuntimeError("refused")
        if calls % 3 == 2:
            await asyncio.sleep(1)  # past the timeout
        await asyncio.sleep(0.001)

    result = asyncio.run(
        closedloop.run_closed_loop(request, concurrency=2, duration=0.15, timeout=0.02)
    )
    assert result.errors > 0
    assert result.completed > 0
    assert "RuntimeError: refused" in result.error_samples
    assert any(sample.startswith("TimeoutError") for sample in result.error_samples)
    assert result.errors + result.completed == calls


@pytest.mark.parametrize(("concurrency", "duration"), [(0, 1), (1, 0)])
def test_rejects_no_workers_or_no_time(concurrency: int, duration: float) -> None:
    async def request() -> None:
        return None

    with pytest.raises(ValueError, match="concurrency must be at least 1 and duration positive"):
        asyncio.run(closedloop.run_closed_loop(request, concurrency=concurrency, duration=duration))


def test_no_answer_has_no_latency_summary() -> None:
    async def request() -> None:
        raise OSError("down")

    result = asyncio.run(closedloop.run_closed_loop(request, concurrency=1, duration=0.01))
    assert result.completed == 0
    assert result.to_json()["latency"] is None
