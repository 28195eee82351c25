"""The Eureka registry: a full read, then deltas, on an interval, reconciled by hash.

Eureka has no blocking reads, so the registry polls (`--eurekaserverInterval`). It keeps its
own copy of every instance: the first read is the full registry; later reads are deltas
(only the instances changed in Eureka's last few minutes, each with an actionType, repeated
on every call inside that window, so they are applied idempotently). After applying one the
copy's hash (`STATUS_count_...`) must equal the delta's `apps__hashcode`, which Eureka
computes over its whole registry: when it does not, the copy has drifted and the full
registry is read again, as Eureka's own clients do. A server that refuses deltas gets full
reads, which cost a 304 when nothing changed.

Only UP instances become endpoints (conversion.py); handlers hear only what changed in the
converted view. Eureka unreachable: the last view stays and reads
back off until it answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

from pilot.registry.eureka import conversion
from pilot.registry.eureka.client import (
    DeltaUnavailable,
    EurekaUnavailable,
    Registry,
    RegistryClient,
)
from pilot.registry.provider import Provider
from pilot.registry.snapshot import SnapshotRegistry
from pkg.aio.backoff import Backoff

log = logging.getLogger(__name__)

_Key = tuple[str, str]  # (app, instanceId)


@dataclasses.dataclass(frozen=True)
class EurekaOptions:
    interval: float = 2.0  # seconds between reads (Istio's Eureka adapter polled every 2s)
    use_delta: bool = True
    backoff_min: float = 0.5
    backoff_max: float = 30.0


@dataclasses.dataclass(frozen=True)
class PollStatus:
    state: str  # "syncing" | "synced" | "unreachable"
    last_error: str
    last_sync: float
    services: int
    instances: int
    up_instances: int
    full_reads: int
    delta_reads: int


class EurekaRegistry(SnapshotRegistry):
    provider = Provider.EUREKA.value

    def __init__(self, *, client: RegistryClient, options: EurekaOptions | None = None) -> None:
        super().__init__()
        self._client = client
        self._options = options or EurekaOptions()
        self._instances: dict[_Key, conversion.EurekaInstance] = {}
        self._synced = False
        self._have_copy = False
        self._last_delta: tuple[str, str] | None = None
        self._last_error = ""
        self._last_sync = 0.0
        self._failing = False
        self._full_reads = 0
        self._delta_reads = 0

    def has_synced(self) -> bool:
        return self._synced

    def status(self) -> PollStatus:
        instances = self._instances.values()
        return PollStatus(
            state="unreachable" if self._failing else "synced" if self._synced else "syncing",
            last_error=self._last_error,
            last_sync=self._last_sync,
            services=len(self.snapshot.services),
            instances=len(instances),
            up_instances=sum(i.status == conversion.STATUS_UP for i in instances),
            full_reads=self._full_reads,
            delta_reads=self._delta_reads,
        )

    async def run(self, *, started: asyncio.Event | None = None) -> None:
        """Polls until cancelled; handlers are called from here too."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._handlers.run(), name="eureka-handlers")
            if started is not None:
                started.set()
            await self._poll_forever()

    async def _poll_forever(self) -> None:
        backoff = Backoff(self._options.backoff_min, self._options.backoff_max, jitter=0.2)
        while True:
            try:
                await self.poll()
            except EurekaUnavailable as error:
                self._failing = True
                self._last_error = str(error)
                delay = backoff.next_delay()
                log.warning("eureka: %s; retrying in %.1fs", error, delay)
                await asyncio.sleep(delay)
                continue
            self._failing = False
            backoff.reset()
            await asyncio.sleep(self._options.interval)

    async def poll(self) -> None:
        """One read: a delta when the copy can take one, else the full registry."""
        if self._have_copy and self._options.use_delta:
            try:
                delta = await self._client.delta()
            except DeltaUnavailable:
                log.info("eureka: deltas are disabled on the server; reading in full")
                self._options = dataclasses.replace(self._options, use_delta=False)
            else:
                self._delta_reads += 1
                if self._apply_delta(delta):
                    return self._answered()
                log.info("eureka: copy disagrees with the registry's hash; reading in full")
                self._have_copy = False
        # A copy that drifted must be replaced even if the registry did not change since.
        full = await self._client.applications(if_changed=self._have_copy)
        self._full_reads += 1
        if full is None:  # a 304: nothing changed since the last full read
            return self._answered(converted=False)
        self._instances = {(i.app, i.instance_id): i for i in full.instances}
        self._have_copy = True
        self._answered()

    def _apply_delta(self, delta: Registry) -> bool:
        """Applies a delta; False when the copy then disagrees with the registry's hash."""
        stamp = (delta.versions_delta, delta.apps_hashcode)
        if stamp == self._last_delta:
            return True  # the very same delta as last time: nothing new
        for instance, action in zip(delta.instances, delta.actions, strict=True):
            key = (instance.app, instance.instance_id)
            if action == "DELETED":
                self._instances.pop(key, None)
            else:
                self._instances[key] = instance
        ours = conversion.apps_hashcode(i.status for i in self._instances.values())
        if ours != delta.apps_hashcode:
            self._last_delta = None
            return False
        self._last_delta = stamp
        return True

    def _answered(self, *, converted: bool = True) -> None:
        self._synced = True
        self._last_sync = time.time()
        if converted:
            self.publish(conversion.convert_applications(self._instances.values()))
