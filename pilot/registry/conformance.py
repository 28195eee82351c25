"""One conformance suite for every registry adapter (after trio's _check_streams).

Plain async checks, each taking a factory: an async context manager that yields a fresh
registry and a `RegistryDriver` changing the platform it reads (as a user adding a service
or a workload starting would). Every adapter's test calls them:

    @run_async
    async def test_conformance():
        await conformance.check_all(my_factory)

What they hold every adapter to: `has_synced` once the first view is read; services by
hostname and instances by service port and by proxy; a handler sees ADD, then instance
changes, then DELETE, in order, and re-reading the registry from the handler gives the state
the event reports; a service deleted and added again is new; every handler gets every event.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Protocol

from pilot.model.discovery import (
    Event,
    InstancesEvent,
    RegistryEvent,
    ServiceEvent,
    ServiceRegistry,
)
from pkg.testing.wait import eventually

SETTLE = 5.0  # seconds any expected event may take


@dataclasses.dataclass(frozen=True)
class Instance:
    address: str
    port: int  # the workload's port for the service port
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Address:
    ip: str


class RegistryDriver(Protocol):
    """Changes what the registry under test reads, through its own platform.

    `target_ports`: whether the platform lets a workload serve a service port on another
    port of its own (Kubernetes, ServiceEntry); Consul and Eureka know one port per instance.
    """

    target_ports: bool

    async def add_service(self, name: str, namespace: str, port: int) -> str:
        """A service with one HTTP port; returns its hostname as the registry names it."""
        ...

    async def set_instances(
        self, hostname: str, port: int, instances: Sequence[Instance]
    ) -> None: ...

    async def remove_service(self, hostname: str) -> None: ...


Factory = Callable[
    [], contextlib.AbstractAsyncContextManager[tuple[ServiceRegistry, RegistryDriver]]
]


class _Recorder:
    """A handler recording events with what the registry said when each arrived."""

    def __init__(self, registry: ServiceRegistry) -> None:
        self.registry = registry
        self.events: asyncio.Queue[tuple[RegistryEvent, object]] = asyncio.Queue()

    async def __call__(self, event: RegistryEvent) -> None:
        hostname = event.service.hostname if isinstance(event, ServiceEvent) else event.hostname
        self.events.put_nowait((event, self.registry.get_service(hostname)))

    def drain(self) -> list[tuple[RegistryEvent, object]]:
        """The events received so far and not yet read."""
        drained = []
        while not self.events.empty():
            drained.append(self.events.get_nowait())
        return drained

    async def next(self, what: str) -> tuple[RegistryEvent, object]:
        try:
            async with asyncio.timeout(SETTLE):
                return await self.events.get()
        except TimeoutError:
            raise AssertionError(f"no event within {SETTLE}s (waiting for {what})") from None

    async def expect_service(self, event: Event, hostname: str, *, reread: bool = True) -> None:
        """The next service event is `event` for `hostname` (instance events may come
        between). With `reread` (no later change was made yet), what the handler read from
        the registry when it ran is what the event reports."""
        while True:
            got, seen = await self.next(f"{event.value} {hostname}")
            if isinstance(got, InstancesEvent):
                continue
            assert isinstance(got, ServiceEvent)
            assert (got.event, got.service.hostname) == (event, hostname), f"got {got}"
            if reread and event is Event.DELETE:
                assert seen is None, "the handler still sees a deleted service"
            elif reread:
                assert seen == got.service, "the handler re-reads another service than reported"
            return

    async def expect_instances_of(self, hostname: str) -> None:
        while True:
            got, _ = await self.next(f"instances of {hostname}")
            if isinstance(got, InstancesEvent) and got.hostname == hostname:
                return
            if (
                isinstance(got, ServiceEvent)
                and got.service.hostname == hostname
                and got.event is Event.UPDATE
            ):
                return  # an adapter may report instance changes as a service update
            raise AssertionError(f"wanted instances of {hostname}, got {got}")


@contextlib.asynccontextmanager
async def _running(
    factory: Factory, handlers: int = 1
) -> AsyncIterator[tuple[ServiceRegistry, RegistryDriver, list[_Recorder]]]:
    async with factory() as (registry, driver):
        recorders = [_Recorder(registry) for _ in range(handlers)]
        for recorder in recorders:
            registry.append_service_handler(recorder)
        started = asyncio.Event()
        async with asyncio.TaskGroup() as tasks:
            task = tasks.create_task(registry.run(started=started), name="registry-under-test")
            async with asyncio.timeout(SETTLE):
                await started.wait()
            try:
                yield registry, driver, recorders
            finally:
                task.cancel()


async def _eventually(condition: Callable[[], bool], what: str) -> None:
    await eventually(condition, timeout=SETTLE, interval=0.01, what=what)


async def check_has_synced(factory: Factory) -> None:
    async with _running(factory) as (registry, driver, _):
        await driver.add_service("synced", "conformance", 8080)
        await _eventually(registry.has_synced, "has_synced()")


async def check_services_and_instances(factory: Factory) -> None:
    async with _running(factory) as (registry, driver, (events,)):
        hostname = await driver.add_service("reviews", "conformance", 9080)
        await events.expect_service(Event.ADD, hostname)
        service = registry.get_service(hostname)
        assert service is not None
        assert [p.number for p in service.ports] == [9080]
        assert hostname in {s.hostname for s in registry.services()}
        own_port = 9081 if driver.target_ports else 9080
        await driver.set_instances(
            hostname,
            9080,
            [Instance("127.30.0.1", 9080, {"version": "v1"}), Instance("127.30.0.2", own_port)],
        )
        await events.expect_instances_of(hostname)
        # A registry reading its platform may see the two instances in two reads.
        expected = [("127.30.0.1", 9080), ("127.30.0.2", own_port)]
        await _eventually(
            lambda: (
                sorted((e.address, e.port) for e in registry.instances(hostname, 9080)) == expected
            ),
            "both instances",
        )
        instances = registry.instances(hostname, 9080)
        assert all(e.hostname == hostname and e.service_port.number == 9080 for e in instances)
        v1 = next(e for e in instances if e.address == "127.30.0.1")
        assert v1.labels.get("version") == "v1"
        assert registry.instances(hostname, 1234) == ()
        (own,) = registry.instances_by_proxy(Address("127.30.0.2"))
        assert (own.hostname, own.port) == (hostname, own_port)
        assert list(registry.instances_by_proxy(Address("127.30.0.99"))) == []


async def check_events_in_order(factory: Factory) -> None:
    """A burst: the handler may run after all of it, and then reads the latest state. A
    registry that reads its platform's state (Consul, Eureka) may never see a service that
    came and went between two reads; one that saw it says ADD before DELETE."""
    async with _running(factory) as (registry, driver, (events,)):
        first = await driver.add_service("first", "conformance", 8080)
        second = await driver.add_service("second", "conformance", 8080)
        await driver.remove_service(first)
        told: dict[str, list[Event]] = {}
        while told.get(second) is None:
            got, _ = await events.next(f"add {second}")
            if isinstance(got, ServiceEvent):
                told.setdefault(got.service.hostname, []).append(got.event)
        await _eventually(lambda: registry.get_service(first) is None, f"{first} gone")
        await asyncio.sleep(0.2)  # anything still on its way
        for got, _ in events.drain():
            if isinstance(got, ServiceEvent):
                told.setdefault(got.service.hostname, []).append(got.event)
        assert told[second] == [Event.ADD], f"{second}: {told}"
        assert told.get(first, []) in ([], [Event.ADD, Event.DELETE]), f"{first}: {told}"
        assert registry.instances(first, 8080) == ()


async def check_update_after_delete(factory: Factory) -> None:
    async with _running(factory) as (registry, driver, (events,)):
        hostname = await driver.add_service("again", "conformance", 8080)
        await driver.set_instances(hostname, 8080, [Instance("127.30.1.1", 8080)])
        await events.expect_service(Event.ADD, hostname)
        await events.expect_instances_of(hostname)
        await driver.remove_service(hostname)
        await events.expect_service(Event.DELETE, hostname)
        again = await driver.add_service("again", "conformance", 8080)
        assert again == hostname
        await events.expect_service(Event.ADD, hostname)
        # Deleting took its instances with it.
        assert registry.instances(hostname, 8080) == ()


async def check_every_handler_gets_every_event(factory: Factory) -> None:
    async with _running(factory, handlers=2) as (_, driver, (first, second)):
        hostname = await driver.add_service("both", "conformance", 8080)
        for recorder in (first, second):
            await recorder.expect_service(Event.ADD, hostname, reread=False)
        await driver.remove_service(hostname)
        for recorder in (first, second):
            await recorder.expect_service(Event.DELETE, hostname)


CHECKS = (
    check_has_synced,
    check_services_and_instances,
    check_events_in_order,
    check_update_after_delete,
    check_every_handler_gets_every_event,
)


async def check_all(factory: Factory) -> None:
    for check in CHECKS:
        try:
            await check(factory)
        except AssertionError as error:
            raise AssertionError(f"{check.__name__}: {error}") from error
