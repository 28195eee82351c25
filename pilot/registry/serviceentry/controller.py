"""The ServiceEntry/WorkloadEntry registry: services and instances from the config store.

On this platform every workload registers itself as a WorkloadEntry, and every mesh service
is a ServiceEntry selecting its workloads (Istio's model for VMs). Pilot hands the registry
the store's current ServiceEntries and WorkloadEntries after every config change (`sync`);
the registry works out what changed and recomputes only that: the entries that changed, and
the entries whose selector picks a workload that changed. Hosts claimed by several entries
go to the oldest (Istio's rule). Each host whose service changed gets a `ServiceEvent`, each
host whose instances alone changed an `InstancesEvent`; unchanged instances keep their tuple.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable

from pilot.model.discovery import (
    Event,
    Handler,
    InstancesEvent,
    ProxyAddress,
    ServiceEvent,
)
from pilot.model.service import Endpoint, Service, labels_match
from pilot.registry.handlers import Handlers
from pilot.registry.provider import Provider
from pilot.registry.serviceentry import autoallocate, conversion
from pkg.config.resource import Resource

Key = tuple[str, str]  # (namespace, name)


def _key(resource: Resource) -> Key:
    return (resource.metadata.namespace, resource.metadata.name)


@dataclasses.dataclass(frozen=True)
class _Converted:
    """One ServiceEntry in the model: its services and their instances."""

    services: dict[str, Service]
    instances: dict[tuple[str, int], tuple[Endpoint, ...]]


class _Workloads:
    """WorkloadEntries by namespace and by each label, so a selector looks at few of them."""

    def __init__(self) -> None:
        self._by_namespace: dict[str, dict[Key, Resource]] = {}
        self._by_label: dict[tuple[str, str, str], dict[Key, Resource]] = {}

    def add(self, workload: Resource) -> None:
        key, namespace = _key(workload), workload.metadata.namespace
        self._by_namespace.setdefault(namespace, {})[key] = workload
        for label, value in workload.spec.labels.items():
            self._by_label.setdefault((namespace, label, value), {})[key] = workload

    def remove(self, workload: Resource) -> None:
        key, namespace = _key(workload), workload.metadata.namespace
        self._by_namespace.get(namespace, {}).pop(key, None)
        for label, value in workload.spec.labels.items():
            bucket = self._by_label.get((namespace, label, value))
            if bucket is not None:
                bucket.pop(key, None)
                if not bucket:
                    del self._by_label[(namespace, label, value)]

    def select(self, namespace: str, selector: dict[str, str]) -> list[Resource]:
        """In creation order, as Istio lists them."""
        candidates = [self._by_label.get((namespace, k, v), {}) for k, v in selector.items()]
        pool = min(candidates, key=len) if candidates else self._by_namespace.get(namespace, {})
        return sorted(
            (w for w in pool.values() if labels_match(selector, w.spec.labels)),
            key=conversion.order,
        )


class ServiceEntryRegistry:
    provider = Provider.SERVICE_ENTRY.value

    def __init__(self) -> None:
        self._entries: dict[Key, Resource] = {}
        self._workloads: dict[Key, Resource] = {}
        self._workload_index = _Workloads()
        # Entries with a selector, by (namespace, one label of the selector) (or
        # (namespace, None) for an empty one): a workload can only be picked by the
        # entries in the buckets of its own labels.
        self._selecting: dict[tuple[str, tuple[str, str] | None], set[Key]] = {}
        self._converted: dict[Key, _Converted] = {}
        self._claims: dict[str, list[Key]] = {}  # hostname -> entries claiming it, oldest first
        self._services: dict[str, Service] = {}  # the winners
        self._handlers = Handlers("ServiceEntry registry")
        self._synced = False

    # Controller.

    def append_service_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    async def run(self, *, started: asyncio.Event | None = None) -> None:
        if started is not None:
            started.set()
        await self._handlers.run()

    def has_synced(self) -> bool:
        return self._synced

    # ServiceDiscovery.

    def services(self) -> list[Service]:
        return list(self._services.values())

    def get_service(self, hostname: str) -> Service | None:
        return self._services.get(hostname)

    def instances(self, hostname: str, port: int) -> tuple[Endpoint, ...]:
        owner = self._owner(hostname)
        if owner is None:
            return ()
        return self._converted[owner].instances.get((hostname, port), ())

    def instances_by_proxy(self, proxy: ProxyAddress) -> list[Endpoint]:
        return [
            e
            for hostname, service in self._services.items()
            for port in service.ports
            for e in self.instances(hostname, port.number)
            if e.address == proxy.ip
        ]

    # Feeding.

    def sync(
        self, service_entries: Iterable[Resource], workload_entries: Iterable[Resource]
    ) -> set[str]:
        """Make the store's current entries the registry's; the hostnames that changed."""
        entries = {_key(r): r for r in service_entries}
        workloads = {_key(r): r for r in workload_entries}
        return self.update(
            {k: entries.get(k) for k in self._entries.keys() | entries.keys()
             if _differs(self._entries.get(k), entries.get(k))},
            {k: workloads.get(k) for k in self._workloads.keys() | workloads.keys()
             if _differs(self._workloads.get(k), workloads.get(k))},
        )  # fmt: skip

    def apply(self, kind: str, resource: Resource, *, deleted: bool = False) -> set[str]:
        """One config event (a ServiceEntry or WorkloadEntry added, changed or deleted)."""
        key, value = _key(resource), None if deleted else resource
        if kind == "ServiceEntry":
            return self.update({key: value}, {})
        if kind == "WorkloadEntry":
            return self.update({}, {key: value})
        raise ValueError(f"the ServiceEntry registry does not read {kind}")

    def update(
        self,
        entries: dict[Key, Resource | None],
        workloads: dict[Key, Resource | None],
    ) -> set[str]:
        """Apply changed entries and workloads (None: deleted); the hostnames that changed."""
        entries = {k: v for k, v in entries.items() if _differs(self._entries.get(k), v)}
        workloads = {k: v for k, v in workloads.items() if _differs(self._workloads.get(k), v)}
        affected = set(entries)
        current = dict(self._entries)
        for key, entry in entries.items():
            bucket_before = _selector_bucket(self._entries.get(key))
            if bucket_before is not None:
                self._selecting[bucket_before].discard(key)
            bucket_after = _selector_bucket(entry)
            if bucket_after is not None:
                self._selecting.setdefault(bucket_after, set()).add(key)
            if entry is None:
                current.pop(key, None)
            else:
                current[key] = entry
        for key, new in workloads.items():
            old = self._workloads.get(key)
            if old is not None:
                self._workload_index.remove(old)
            if new is not None:
                self._workload_index.add(new)
                self._workloads[key] = new
            else:
                self._workloads.pop(key, None)
            for workload in (w for w in (old, new) if w is not None):
                namespace = workload.metadata.namespace
                buckets = [(namespace, None)] + [
                    (namespace, item) for item in workload.spec.labels.items()
                ]
                affected |= {
                    k
                    for bucket in buckets
                    for k in self._selecting.get(bucket, ())
                    if k not in affected and conversion.selects(current[k], workload)
                }
        # Convert first, then look at every host touched before changing anything.
        converted = {
            k: self._convert(current[k], self._converted.get(k)) for k in affected if k in current
        }
        hosts = {h for k in affected if k in self._converted for h in self._converted[k].services}
        hosts |= {h for c in converted.values() for h in c.services}
        before = {h: (self._services.get(h), self._instances_of(h)) for h in hosts}
        for key in affected:
            old_converted = self._converted.pop(key, None)
            for hostname in old_converted.services if old_converted else ():
                claims = self._claims[hostname]
                claims.remove(key)
                if not claims:
                    del self._claims[hostname]
        self._entries = current
        for key, fresh in converted.items():
            self._converted[key] = fresh
            for hostname in fresh.services:
                claims = self._claims.setdefault(hostname, [])
                claims.append(key)
                claims.sort(key=lambda k: conversion.order(self._entries[k]))
        previous = dict(self._services)
        for hostname in sorted(hosts):
            owner = self._owner(hostname)
            service = self._converted[owner].services[hostname] if owner is not None else None
            if service is None:
                self._services.pop(hostname, None)
            else:
                self._services[hostname] = service
        # An address allocated for a host depends on the other hosts (collisions): a change
        # may move another host's, which then changes too.
        for service in autoallocate.with_addresses(self._services.values()):
            if service is not self._services[service.hostname]:
                self._services[service.hostname] = service
                if previous.get(service.hostname) != service:
                    hosts.add(service.hostname)
        changed = set()
        for hostname in sorted(hosts):
            old_service, old_instances = before.get(
                hostname, (previous.get(hostname), self._instances_of(hostname))
            )
            service = self._services.get(hostname)
            event = _event(old_service, old_instances, service, self._instances_of(hostname))
            if event is not None:
                changed.add(hostname)
                self._handlers.notify(event)
        self._synced = True
        return changed

    # Internals.

    def _convert(self, entry: Resource, old: _Converted | None) -> _Converted:
        spec = entry.spec
        workloads: list[Resource] = []
        if spec.HasField("workload_selector"):
            workloads = self._workload_index.select(
                entry.metadata.namespace, dict(spec.workload_selector.labels)
            )
        services: dict[str, Service] = {}
        instances: dict[tuple[str, int], tuple[Endpoint, ...]] = {}
        for service in conversion.services_of(entry):
            if service.hostname in services:
                continue
            services[service.hostname] = service
            for port in service.ports:
                fresh = conversion.instances_of(entry, service, port, workloads)
                previous = old.instances.get((service.hostname, port.number)) if old else None
                # Unchanged instances stay the same object: caches downstream compare by it.
                instances[(service.hostname, port.number)] = (
                    previous if previous is not None and previous == fresh else fresh
                )
        return _Converted(services, instances)

    def _owner(self, hostname: str) -> Key | None:
        claims = self._claims.get(hostname)
        return claims[0] if claims else None

    def _instances_of(self, hostname: str) -> dict[int, tuple[Endpoint, ...]]:
        service = self._services.get(hostname)
        if service is None:
            return {}
        return {p.number: self.instances(hostname, p.number) for p in service.ports}


def _selector_bucket(entry: Resource | None) -> tuple[str, tuple[str, str] | None] | None:
    if entry is None or not entry.spec.HasField("workload_selector"):
        return None
    labels = sorted(entry.spec.workload_selector.labels.items())
    return (entry.metadata.namespace, labels[0] if labels else None)


def _event(
    service_before: Service | None,
    instances_before: dict[int, tuple[Endpoint, ...]],
    service_after: Service | None,
    instances_after: dict[int, tuple[Endpoint, ...]],
) -> ServiceEvent | InstancesEvent | None:
    if service_after is None:
        return None if service_before is None else ServiceEvent(Event.DELETE, service_before)
    if service_before is None:
        return ServiceEvent(Event.ADD, service_after)
    if service_before != service_after:
        return ServiceEvent(Event.UPDATE, service_after)
    if instances_before != instances_after:
        return InstancesEvent(service_after.hostname, service_after.namespace)
    return None


def _differs(old: Resource | None, new: Resource | None) -> bool:
    """Whether `new` replaces `old` (by resourceVersion when both have one)."""
    if old is new:
        return False
    if old is None or new is None:
        return True
    if old.metadata.resource_version and new.metadata.resource_version:
        return old.metadata.resource_version != new.metadata.resource_version
    return old != new
