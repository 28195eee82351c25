"""What the broker reads from the mesh's config, kept current by an informer: the catalog
kinds and the service registry (ServiceEntry, WorkloadEntry).

The catalog is rebuilt when any of its kinds changes; anything it had to leave out is logged
once per change, with the reason. Waiters (an asynchronous provision waiting for a workload)
are woken on every change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from broker import catalog
from pkg.config.kinds import ALL, KindSchema
from pkg.config.resource import Resource
from pkg.kube.client import ConfigClient
from pkg.kube.informer import Informer

log = logging.getLogger("broker")


def _kind(api_version: str, kind: str) -> KindSchema:
    schema = ALL.by_kind(api_version, kind)
    assert schema is not None, f"{kind} missing from kinds.yaml"
    return schema


SERVICE_CLASS = _kind("broker.istio.io/v1alpha1", "ServiceClass")
SERVICE_PLAN = _kind("broker.istio.io/v1alpha1", "ServicePlan")
SERVICE_ENTRY = _kind("networking.istio.io/v1alpha3", "ServiceEntry")
WORKLOAD_ENTRY = _kind("networking.istio.io/v1alpha3", "WorkloadEntry")
WATCHED = (SERVICE_CLASS, SERVICE_PLAN, SERVICE_ENTRY, WORKLOAD_ENTRY)


class MeshView:
    def __init__(self, client: ConfigClient) -> None:
        self._informer = Informer(client, WATCHED, self._changed)
        self._changes = asyncio.Condition()
        self._index = catalog.EMPTY
        self._problems: tuple[str, ...] = ()
        self._stale = True

    @property
    def synced(self) -> asyncio.Event:
        return self._informer.synced

    async def run(self) -> None:
        """Follows the store until cancelled."""
        await self._informer.run()

    async def _changed(self) -> None:
        self._stale = True
        async with self._changes:
            self._changes.notify_all()

    def catalog(self) -> catalog.CatalogIndex:
        if self._stale:
            self._stale = False
            self._index = catalog.build(
                self._informer.list(SERVICE_CLASS),
                self._informer.list(SERVICE_PLAN),
                self._informer.list(SERVICE_ENTRY),
            )
            if self._index.problems != self._problems:
                for problem in self._index.problems:
                    log.warning("catalog: %s", problem)
            self._problems = self._index.problems
        return self._index

    def service_entries(self) -> list[Resource]:
        return self._informer.list(SERVICE_ENTRY)

    def workload_entries(self) -> list[Resource]:
        return self._informer.list(WORKLOAD_ENTRY)

    async def wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Until `condition()` holds (True) or `timeout` seconds pass (False)."""
        try:
            async with asyncio.timeout(timeout):
                async with self._changes:
                    await self._changes.wait_for(condition)
        except TimeoutError:
            return condition()
        return True
