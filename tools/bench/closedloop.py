"""A closed-loop load generator: a fixed number of requests in flight, for saturation.

Each of `concurrency` workers sends a request, waits for the answer and sends the next,
until the duration is up: the server is never idle for want of work, so the completed
requests a second are its capacity (if the generator keeps up, which its CPU use shows).
Latency here is service time under that load (send to answer), not the open loop's
latency from a schedule: use `loadgen.run_open_loop` for latency at a given rate.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tools.bench.stats import Summary

Request = Callable[[], Awaitable[object]]


@dataclasses.dataclass(frozen=True)
class ClosedLoopResult:
    concurrency: int
    duration: float  # asked for, seconds
    latencies: list[float]  # seconds from send to answer, successful requests only
    errors: int
    error_samples: list[str]
    wall: float  # seconds from the start to the last answer
    cpu: float  # CPU seconds the generating process used meanwhile (every thread)

    @property
    def completed(self) -> int:
        return len(self.latencies)

    @property
    def throughput(self) -> float:
        """Successful requests a second."""
        return self.completed / self.wall if self.wall > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "duration_s": self.duration,
            "ok": self.completed,
            "errors": self.errors,
            "error_samples": self.error_samples,
            "wall_s": round(self.wall, 3),
            "throughput_per_s": round(self.throughput, 1),
            "generator_cpu_percent": round(100 * self.cpu / self.wall, 1) if self.wall else None,
            "latency": Summary.of_seconds(self.latencies).to_json() if self.latencies else None,
        }


async def run_closed_loop(
    request: Request, *, concurrency: int, duration: float, timeout: float = 10.0
) -> ClosedLoopResult:
    """`concurrency` workers call `request()` back to back for `duration` seconds.

    A request started before the end is waited for; an exception counts as an error.
    """
    if concurrency < 1 or duration <= 0:
        raise ValueError("concurrency must be at least 1 and duration positive")
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors: list[str] = []

    async def worker(deadline: float) -> None:
        while loop.time() < deadline:
            started = loop.time()
            try:
                async with asyncio.timeout(timeout):
                    await request()
            except Exception as error:  # a failed request is a data point, not a crash
                errors.append(f"{type(error).__name__}: {error}"[:200])
            else:
                latencies.append(loop.time() - started)

    cpu_before = time.process_time()
    start = loop.time()
    async with asyncio.TaskGroup() as tasks:
        for _ in range(concurrency):
            tasks.create_task(worker(start + duration))
    wall = loop.time() - start
    return ClosedLoopResult(
        concurrency=concurrency,
        duration=duration,
        latencies=latencies,
        errors=len(errors),
        error_samples=sorted(set(errors))[:5],
        wall=wall,
        cpu=time.process_time() - cpu_before,
    )
