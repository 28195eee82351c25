"""The ServiceEntry/WorkloadEntry registry: services and endpoints from the config store.

On this platform every workload registers itself as a WorkloadEntry, and every mesh
service is a ServiceEntry selecting its workloads (Istio's model for VMs), so this one
registry is the whole service model of the local mesh. Pure conversion: config in,
model out; the caller decides when to rebuild.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from api.networking.v1alpha3 import service_entry_pb2, workload_entry_pb2
from pilot.model.service import Endpoint, Port, Protocol, Resolution, Service, labels_match
from pkg.config.resource import Resource

_RESOLUTION = {
    service_entry_pb2.ServiceEntry.NONE: Resolution.PASSTHROUGH,
    service_entry_pb2.ServiceEntry.STATIC: Resolution.CLIENT_SIDE_LB,
    service_entry_pb2.ServiceEntry.DNS: Resolution.DNS_LB,
    service_entry_pb2.ServiceEntry.DNS_ROUND_ROBIN: Resolution.DNS_LB,
}


@dataclasses.dataclass(frozen=True)
class ServiceIndex:
    """Services by hostname and their endpoints by (hostname, service port)."""

    services: Mapping[str, Service]
    endpoints: Mapping[tuple[str, int], tuple[Endpoint, ...]]

    def endpoints_of(self, hostname: str, port: int) -> tuple[Endpoint, ...]:
        return self.endpoints.get((hostname, port), ())

    def endpoints_at(self, address: str) -> list[Endpoint]:
        """The endpoints a workload at `address` serves (Istio's GetProxyServiceInstances)."""
        return [e for eps in self.endpoints.values() for e in eps if e.address == address]


def build_index(
    service_entries: Iterable[Resource], workload_entries: Iterable[Resource]
) -> ServiceIndex:
    """Every host of every ServiceEntry becomes a Service; the first entry to claim a host wins."""
    workloads = _WorkloadIndex(sorted(workload_entries, key=_order))
    services: dict[str, Service] = {}
    endpoints: dict[tuple[str, int], tuple[Endpoint, ...]] = {}
    for entry in sorted(service_entries, key=_order):
        spec: service_entry_pb2.ServiceEntry = entry.spec
        namespace = entry.metadata.namespace
        selected = _selected_workloads(spec, namespace, workloads)
        for service in services_of(entry):
            if service.hostname in services:
                continue
            services[service.hostname] = service
            for port in service.ports:
                endpoints[(service.hostname, port.number)] = tuple(
                    _endpoint(service, port, _target_port(spec, port), workload, name, namespace)
                    for workload, name in selected
                )
    return ServiceIndex(services=services, endpoints=endpoints)


def services_of(entry: Resource) -> list[Service]:
    spec: service_entry_pb2.ServiceEntry = entry.spec
    ports = tuple(Port(p.name, p.number, Protocol.parse(p.protocol)) for p in spec.ports)
    return [
        Service(
            hostname=host,
            namespace=entry.metadata.namespace,
            ports=ports,
            address=spec.addresses[0] if spec.addresses else "0.0.0.0",
            resolution=_RESOLUTION[spec.resolution],
            mesh_external=spec.location == service_entry_pb2.ServiceEntry.MESH_EXTERNAL,
            service_accounts=tuple(spec.subject_alt_names),
        )
        for host in spec.hosts
    ]


class _WorkloadIndex:
    """WorkloadEntries by namespace and by each label, so a selector looks at few of them."""

    def __init__(self, workloads: list[Resource]) -> None:
        self._by_namespace: dict[str, list[Resource]] = {}
        self._by_label: dict[tuple[str, str, str], list[Resource]] = {}
        for workload in workloads:
            namespace = workload.metadata.namespace
            self._by_namespace.setdefault(namespace, []).append(workload)
            for key, value in workload.spec.labels.items():
                self._by_label.setdefault((namespace, key, value), []).append(workload)

    def select(self, namespace: str, selector: dict[str, str]) -> list[Resource]:
        """In creation order, as the unindexed scan would return them."""
        candidates = [self._by_label.get((namespace, k, v), []) for k, v in selector.items()]
        pool = min(candidates, key=len) if candidates else self._by_namespace.get(namespace, [])
        return [w for w in pool if labels_match(selector, w.spec.labels)]


def _selected_workloads(
    spec: service_entry_pb2.ServiceEntry, namespace: str, workloads: _WorkloadIndex
) -> list[tuple[workload_entry_pb2.WorkloadEntry, str]]:
    """Inline endpoints, or the namespace's WorkloadEntries the selector picks."""
    if spec.HasField("workload_selector"):
        selector = dict(spec.workload_selector.labels)
        selected = [(w.spec, w.metadata.name) for w in workloads.select(namespace, selector)]
    else:
        selected = [(e, "") for e in spec.endpoints]
    # Istio reaches a workload with a network and no address through that network's gateway;
    # this mesh has one network, so such a workload is no endpoint (Envoy refuses empty ones).
    return [(w, name) for w, name in selected if w.address]


def _target_port(spec: service_entry_pb2.ServiceEntry, port: Port) -> int:
    declared = next(p for p in spec.ports if p.number == port.number)
    return declared.target_port or declared.number


def _endpoint(
    service: Service,
    port: Port,
    default_port: int,
    workload: workload_entry_pb2.WorkloadEntry,
    workload_name: str,
    namespace: str,
) -> Endpoint:
    return Endpoint(
        hostname=service.hostname,
        service_port=port,
        address=workload.address,
        port=workload.ports.get(port.name, default_port),
        labels=dict(workload.labels),
        namespace=namespace,
        service_account=workload.service_account,
        workload_name=workload_name,
        locality=workload.locality,
        weight=workload.weight,
    )


def _order(resource: Resource) -> tuple[str, str, str]:
    # Oldest first, as Istio resolves conflicts; name order breaks ties deterministically.
    m = resource.metadata
    return (m.creation_timestamp or "", m.namespace, m.name)
