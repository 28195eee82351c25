"""An open-loop load generator: requests leave at fixed times, whatever the server does.

A closed loop (send, wait for the answer, send the next) slows down with the server and
hides its stalls: one request stuck for a second is one slow sample instead of the
hundred requests that should have been sent meanwhile (coordinated omission). Here
request i is due at `start + i / rate`; its latency is counted from that due time, so a
late start (the generator's own lag, or a stalled connection pool) shows in the figures.
The generator reports its own lag and CPU use so a saturated generator can be told
from a slow server.

asyncio's timers wake up to 1 ms late (epoll counts whole milliseconds, rounding up), which
alone would add ~1 ms to every figure. So each request is woken 1 ms before it is due and
sent at once; one sent early is timed from when it was sent, one sent late from its due time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tools.bench.stats import Summary, percentile

Request = Callable[[], Awaitable[object]]
EARLY = 0.001  # seconds a request is woken before it is due (timer granularity)


def schedule(rate: float, duration: float) -> list[float]:
    """Due times (seconds after the start) of `rate` requests a second for `duration` seconds."""
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    return [i / rate for i in range(round(rate * duration))]


@dataclasses.dataclass(frozen=True)
class LoadResult:
    rate: float  # asked for, requests a second
    duration: float  # asked for, seconds
    latencies: list[float]  # seconds to answer from the due time (or the send, if earlier)
    service: list[float]  # seconds from the actual start to answer, successful requests only
    errors: int
    error_samples: list[str]
    send_lag: list[float]  # seconds each request started after its due time (< 0: early)
    send_span: float  # seconds from the first due time to the last request's start
    wall: float  # seconds from the first due time to the last answer
    cpu: float  # CPU seconds the generating process used meanwhile

    @property
    def sent(self) -> int:
        return len(self.send_lag)

    @property
    def achieved_rate(self) -> float:
        """Requests started a second (what the schedule asked if the generator kept up)."""
        if self.sent < 2 or self.send_span <= 0:
            return float(self.sent)
        return (self.sent - 1) / self.send_span

    def to_json(self) -> dict[str, Any]:
        return {
            "rate_asked": self.rate,
            "duration_s": self.duration,
            "sent": self.sent,
            "ok": len(self.latencies),
            "errors": self.errors,
            "error_samples": self.error_samples,
            "achieved_rate": round(self.achieved_rate, 1),
            "send_lag_p50_ms": _ms(percentile(self.send_lag, 50)) if self.send_lag else None,
            "send_lag_p99_ms": _ms(percentile(self.send_lag, 99)) if self.send_lag else None,
            "generator_cpu_percent": round(100 * self.cpu / self.wall, 1) if self.wall else None,
            "latency": Summary.of_seconds(self.latencies).to_json() if self.latencies else None,
            "service_time": Summary.of_seconds(self.service).to_json() if self.service else None,
        }


async def run_open_loop(
    request: Request, *, rate: float, duration: float, timeout: float = 10.0
) -> LoadResult:
    """Call `request()` at `rate` a second for `duration` s; an exception counts as an error."""
    loop = asyncio.get_running_loop()
    due_times = schedule(rate, duration)
    latencies: list[float] = []
    service: list[float] = []
    lag: list[float] = []
    errors: list[str] = []
    last_start = last_done = 0.0

    async def one(due: float) -> None:
        nonlocal last_start, last_done
        now = loop.time()
        lag.append(now - due)
        last_start = max(last_start, now)
        try:
            async with asyncio.timeout(timeout):
                await request()
        except Exception as error:  # any failure of the request is a data point, not a crash
            errors.append(f"{type(error).__name__}: {error}"[:200])
        else:
            done = loop.time()
            latencies.append(done - min(due, now))
            service.append(done - now)
        last_done = max(last_done, loop.time())

    cpu_before = time.process_time()
    start = loop.time() + 0.05  # room to create the first task before it is due
    async with asyncio.TaskGroup() as tasks:
        for offset in due_times:
            due = start + offset
            delay = due - EARLY - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.create_task(one(due))
    cpu = time.process_time() - cpu_before
    return LoadResult(
        rate=rate,
        duration=duration,
        latencies=latencies,
        service=service,
        errors=len(errors),
        error_samples=sorted(set(errors))[:5],
        send_lag=lag,
        send_span=max(last_start - start, 0.0),
        wall=max(last_done - start, 1e-9),
        cpu=cpu,
    )


def _ms(seconds: float) -> float:
    return round(seconds * 1e3, 3)
