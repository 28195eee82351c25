"""How the mesh's servers stop: SIGTERM or SIGINT cancels the serving task, which then
runs its own cleanup (TaskGroups cancelled, sockets closed) and returns normally."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from typing import Any


async def serve_until_signalled(serve: Coroutine[Any, Any, None]) -> None:
    task = asyncio.current_task()
    assert task is not None, "call from within a running task"
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await serve
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
