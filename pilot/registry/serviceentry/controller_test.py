"""The ServiceEntry registry: conformance, and what it recomputes when config changes."""

from __future__ import annotations

import dataclasses

from pilot.model.discovery import (
    Event,
    InstancesEvent,
    RegistryEvent,
    ServiceEvent,
    ServiceRegistry,
)
from pilot.registry import conformance
from pilot.registry.serviceentry.controller import ServiceEntryRegistry
from pilot.registry.serviceentry.testing import ServiceEntryDriver, registry_and_driver
from pkg.config import loader
from pkg.config.resource import Resource
from pkg.testing.aio import run_async

_check: ServiceRegistry = ServiceEntryRegistry()


@run_async
async def test_conformance():
    await conformance.check_all(registry_and_driver)


def entry(name: str, hosts: list[str], *, created: str = "", app: str | None = None) -> Resource:
    resource = loader.load_object(
        {
            "apiVersion": "networking.istio.io/v1alpha3",
            "kind": "ServiceEntry",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "hosts": hosts,
                "resolution": "STATIC",
                "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
                "workloadSelector": {"labels": {"app": app or name}},
            },
        },
        source="test",
    )
    return dataclasses.replace(
        resource, metadata=dataclasses.replace(resource.metadata, creation_timestamp=created)
    )


def workload(name: str, app: str, address: str, version: str = "v1") -> Resource:
    return loader.load_object(
        {
            "apiVersion": "networking.istio.io/v1alpha3",
            "kind": "WorkloadEntry",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"address": address, "labels": {"app": app, "version": version}},
        },
        source="test",
    )


def drained(registry: ServiceEntryRegistry) -> list[RegistryEvent]:
    events: list[RegistryEvent] = []
    queue = registry._handlers._queue  # the events a run() would deliver
    while not queue.empty():
        events.append(queue.get_nowait())
    return events


def test_a_workload_change_recomputes_only_the_services_selecting_it():
    registry = ServiceEntryRegistry()
    driver = ServiceEntryDriver(registry)
    driver.apply(entry("a", ["a.example.com"]), entry("b", ["b.example.com"]))
    driver.apply(workload("a-1", "a", "127.40.0.1"), workload("b-1", "b", "127.40.0.2"))
    untouched = registry.instances("b.example.com", 80)
    drained(registry)

    changed = driver.apply(workload("a-2", "a", "127.40.0.3"))
    assert changed == {"a.example.com"}
    assert [type(e) for e in drained(registry)] == [InstancesEvent]
    assert [e.address for e in registry.instances("a.example.com", 80)] == [
        "127.40.0.1",
        "127.40.0.3",
    ]
    # What did not change is the very same tuple: generation caches compare by identity.
    assert registry.instances("b.example.com", 80) is untouched
    assert driver.sync() == set()  # nothing new: nothing recomputed, no event
    assert drained(registry) == []


def test_the_oldest_entry_claiming_a_host_wins_it_and_the_next_takes_over():
    registry = ServiceEntryRegistry()
    driver = ServiceEntryDriver(registry)
    driver.apply(
        entry("new", ["shared.example.com"], created="2026-02-01T00:00:00Z", app="new"),
        entry("old", ["shared.example.com"], created="2026-01-01T00:00:00Z", app="old"),
        workload("old-1", "old", "127.40.1.1"),
        workload("new-1", "new", "127.40.1.2"),
    )
    assert [e.address for e in registry.instances("shared.example.com", 80)] == ["127.40.1.1"]
    drained(registry)
    driver.delete("ServiceEntry", "default", "old")
    assert [e.address for e in registry.instances("shared.example.com", 80)] == ["127.40.1.2"]
    (event,) = drained(registry)
    assert isinstance(event, InstancesEvent)  # same service, other instances
    driver.delete("ServiceEntry", "default", "new")
    (event,) = drained(registry)
    assert isinstance(event, ServiceEvent)
    assert event.event is Event.DELETE
    assert registry.services() == []


def test_a_changed_service_is_an_update():
    registry = ServiceEntryRegistry()
    driver = ServiceEntryDriver(registry)
    driver.apply(entry("a", ["a.example.com"]))
    (added,) = drained(registry)
    assert isinstance(added, ServiceEvent)
    assert added.event is Event.ADD
    changed = entry("a", ["a.example.com"])
    changed.spec.ports[0].number = 8080
    driver.apply(changed)
    (update,) = drained(registry)
    assert isinstance(update, ServiceEvent)
    assert update.event is Event.UPDATE
    assert [p.number for p in update.service.ports] == [8080]
