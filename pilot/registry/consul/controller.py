"""The Consul registry: blocking queries on the catalog and on each service's health.

One watch on `/v1/catalog/services` learns which services exist; each service then gets its
own watch on `/v1/health/service/<name>`, because a health check that changes moves only that
service's index, never the catalog's. Every answer replaces what is known of its service and
the view is converted again (conversion.py) and published; handlers hear only what really
changed (Consul may wake a blocking query for unrelated writes). Only instances whose checks all
pass get traffic.

Consul's rules for blocking queries are followed as its documentation states them: indexes
compared as numbers, reset to 0 when one goes backwards (a snapshot restore), never below 1
once known (0 would not block: a busy loop), and the loop rate-limited rather than slept.
Consul unreachable: the last good view stays, the watch backs off and retries.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pilot.registry.consul import conversion
from pilot.registry.consul.client import CatalogClient, ConsulUnavailable
from pilot.registry.provider import Provider
from pilot.registry.snapshot import SnapshotRegistry
from pkg.aio.backoff import Backoff

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ConsulOptions:
    wait: str = "10m"  # a blocking query's wait (Consul caps it at 10m), as Istio used
    interval: float = 2.0  # seconds: --consulserverInterval, the steady rate of one watch
    burst: int = 2  # queries a watch may make back to back before the rate applies
    backoff_min: float = 0.5
    backoff_max: float = 30.0


@dataclasses.dataclass(frozen=True)
class WatchStatus:
    """For /debug/registryz: what the registry knows and whether Consul answers."""

    state: str  # "syncing" | "synced" | "unreachable"
    last_error: str
    last_sync: float  # unix time of the last successful answer, 0 before any
    services: int
    instances: int
    healthy_instances: int


class ConsulRegistry(SnapshotRegistry):
    provider = Provider.CONSUL.value

    def __init__(self, *, client: CatalogClient, options: ConsulOptions | None = None) -> None:
        super().__init__()
        self._client = client
        self._options = options or ConsulOptions()
        self._entries: dict[str, Sequence[Mapping[str, Any]]] = {}  # health entries by service
        self._answered: set[str] = set()
        self._catalog_answered = False
        self._last_error = ""
        self._last_sync = 0.0
        self._failing: set[str] = set()  # watches whose last call failed

    def has_synced(self) -> bool:
        """The catalog and every service in it have answered at least once."""
        return self._catalog_answered and self._answered >= set(self._entries)

    def status(self) -> WatchStatus:
        entries = [e for group in self._entries.values() for e in group]
        if self._failing:
            state = "unreachable"
        elif self.has_synced():
            state = "synced"
        else:
            state = "syncing"
        return WatchStatus(
            state=state,
            last_error=self._last_error,
            last_sync=self._last_sync,
            services=len(self.snapshot.services),
            instances=len(entries),
            healthy_instances=sum(conversion.is_passing(e) for e in entries),
        )

    async def run(self, *, started: asyncio.Event | None = None) -> None:
        """Watches until cancelled; handlers are called from here too."""
        watches: dict[str, asyncio.Task[None]] = {}
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._handlers.run(), name="consul-handlers")
                if started is not None:
                    started.set()
                async for names in self._watch("catalog", self._client.services):
                    self._catalog_answered = True
                    for name in set(watches) - set(names):
                        watches.pop(name).cancel()
                        self._forget(name)
                    for name in sorted(set(names) - set(watches)):
                        self._entries.setdefault(name, ())
                        watches[name] = group.create_task(
                            self._watch_service(name), name=f"consul-health-{name}"
                        )
                    self._convert()
        finally:
            await self._client.close()

    async def _watch_service(self, name: str) -> None:
        async def health(index: int, wait: str) -> Any:
            return await self._client.health(name, index, wait)

        async for entries in self._watch(name, health):
            self._entries[name] = tuple(entries)
            self._answered.add(name)
            self._convert()

    async def _watch(self, what: str, query: Callable[[int, str], Any]) -> Any:
        """Yields each answer of a blocking query, forever, by Consul's index rules."""
        index = 0
        backoff = Backoff(self._options.backoff_min, self._options.backoff_max, jitter=0.2)
        limiter = _RateLimiter(self._options.burst, self._options.interval)
        while True:
            await limiter.wait()
            try:
                answer = await query(index, self._options.wait)
            except ConsulUnavailable as error:
                self._failing.add(what)
                self._last_error = f"{what}: {error}"
                delay = backoff.next_delay()
                log.warning("consul %s: %s; retrying in %.1fs", what, error, delay)
                await asyncio.sleep(delay)
                continue
            self._failing.discard(what)
            self._last_sync = time.time()
            backoff.reset()
            index = next_index(index, answer.index, what)
            yield answer.value

    def _forget(self, name: str) -> None:
        self._entries.pop(name, None)
        self._answered.discard(name)
        self._failing.discard(name)

    def _convert(self) -> None:
        self.publish(
            conversion.convert_catalog(
                {
                    name: [conversion.from_health(e) for e in entries]
                    for name, entries in self._entries.items()
                }
            )
        )


def next_index(previous: int, answered: int, what: str = "") -> int:
    """The index to block on next: reset when it went backwards, at least 1 once known."""
    if answered < previous:
        log.info("consul %s: index went backwards (%d -> %d); re-reading", what, previous, answered)
        return 0
    return max(answered, 1)


class _RateLimiter:
    """A token bucket: `burst` calls back to back, then one per `interval` seconds."""

    def __init__(self, burst: int, interval: float) -> None:
        self._burst = burst
        self._interval = interval
        self._tokens = float(burst)
        self._stamp = time.monotonic()

    async def wait(self) -> None:
        now = time.monotonic()
        if self._interval > 0:
            self._tokens = min(self._burst, self._tokens + (now - self._stamp) / self._interval)
        else:
            self._tokens = self._burst
        self._stamp = now
        if self._tokens < 1:
            await asyncio.sleep((1 - self._tokens) * self._interval)
            self._tokens = 1
            self._stamp = time.monotonic()
        self._tokens -= 1
