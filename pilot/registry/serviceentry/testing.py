"""Test support: the ServiceEntry registry driven as the config store would drive it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from pilot.registry.conformance import Instance
from pilot.registry.serviceentry.controller import ServiceEntryRegistry
from pkg.config import loader
from pkg.config.resource import Resource


class ServiceEntryDriver:
    """Keeps the store's ServiceEntries and WorkloadEntries and syncs the registry after
    each change, as Pilot does after each config event."""

    target_ports = True

    def __init__(self, registry: ServiceEntryRegistry) -> None:
        self.registry = registry
        self.entries: dict[tuple[str, str], Resource] = {}
        self.workloads: dict[tuple[str, str], Resource] = {}

    def apply(self, *resources: Resource) -> set[str]:
        for resource in resources:
            key = (resource.metadata.namespace, resource.metadata.name)
            target = self.entries if resource.schema.kind == "ServiceEntry" else self.workloads
            target[key] = resource
        return self.sync()

    def delete(self, kind: str, namespace: str, name: str) -> set[str]:
        target = self.entries if kind == "ServiceEntry" else self.workloads
        target.pop((namespace, name), None)
        return self.sync()

    def sync(self) -> set[str]:
        return self.registry.sync(self.entries.values(), self.workloads.values())

    # RegistryDriver.

    async def add_service(self, name: str, namespace: str, port: int) -> str:
        hostname = f"{name}.{namespace}.svc.cluster.local"
        self.apply(
            loader.load_object(
                {
                    "apiVersion": "networking.istio.io/v1alpha3",
                    "kind": "ServiceEntry",
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": {
                        "hosts": [hostname],
                        "location": "MESH_INTERNAL",
                        "resolution": "STATIC",
                        "ports": [{"number": port, "name": "http", "protocol": "HTTP"}],
                        "workloadSelector": {"labels": {"app": name}},
                    },
                },
                source="conformance",
            )
        )
        return hostname

    async def set_instances(self, hostname: str, port: int, instances: Sequence[Instance]) -> None:
        name, namespace = hostname.split(".")[:2]
        for key in [k for k in self.workloads if k[0] == namespace and k[1].startswith(f"{name}-")]:
            del self.workloads[key]
        for n, instance in enumerate(instances):
            self.workloads[(namespace, f"{name}-{n}")] = loader.load_object(
                {
                    "apiVersion": "networking.istio.io/v1alpha3",
                    "kind": "WorkloadEntry",
                    "metadata": {"name": f"{name}-{n}", "namespace": namespace},
                    "spec": {
                        "address": instance.address,
                        "labels": {**instance.labels, "app": name},
                        "ports": {"http": instance.port},
                    },
                },
                source="conformance",
            )
        self.sync()

    async def remove_service(self, hostname: str) -> None:
        name, namespace = hostname.split(".")[:2]
        self.delete("ServiceEntry", namespace, name)
        for key in [k for k in self.workloads if k[0] == namespace and k[1].startswith(f"{name}-")]:
            del self.workloads[key]
        self.sync()


@contextlib.asynccontextmanager
async def registry_and_driver() -> AsyncIterator[tuple[ServiceEntryRegistry, ServiceEntryDriver]]:
    """The conformance suite's factory for the ServiceEntry registry."""
    registry = ServiceEntryRegistry()
    yield registry, ServiceEntryDriver(registry)
