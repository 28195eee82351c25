"""Registry event delivery: handlers added before `run()`, called in order by one worker.

A registry notices changes wherever its platform tells it (a watch, a poll, a config event)
and calls `notify`; the handlers run later, one event at a time, in the worker that the
registry's `run()` owns, so a slow handler never blocks the platform side and two events
never interleave. A handler that raises is logged and the next one still runs.
"""

from __future__ import annotations

import asyncio
import logging

from pilot.model.discovery import Handler, RegistryEvent

log = logging.getLogger("pilot.registry")


class Handlers:
    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._handlers: list[Handler] = []
        self._queue: asyncio.Queue[RegistryEvent] = asyncio.Queue()

    def append(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def notify(self, event: RegistryEvent) -> None:
        self._queue.put_nowait(event)

    def pending(self) -> int:
        return self._queue.qsize()

    async def run(self) -> None:
        """Deliver events until cancelled."""
        while True:
            event = await self._queue.get()
            for handler in list(self._handlers):
                try:
                    await handler(event)
                except Exception:
                    log.exception("%s: a handler failed on %s", self._owner, event)
