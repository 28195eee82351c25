"""The interface every service registry implements (Istio's ServiceDiscovery + Controller).

A registry turns one platform (ServiceEntry/WorkloadEntry config, Kubernetes, Consul,
Eureka) into the model of `service.py`: services by hostname, their instances by service and
port, the instances a proxy runs. It says when its view changed through handlers: a
`ServiceEvent` when a service was added, changed or removed, an `InstancesEvent` when only its
instances moved (an endpoint push is enough). Handlers are added before `run()` and called
in order, one event at a time; they re-read the registry rather than trust the event's copy.

Implementations live in `pilot/registry/` and import this module, never the reverse; the
aggregate (`pilot/registry/aggregate.py`) merges several into one view. An implementation's
tests state its conformance with an annotated module-level line:

    _check: ServiceRegistry = MyRegistry(...)
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from pilot.model.service import Endpoint, Service


class Event(enum.Enum):
    ADD = "add"
    UPDATE = "update"
    DELETE = "delete"


@dataclasses.dataclass(frozen=True)
class ServiceEvent:
    event: Event
    service: Service  # on DELETE, the service as it was


@dataclasses.dataclass(frozen=True)
class InstancesEvent:
    """The instances of a service changed; the service itself did not."""

    hostname: str
    namespace: str


RegistryEvent = ServiceEvent | InstancesEvent
Handler = Callable[[RegistryEvent], Awaitable[None]]


class ProxyAddress(Protocol):
    """What "instances by proxy" needs of a proxy: where it runs."""

    @property
    def ip(self) -> str: ...


class ServiceDiscovery(Protocol):
    def services(self) -> Sequence[Service]:
        """Every service, each hostname once."""
        ...

    def get_service(self, hostname: str) -> Service | None: ...

    def instances(self, hostname: str, port: int) -> Sequence[Endpoint]:
        """The instances of one service port (Istio's InstancesByPort)."""
        ...

    def instances_by_proxy(self, proxy: ProxyAddress) -> Sequence[Endpoint]:
        """The instances the workload at the proxy's address serves (GetProxyServiceInstances)."""
        ...


class Controller(Protocol):
    def append_service_handler(self, handler: Handler) -> None:
        """Call `handler` for every later change; add handlers before `run()`."""
        ...

    async def run(self, *, started: asyncio.Event | None = None) -> None:
        """Follow the platform until cancelled; set `started` once handlers may be called."""
        ...

    def has_synced(self) -> bool:
        """Whether the first full view of the platform has been read."""
        ...


@runtime_checkable
class ReportsStatus(Protocol):
    """A registry that watches a remote platform says how that goes (/debug/registryz):
    a dataclass with at least `state` ("syncing", "synced", "unreachable") and `last_error`."""

    def status(self) -> Any: ...


class ServiceRegistry(ServiceDiscovery, Controller, Protocol):
    @property
    def provider(self) -> str:
        """Which platform (a `pilot.registry.provider.Provider` value: `ServiceEntry`, ...)."""
        ...
