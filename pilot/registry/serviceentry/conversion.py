"""ServiceEntry and WorkloadEntry to the service model: pure functions, config in, model out.

Every host of a ServiceEntry is a Service (its ports, resolution, location, subject alt
names); its instances are its inline `endpoints`, or the WorkloadEntries of its namespace its
`workloadSelector` picks, each on the port the workload names for the service port, else the
entry's `targetPort`, else the service port (Istio's rules). `controller.py` decides when to
convert what.
"""

from __future__ import annotations

from collections.abc import Iterable

from api.networking.v1alpha3 import service_entry_pb2, workload_entry_pb2
from pilot.model.service import Endpoint, Port, Protocol, Resolution, Service, labels_match
from pkg.config.resource import Resource

EXTERNAL = "External"  # Istio's provider ID for ServiceEntry services

_RESOLUTION = {
    service_entry_pb2.ServiceEntry.NONE: Resolution.PASSTHROUGH,
    service_entry_pb2.ServiceEntry.STATIC: Resolution.CLIENT_SIDE_LB,
    service_entry_pb2.ServiceEntry.DNS: Resolution.DNS_LB,
    service_entry_pb2.ServiceEntry.DNS_ROUND_ROBIN: Resolution.DNS_ROUND_ROBIN_LB,
}


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
            registry=EXTERNAL,
        )
        for host in spec.hosts
    ]


def selects(entry: Resource, workload: Resource) -> bool:
    """Whether the ServiceEntry's workloadSelector picks the WorkloadEntry (same namespace)."""
    spec: service_entry_pb2.ServiceEntry = entry.spec
    return (
        spec.HasField("workload_selector")
        and entry.metadata.namespace == workload.metadata.namespace
        and labels_match(dict(spec.workload_selector.labels), workload.spec.labels)
    )


def instances_of(
    entry: Resource, service: Service, port: Port, workloads: Iterable[Resource]
) -> tuple[Endpoint, ...]:
    """The instances of one service port: the entry's inline endpoints, or the workloads its
    selector picked (`workloads`, in creation order)."""
    spec: service_entry_pb2.ServiceEntry = entry.spec
    namespace = entry.metadata.namespace
    default_port = _target_port(spec, port)
    if spec.HasField("workload_selector"):
        selected = [(w.spec, w.metadata.name) for w in workloads]
    else:
        selected = [(e, "") for e in spec.endpoints]
    # Istio reaches a workload with a network and no address through that network's gateway;
    # this mesh has one network, so such a workload is no endpoint (Envoy refuses empty ones).
    return tuple(
        _endpoint(service, port, default_port, workload, name, namespace)
        for workload, name in selected
        if workload.address
    )


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


def order(resource: Resource) -> tuple[str, str, str]:
    # Oldest first, as Istio resolves conflicts; name order breaks ties deterministically.
    m = resource.metadata
    return (m.creation_timestamp or "", m.namespace, m.name)
