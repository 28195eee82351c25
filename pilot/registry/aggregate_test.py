"""The aggregate: the first registry that knows a hostname wins it, as in Istio."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from pilot.model.discovery import (
    Event,
    InstancesEvent,
    RegistryEvent,
    ServiceEvent,
    ServiceRegistry,
)
from pilot.model.service import Endpoint, Port, Protocol, Service
from pilot.registry import conformance
from pilot.registry.aggregate import AggregateRegistry
from pilot.registry.memory import MemoryRegistry
from pkg.testing.aio import run_async

_check: ServiceRegistry = AggregateRegistry([])

HTTP = Port("http", 80, Protocol.HTTP)


def service(hostname: str, namespace: str = "default", port: Port = HTTP) -> Service:
    return Service(hostname=hostname, namespace=namespace, ports=(port,))


def instance(hostname: str, address: str, port: Port = HTTP) -> Endpoint:
    return Endpoint(hostname, port, address, port.number, {}, "default")


class MemoryDriver:
    """The conformance driver of a memory registry (here inside an aggregate)."""

    target_ports = True

    def __init__(self, registry: MemoryRegistry) -> None:
        self.registry = registry

    async def add_service(self, name: str, namespace: str, port: int) -> str:
        hostname = f"{name}.{namespace}.svc.cluster.local"
        self.registry.add_service(service(hostname, namespace, Port("http", port, Protocol.HTTP)))
        return hostname

    async def set_instances(
        self, hostname: str, port: int, instances: Sequence[conformance.Instance]
    ) -> None:
        service_port = self.registry.get_service(hostname).port(port)  # type: ignore[union-attr]
        self.registry.set_instances(
            hostname,
            port,
            [
                Endpoint(hostname, service_port, i.address, i.port, dict(i.labels), "conformance")  # type: ignore[arg-type]
                for i in instances
            ],
        )

    async def remove_service(self, hostname: str) -> None:
        self.registry.remove_service(hostname)


@contextlib.asynccontextmanager
async def memory_factory() -> AsyncIterator[tuple[ServiceRegistry, MemoryDriver]]:
    registry = MemoryRegistry()
    yield registry, MemoryDriver(registry)


@contextlib.asynccontextmanager
async def aggregate_factory() -> AsyncIterator[tuple[ServiceRegistry, MemoryDriver]]:
    member = MemoryRegistry()
    yield AggregateRegistry([member, MemoryRegistry("Other")]), MemoryDriver(member)


@run_async
async def test_the_memory_registry_conforms():
    await conformance.check_all(memory_factory)


@run_async
async def test_the_aggregate_conforms():
    await conformance.check_all(aggregate_factory)


def test_the_first_registry_that_knows_a_hostname_wins():
    first, second = MemoryRegistry("First"), MemoryRegistry("Second")
    aggregate = AggregateRegistry([first, second])
    first.add_service(
        service("reviews.default.svc.cluster.local", port=Port("http", 9080, Protocol.HTTP))
    )
    second.add_service(service("reviews.default.svc.cluster.local"))
    second.add_service(service("ratings.default.svc.cluster.local"))
    first.set_instances(
        "reviews.default.svc.cluster.local",
        9080,
        [
            instance(
                "reviews.default.svc.cluster.local", "127.50.0.1", Port("http", 9080, Protocol.HTTP)
            )
        ],
    )
    second.set_instances(
        "reviews.default.svc.cluster.local",
        80,
        [instance("reviews.default.svc.cluster.local", "127.50.0.2")],
    )
    # One service per hostname: the first registry's.
    services = {s.hostname: s for s in aggregate.services()}
    assert set(services) == {
        "reviews.default.svc.cluster.local",
        "ratings.default.svc.cluster.local",
    }
    assert [p.number for p in services["reviews.default.svc.cluster.local"].ports] == [9080]
    assert aggregate.owner_of("reviews.default.svc.cluster.local") is first
    assert aggregate.owner_of("ratings.default.svc.cluster.local") is second
    # Its instances come from that registry only, never mixed with the shadowed one's.
    assert [e.address for e in aggregate.instances("reviews.default.svc.cluster.local", 9080)] == [
        "127.50.0.1"
    ]
    assert aggregate.instances("reviews.default.svc.cluster.local", 80) == ()

    class At:
        ip = "127.50.0.2"

    assert aggregate.instances_by_proxy(At()) == []  # serves a shadowed service only


@run_async
async def test_events_report_the_merged_view():
    first, second = MemoryRegistry("First"), MemoryRegistry("Second")
    aggregate = AggregateRegistry([first, second])
    seen: asyncio.Queue[RegistryEvent] = asyncio.Queue()

    async def record(event: RegistryEvent) -> None:
        seen.put_nowait(event)

    aggregate.append_service_handler(record)
    started = asyncio.Event()
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(aggregate.run(started=started))
        await started.wait()
        host = "reviews.default.svc.cluster.local"
        first.add_service(service(host))
        second.add_service(service(host, namespace="other"))  # shadowed: nothing to report
        second.set_instances(host, 80, [instance(host, "127.50.1.2")])  # likewise
        first.set_instances(host, 80, [instance(host, "127.50.1.1")])
        async with asyncio.timeout(5):
            added = await seen.get()
            moved = await seen.get()
        assert isinstance(added, ServiceEvent)
        assert added.event is Event.ADD
        assert isinstance(moved, InstancesEvent)
        assert moved.hostname == host
        # The owner drops it: the second registry's service takes over, an update.
        first.remove_service(host)
        async with asyncio.timeout(5):
            update = await seen.get()
        assert isinstance(update, ServiceEvent)
        assert update.event is Event.UPDATE
        assert update.service.namespace == "other"
        assert [e.address for e in aggregate.instances(host, 80)] == ["127.50.1.2"]
        await asyncio.sleep(0.05)
        assert seen.empty()
        task.cancel()
