"""Waiting in tests: poll a condition until it holds, bounded, with a message that says what."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "condition",
) -> None:
    """Waits until `condition()` (plain or async) is true; fails after `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                result = condition()
                if inspect.isawaitable(result):
                    result = await result
                if result:
                    return
                await asyncio.sleep(interval)
    except TimeoutError:
        raise AssertionError(f"{what} not reached within {timeout}s") from None


def poll(check: Callable[[], T], what: str, timeout: float = 60.0, interval: float = 0.5) -> T:
    """Calls `check()` until its answer is truthy and returns it; fails after `timeout` seconds.

    The blocking twin of `eventually`, for tests that drive real processes from plain threads;
    the failure shows the last answer, which usually says why.
    """
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout:.0f}s (last: {last!r})")
        time.sleep(interval)
