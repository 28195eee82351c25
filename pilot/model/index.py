"""ServiceIndex: the services and instances one push generates from, frozen.

Registries change under Pilot at any time; a push must see one consistent view. The index is
that view: services by hostname, instances by (hostname, service port) and by address, read
from a ServiceDiscovery (usually the aggregate registry). `refresh` makes the next view from
this one by re-reading only the hostnames that changed, so an endpoint change costs the
instances of one service, not a walk over the mesh; unchanged instance tuples are the same
objects in both views, which is what lets generation caches tell them apart by identity.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from pilot.model.discovery import ProxyAddress, ServiceDiscovery
from pilot.model.service import Endpoint, Service

_LINEAGE = 16  # refreshes an index remembers (see `changed_since`)


@dataclasses.dataclass(frozen=True)
class ServiceIndex:
    services: Mapping[str, Service]
    endpoints: Mapping[tuple[str, int], tuple[Endpoint, ...]]
    # address -> the (hostname, port) keys of `endpoints` holding an instance at it
    by_address: Mapping[str, frozenset[tuple[str, int]]]
    # Which view this is, and the hostnames each recent refresh re-read to get here.
    generation: int = dataclasses.field(default=0, compare=False)
    lineage: tuple[tuple[int, frozenset[str] | None], ...] = dataclasses.field(
        default=(), compare=False
    )

    @classmethod
    def empty(cls) -> ServiceIndex:
        return cls({}, {}, {})

    @classmethod
    def read(cls, discovery: ServiceDiscovery) -> ServiceIndex:
        return cls.empty().refresh(discovery, None)

    def refresh(self, discovery: ServiceDiscovery, hostnames: Iterable[str] | None) -> ServiceIndex:
        """The view after `hostnames` changed (None: everything may have)."""
        if hostnames is None:
            services = {s.hostname: s for s in discovery.services()}
            endpoints: dict[tuple[str, int], tuple[Endpoint, ...]] = {}
            changed = set(services)
        else:
            services = dict(self.services)
            endpoints = dict(self.endpoints)
            changed = set(hostnames)
            for key in [k for k in endpoints if k[0] in changed]:
                del endpoints[key]
            for hostname in changed:
                service = discovery.get_service(hostname)
                if service is None:
                    services.pop(hostname, None)
                else:
                    services[hostname] = service
        for hostname in changed:
            service = services.get(hostname)
            if service is None:
                continue
            for port in service.ports:
                endpoints[(hostname, port.number)] = tuple(
                    discovery.instances(hostname, port.number)
                )
        step = (self.generation, frozenset(changed) if hostnames is not None else None)
        return ServiceIndex(
            services,
            endpoints,
            self._addresses(endpoints, changed, hostnames),
            generation=self.generation + 1,
            lineage=(*self.lineage, step)[-_LINEAGE:],
        )

    def changed_since(self, generation: int) -> frozenset[str] | None:
        """The hostnames whose services or instances may differ from those of view
        `generation` (an earlier refresh of this one); None when it cannot tell."""
        if generation == self.generation:
            return frozenset()
        changed: set[str] = set()
        for before, hosts in reversed(self.lineage):
            if hosts is None:
                return None
            changed |= hosts
            if before == generation:
                return frozenset(changed)
        return None

    def _addresses(
        self,
        endpoints: Mapping[tuple[str, int], tuple[Endpoint, ...]],
        changed: set[str],
        hostnames: Iterable[str] | None,
    ) -> dict[str, frozenset[tuple[str, int]]]:
        if hostnames is None:
            keys_by_address: dict[str, set[tuple[str, int]]] = {}
            for key, instances in endpoints.items():
                for endpoint in instances:
                    keys_by_address.setdefault(endpoint.address, set()).add(key)
            return {a: frozenset(k) for a, k in keys_by_address.items()}
        by_address = dict(self.by_address)
        touched: dict[str, set[tuple[str, int]]] = {}
        for address, keys in self.by_address.items():
            if any(host in changed for host, _ in keys):
                touched[address] = {k for k in keys if k[0] not in changed}
        for key, instances in endpoints.items():
            if key[0] in changed:
                for endpoint in instances:
                    touched.setdefault(
                        endpoint.address,
                        {
                            k
                            for k in self.by_address.get(endpoint.address, ())
                            if k[0] not in changed
                        },
                    ).add(key)
        for address, remaining in touched.items():
            if remaining:
                by_address[address] = frozenset(remaining)
            else:
                by_address.pop(address, None)
        return by_address

    def endpoints_of(self, hostname: str, port: int) -> tuple[Endpoint, ...]:
        return self.endpoints.get((hostname, port), ())

    def endpoints_at(self, address: str) -> list[Endpoint]:
        """The instances a workload at `address` serves, in hostname and port order."""
        return [
            e
            for key in sorted(self.by_address.get(address, ()))
            for e in self.endpoints[key]
            if e.address == address
        ]

    def instances_by_proxy(self, proxy: ProxyAddress) -> list[Endpoint]:
        return self.endpoints_at(proxy.ip)
