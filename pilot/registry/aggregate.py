"""The aggregate registry: several registries seen as one, as Istio's aggregate controller.

Registries are consulted in the order given (the `--registries` order): the first registry
that knows a hostname wins it, and that hostname's instances come from that registry alone,
so two platforms never mix endpoints under one name. Instances by proxy are every
registry's, for the hostnames it won.

Events fan in: each member event is applied, in order, to the members' services as their
events told them, and the aggregate reports what it changed in the merged view (a member's
DELETE of a host another member also knows is an UPDATE here; a change in a shadowed member
is nothing at all). Handlers re-read the merged view itself, which may be further on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pilot.model.discovery import (
    Event,
    Handler,
    InstancesEvent,
    ProxyAddress,
    RegistryEvent,
    ServiceEvent,
    ServiceRegistry,
)
from pilot.model.service import Endpoint, Service
from pilot.registry.handlers import Handlers


class AggregateRegistry:
    provider = "Aggregate"

    def __init__(self, registries: Sequence[ServiceRegistry]) -> None:
        self._registries = list(registries)
        self._handlers = Handlers("aggregate registry")
        # Each member's services as its events have told them (the merged events follow
        # these, in order; lookups read the members themselves).
        self._views: list[dict[str, Service]] = [{} for _ in self._registries]
        for index, registry in enumerate(self._registries):
            registry.append_service_handler(self._forwarder(index))

    @property
    def registries(self) -> list[ServiceRegistry]:
        return list(self._registries)

    # ServiceDiscovery.

    def services(self) -> list[Service]:
        seen: dict[str, Service] = {}
        for registry in self._registries:
            for service in registry.services():
                seen.setdefault(service.hostname, service)
        return list(seen.values())

    def get_service(self, hostname: str) -> Service | None:
        owner = self._owner(hostname)
        return owner.get_service(hostname) if owner is not None else None

    def instances(self, hostname: str, port: int) -> Sequence[Endpoint]:
        owner = self._owner(hostname)
        return owner.instances(hostname, port) if owner is not None else ()

    def instances_by_proxy(self, proxy: ProxyAddress) -> list[Endpoint]:
        return [
            endpoint
            for registry in self._registries
            for endpoint in registry.instances_by_proxy(proxy)
            if self._owner(endpoint.hostname) is registry
        ]

    def owner_of(self, hostname: str) -> ServiceRegistry | None:
        """The registry whose service of that name wins."""
        return self._owner(hostname)

    def _owner(self, hostname: str) -> ServiceRegistry | None:
        return next((r for r in self._registries if r.get_service(hostname) is not None), None)

    # Controller.

    def append_service_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def has_synced(self) -> bool:
        return all(r.has_synced() for r in self._registries)

    async def run(self, *, started: asyncio.Event | None = None) -> None:
        """Run every member and the merged event delivery until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            member_started = []
            for registry in self._registries:
                event = asyncio.Event()
                member_started.append(event)
                tasks.create_task(registry.run(started=event), name=f"registry-{registry.provider}")
            tasks.create_task(self._handlers.run(), name="registry-aggregate-events")
            for event in member_started:
                await event.wait()
            if started is not None:
                started.set()

    def _forwarder(self, index: int) -> Handler:
        async def forward(event: RegistryEvent) -> None:
            merged = self._merged_event(event, index)
            if merged is not None:
                self._handlers.notify(merged)

        return forward

    def _merged(self, hostname: str) -> tuple[int, Service] | None:
        """Who wins `hostname` in the view the members' events have told so far."""
        for index, view in enumerate(self._views):
            service = view.get(hostname)
            if service is not None:
                return index, service
        return None

    def _merged_event(self, event: RegistryEvent, index: int) -> RegistryEvent | None:
        """What member `index`'s event changes in the merged view. Events are applied in the
        order each member reports them, so the merged events keep that order too."""
        hostname = event.service.hostname if isinstance(event, ServiceEvent) else event.hostname
        before = self._merged(hostname)
        if isinstance(event, ServiceEvent):
            if event.event is Event.DELETE:
                self._views[index].pop(hostname, None)
            else:
                self._views[index][hostname] = event.service
        after = self._merged(hostname)
        if after is None:
            return ServiceEvent(Event.DELETE, before[1]) if before is not None else None
        if before is None:
            return ServiceEvent(Event.ADD, after[1])
        if before[1] != after[1]:
            return ServiceEvent(Event.UPDATE, after[1])
        if before[0] != after[0] or after[0] == index:
            # The same service; its instances moved (or now come from another registry).
            return InstancesEvent(hostname, after[1].namespace)
        return None  # a change in a registry this hostname's owner shadows
