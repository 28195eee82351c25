"""The agent's clock, injectable so rotation timing is tested on fake time.

Certificate validity is wall-clock time, so `now()` is seconds since the epoch; `sleep()` is
how the rotation loop waits for it. `testing.FakeClock` is the test double.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))
