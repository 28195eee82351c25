"""A registry held in memory, changed by calls (Istio's memory registry).

For tests and tools: the aggregate's tests put two of these side by side, and it is the
reference implementation the conformance suite is checked against.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pilot.model.discovery import Event, Handler, InstancesEvent, ProxyAddress, ServiceEvent
from pilot.model.service import Endpoint, Service
from pilot.registry.handlers import Handlers
from pilot.registry.provider import Provider


class MemoryRegistry:
    def __init__(self, provider: str = Provider.MOCK.value, *, synced: bool = True) -> None:
        self.provider = provider
        self._services: dict[str, Service] = {}
        self._instances: dict[tuple[str, int], tuple[Endpoint, ...]] = {}
        self._handlers = Handlers(f"memory registry {provider}")
        self._synced = synced

    # Changing it.

    def add_service(self, service: Service) -> None:
        """Add or replace a service (its instances stay, for ports it still has)."""
        before = self._services.get(service.hostname)
        self._services[service.hostname] = service
        ports = {p.number for p in service.ports}
        for key in [k for k in self._instances if k[0] == service.hostname and k[1] not in ports]:
            del self._instances[key]
        if before != service:
            event = Event.ADD if before is None else Event.UPDATE
            self._handlers.notify(ServiceEvent(event, service))

    def remove_service(self, hostname: str) -> None:
        service = self._services.pop(hostname, None)
        for key in [k for k in self._instances if k[0] == hostname]:
            del self._instances[key]
        if service is not None:
            self._handlers.notify(ServiceEvent(Event.DELETE, service))

    def set_instances(self, hostname: str, port: int, instances: Sequence[Endpoint]) -> None:
        service = self._services.get(hostname)
        if service is None or service.port(port) is None:
            raise KeyError(f"no service {hostname} with port {port}")
        self._instances[(hostname, port)] = tuple(instances)
        self._handlers.notify(InstancesEvent(hostname, service.namespace))

    def mark_synced(self) -> None:
        self._synced = True

    # ServiceDiscovery.

    def services(self) -> list[Service]:
        return list(self._services.values())

    def get_service(self, hostname: str) -> Service | None:
        return self._services.get(hostname)

    def instances(self, hostname: str, port: int) -> tuple[Endpoint, ...]:
        return self._instances.get((hostname, port), ())

    def instances_by_proxy(self, proxy: ProxyAddress) -> list[Endpoint]:
        return [e for eps in self._instances.values() for e in eps if e.address == proxy.ip]

    # Controller.

    def append_service_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    async def run(self, *, started: asyncio.Event | None = None) -> None:
        if started is not None:
            started.set()
        await self._handlers.run()

    def has_synced(self) -> bool:
        return self._synced
