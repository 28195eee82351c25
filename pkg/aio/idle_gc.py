"""Python's full garbage collection at quiet moments, not in the middle of a push.

CPython's cycle collector runs its oldest generation when enough objects have survived the
younger ones, wherever the program happens to be. A control plane holding the config of a
thousand services and the caches of its proxies has millions of tracked objects, so that
collection stops the event loop for 100-350 ms (measured in Pilot at 1000 services and 100
proxies), and whichever change arrived then waits for it: the endpoint-change p99 was that
pause. Young collections are cheap (they see only new objects) and stay automatic.

`IdleCollector` takes the full collection over: it lifts the automatic one out of reach,
and runs it itself once the server has been quiet for `quiet` seconds (no activity reported
through `busy()`), or after `longest` seconds at the latest whatever the server is doing, so
cyclic garbage stays bounded under constant churn. Objects alive at `install()` (modules,
classes, the kinds table) and those surviving a collection are frozen out of the next ones,
which then cost what was allocated since rather than the whole heap; every tenth collection
thaws them first, so garbage cycles among old objects are still found.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger("idle_gc")

# Gen-1 collections before CPython would consider a full one: large enough never to be reached.
_NEVER = 1 << 30


class IdleCollector:
    def __init__(
        self,
        *,
        quiet: float = 0.5,
        shortest: float = 5.0,
        longest: float = 60.0,
        thaw_every: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (quiet > 0 and 0 < shortest <= longest and thaw_every > 0):
            raise ValueError(
                "idle collector: need 0 < quiet, 0 < shortest <= longest and 0 < thaw_every"
            )
        self.thaw_every = thaw_every
        self.quiet = quiet
        self.shortest = shortest  # no two full collections closer than this
        self.longest = longest  # nor further apart than this, while garbage is pending
        self._clock = clock
        self._last_busy = clock()
        self._last_full = clock()
        self._saved: tuple[int, int, int] | None = None
        self.collections = 0
        self.pause_seconds = 0.0  # total time the loop spent in our full collections

    def install(self) -> None:
        """Take the full collection over from CPython. Undone by `uninstall()`."""
        if self._saved is not None:
            return
        gc.collect()
        gc.freeze()
        self._saved = gc.get_threshold()
        young, middle, _ = self._saved
        gc.set_threshold(young, middle, _NEVER)

    def uninstall(self) -> None:
        if self._saved is None:
            return
        gc.set_threshold(*self._saved)
        gc.unfreeze()
        self._saved = None

    @property
    def last_busy(self) -> float:
        """When (on the collector's clock) the server last said it was working."""
        return self._last_busy

    def busy(self) -> None:
        """The server is working (a change arrived, a push started): not a quiet moment."""
        self._last_busy = self._clock()

    def due(self) -> bool:
        """Whether a full collection should run now."""
        if gc.get_count()[2] == 0:
            return False  # nothing reached the old generation since the last one
        now = self._clock()
        since_full = now - self._last_full
        if since_full >= self.longest:
            return True
        return since_full >= self.shortest and now - self._last_busy >= self.quiet

    def collect(self) -> int:
        """A full collection. What survives it is frozen, so the next one looks only at what
        was made since; every `thaw_every`-th looks at everything again, so cycles among
        objects frozen earlier are not kept forever."""
        started = time.perf_counter()
        if self.collections % self.thaw_every == self.thaw_every - 1:
            gc.unfreeze()
        found = gc.collect(2)
        gc.freeze()
        spent = time.perf_counter() - started
        self._last_full = self._clock()
        self.collections += 1
        self.pause_seconds += spent
        log.debug("full collection: %d unreachable objects in %.1f ms", found, spent * 1e3)
        return found

    async def run(self) -> None:
        """Install, then collect whenever due, until cancelled (which uninstalls)."""
        self.install()
        try:
            while True:
                await asyncio.sleep(self.quiet / 2)
                if self.due():
                    self.collect()
        finally:
            self.uninstall()
