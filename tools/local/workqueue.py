"""A work queue as Kubernetes' controllers use one: keys, not events; each key once in the queue
however often it changed; one worker reconciling one key at a time; a failed key retried later.

Handlers `add` keys; the worker calls `reconcile(key)`, which reads the current state (never the
event's copy) and makes the world match it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger("workqueue")

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(
        self, name: str, reconcile: Callable[[K], Awaitable[None]], *, retry: float = 1.0
    ) -> None:
        self._name = name
        self._reconcile = reconcile
        self._retry = retry
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()

    @property
    def name(self) -> str:
        return self._name

    def add(self, key: K) -> None:
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: K, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self.add, key)

    async def run(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            try:
                await self._reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("%s: %s: %s; retrying in %.1fs", self._name, key, error, self._retry)
                self.add_after(key, self._retry)
