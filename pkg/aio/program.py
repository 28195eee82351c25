"""How every program of the mesh runs: `python -m <component>.main`, one way.

`run` gives each program the same life: logging to stderr in one format, one asyncio loop, a
first SIGTERM or SIGINT asking for a graceful stop (the program drains and returns), a second
stopping it at once, and start-up failures (a taken port, unreadable key material) told in
one line with exit status 1 instead of a traceback.

A program hands `run` a coroutine function taking the `stop` event. One that has no drain of
its own stops by cancellation: `until(stop, server.run())` cancels the server when `stop` is
set, and its TaskGroups and `finally` blocks clean up.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

Serve = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


def run(
    serve: Serve,
    *,
    name: str,
    level: str | int = logging.INFO,
    fatal: tuple[type[Exception], ...] = (OSError, ValueError),
) -> int:
    """Runs `serve(stop)` until it returns; the exit status for `sys.exit`."""
    logging.basicConfig(
        level=level.upper() if isinstance(level, str) else level,
        format=LOG_FORMAT,
        stream=sys.stderr,
    )
    log = logging.getLogger(name)
    try:
        asyncio.run(_main(serve))
    except asyncio.CancelledError:
        log.warning("%s stopped at once by a second signal", name)
        return 1
    except fatal as error:
        log.error("%s cannot start: %s", name, error)
        return 1
    except ExceptionGroup as group:
        # A TaskGroup's failure: fatal errors are told one per line, anything else is a bug
        # and keeps its traceback.
        matched, rest = group.split(fatal)
        if rest is not None:
            raise
        for leaf in _leaves(matched):
            log.error("%s cannot start: %s", name, leaf)
        return 1
    return 0


async def until(stop: asyncio.Event, serving: Coroutine[Any, Any, None]) -> None:
    """Runs `serving` until it returns or `stop` is set (then cancels it and waits for it)."""
    async with asyncio.TaskGroup() as tasks:
        server = tasks.create_task(serving, name="serving")
        stopper = tasks.create_task(stop.wait(), name="stop-wait")
        await asyncio.wait({server, stopper}, return_when=asyncio.FIRST_COMPLETED)
        server.cancel()
        stopper.cancel()


async def _main(serve: Serve) -> None:
    main = asyncio.current_task()
    assert main is not None
    stop = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set():
            main.cancel()
        else:
            stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)
    try:
        await serve(stop)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def _leaves(group: BaseExceptionGroup[Exception] | None) -> list[Exception]:
    if group is None:
        return []
    out: list[Exception] = []
    for error in group.exceptions:
        out.extend(_leaves(error) if isinstance(error, BaseExceptionGroup) else [error])
    return out
