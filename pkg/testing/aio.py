"""Async tests without a pytest plugin: each in its own event loop, bounded, leak-checked."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any


def run_async(test: Callable[..., Awaitable[None]] | None = None, *, timeout: float = 60.0) -> Any:
    """Decorate an `async def` test (`@run_async` or `@run_async(timeout=90)`).

    The test runs in a fresh loop under `timeout` seconds and fails if it leaves tasks
    running behind it (the twin of Istio's leak checks).
    """
    if test is None:
        return functools.partial(run_async, timeout=timeout)

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        async def main() -> None:
            async with asyncio.timeout(timeout):
                await test(*args, **kwargs)
            current = asyncio.current_task()
            leaked = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
            for task in leaked:
                task.cancel()
            if leaked:
                raise AssertionError(f"test leaked tasks: {leaked}")

        asyncio.run(main())

    return wrapper
