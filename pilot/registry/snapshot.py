"""Registries that convert their platform's whole view at once (Consul, Eureka).

Such a registry reads its platform, converts everything it read into a `RegistrySnapshot`
(services by hostname, instances by service port) and publishes it; `SnapshotRegistry`
serves the ServiceDiscovery calls from the latest snapshot and tells handlers what changed
between the two: ADD / UPDATE / DELETE for services, an instances event for a service whose
instances alone moved. Nothing is told when the new snapshot equals the old one, which
matters for platforms that wake readers for unrelated writes.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping, Sequence

from pilot.model.discovery import (
    Event,
    Handler,
    InstancesEvent,
    ProxyAddress,
    RegistryEvent,
    ServiceEvent,
)
from pilot.model.service import Endpoint, Service
from pilot.registry.handlers import Handlers


@dataclasses.dataclass(frozen=True)
class RegistrySnapshot:
    services: Mapping[str, Service]
    endpoints: Mapping[tuple[str, int], tuple[Endpoint, ...]]

    def instances_of(self, hostname: str) -> dict[int, tuple[Endpoint, ...]]:
        return {port: eps for (host, port), eps in self.endpoints.items() if host == hostname}

    @functools.cached_property
    def by_address(self) -> Mapping[str, tuple[Endpoint, ...]]:
        index: dict[str, list[Endpoint]] = {}
        for endpoints in self.endpoints.values():
            for endpoint in endpoints:
                index.setdefault(endpoint.address, []).append(endpoint)
        return {address: tuple(eps) for address, eps in index.items()}


EMPTY = RegistrySnapshot(services={}, endpoints={})


def changes(
    old: RegistrySnapshot, new: RegistrySnapshot, hosts: Iterable[str] | None = None
) -> list[RegistryEvent]:
    """What a handler must hear to go from `old` to `new`, services in hostname order
    (only `hosts`, when the caller knows nothing else changed)."""
    events: list[RegistryEvent] = []
    candidates = old.services.keys() | new.services.keys() if hosts is None else set(hosts)
    for hostname in sorted(candidates):
        before, after = old.services.get(hostname), new.services.get(hostname)
        if after is None and before is None:
            continue
        if after is None:
            assert before is not None
            events.append(ServiceEvent(Event.DELETE, before))
        elif before is None:
            events.append(ServiceEvent(Event.ADD, after))
            if any(new.instances_of(hostname).values()):
                events.append(InstancesEvent(hostname, after.namespace))
        elif before != after:
            events.append(ServiceEvent(Event.UPDATE, after))
        elif old.instances_of(hostname) != new.instances_of(hostname):
            events.append(InstancesEvent(hostname, after.namespace))
    return events


class SnapshotRegistry:
    """The ServiceDiscovery and handler half of a registry; subclasses call `publish()`."""

    provider: str = ""

    def __init__(self) -> None:
        self._snapshot = EMPTY
        self._handlers = Handlers(f"{self.provider} registry")

    @property
    def snapshot(self) -> RegistrySnapshot:
        return self._snapshot

    def publish(self, snapshot: RegistrySnapshot, hosts: Iterable[str] | None = None) -> bool:
        """Serve `snapshot` from now on; True (and handlers told) if anything changed. `hosts`:
        the only hostnames that may differ from the last snapshot (None: any)."""
        events = changes(self._snapshot, snapshot, hosts)
        self._snapshot = snapshot
        for event in events:
            self._handlers.notify(event)
        return bool(events)

    def append_service_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def services(self) -> Sequence[Service]:
        return list(self._snapshot.services.values())

    def get_service(self, hostname: str) -> Service | None:
        return self._snapshot.services.get(hostname)

    def instances(self, hostname: str, port: int) -> tuple[Endpoint, ...]:
        return self._snapshot.endpoints.get((hostname, port), ())

    def instances_by_proxy(self, proxy: ProxyAddress) -> Sequence[Endpoint]:
        return self._snapshot.by_address.get(proxy.ip, ())
