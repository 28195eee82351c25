"""Consul catalog entries to the service model: pure functions, as Istio's consul adapter had.

The rules are Istio's (`pilot/pkg/serviceregistry/consul/conversion.go`, 0.8-1.7):
- a service `<name>` is the host `<name>.service.consul` in namespace `default`, VIP 0.0.0.0;
- an instance's address is its `ServiceAddress`, or its node's address when that is empty;
- the port is `ServicePort`, named by `ServiceMeta["protocol"]` (`http` when unset), and its
  protocol parsed from that name (unknown: TCP, with a warning);
- only tags shaped `key|value` become labels; any other tag is ignored with a warning;
- `ServiceMeta["external"]` set makes the service mesh-external (Passthrough);
- the datacenter is the instance's locality.
Beyond Istio (which read the catalog and ignored health), instances come from the health
endpoint and only those whose checks all pass become endpoints; a service whose instances
all fail stays known, with no endpoints (callers get 503, not an unknown host).
Consul answers in two shapes (the catalog's flat `ServiceName`/`ServiceTags` and the health
endpoint's nested `Service.Service`/`Service.Tags`); both become one `ConsulInstance` first.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from pilot.model.service import Endpoint, Port, Protocol, Resolution, Service
from pilot.registry.snapshot import RegistrySnapshot

log = logging.getLogger(__name__)

HOST_SUFFIX = "service.consul"
NAMESPACE = "default"  # Istio's IstioDefaultConfigNamespace
PROTOCOL_META = "protocol"
EXTERNAL_META = "external"


@dataclasses.dataclass(frozen=True)
class ConsulInstance:
    """One registered instance of a service, whatever shape Consul gave it in."""

    service: str
    service_id: str
    node: str
    address: str  # already resolved: the service's own address, else the node's
    port: int
    tags: tuple[str, ...]
    meta: Mapping[str, str]
    datacenter: str
    passing: bool = True  # every health check passes (catalog entries carry no checks)


def from_catalog(entry: Mapping[str, Any]) -> ConsulInstance:
    """An element of `GET /v1/catalog/service/<name>`."""
    return ConsulInstance(
        service=entry["ServiceName"],
        service_id=entry.get("ServiceID") or entry["ServiceName"],
        node=entry.get("Node", ""),
        address=entry.get("ServiceAddress") or entry.get("Address", ""),
        port=int(entry.get("ServicePort") or 0),
        tags=tuple(entry.get("ServiceTags") or ()),
        meta=dict(entry.get("ServiceMeta") or {}),
        datacenter=entry.get("Datacenter", ""),
    )


def from_health(entry: Mapping[str, Any]) -> ConsulInstance:
    """An element of `GET /v1/health/service/<name>` (nested Node / Service / Checks)."""
    node, service = entry.get("Node") or {}, entry["Service"]
    return ConsulInstance(
        service=service["Service"],
        service_id=service.get("ID") or service["Service"],
        node=node.get("Node", ""),
        address=service.get("Address") or node.get("Address", ""),
        port=int(service.get("Port") or 0),
        tags=tuple(service.get("Tags") or ()),
        meta=dict(service.get("Meta") or {}),
        datacenter=node.get("Datacenter", ""),
        passing=is_passing(entry),
    )


def is_passing(entry: Mapping[str, Any]) -> bool:
    """Every check of a health entry passes (node checks such as serfHealth included)."""
    return all(check.get("Status") == "passing" for check in entry.get("Checks") or ())


def service_hostname(name: str) -> str:
    return f"{name}.{HOST_SUFFIX}"


def convert_labels(tags: Iterable[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for tag in tags:
        key, sep, rest = tag.partition("|")
        if not sep:
            log.warning("consul tag %r ignored: it is not of the form key|value", tag)
            continue
        labels[key] = rest.split("|", 1)[0]  # Istio keeps the first two parts only
    return labels


def convert_port(number: int, name: str) -> Port:
    name = name or "http"
    protocol = Protocol.parse(name)
    if protocol is Protocol.TCP and name.lower() != "tcp":
        log.warning("consul service port %d: unsupported protocol %r, using TCP", number, name)
    return Port(name=name, number=number, protocol=protocol)


def convert_service(name: str, instances: Iterable[ConsulInstance]) -> Service:
    """One model Service from all instances of a Consul service (ports merged by number)."""
    ports: dict[int, Port] = {}
    external = False
    for instance in instances:
        port = convert_port(instance.port, instance.meta.get(PROTOCOL_META, ""))
        known = ports.get(port.number)
        if known is not None and known.protocol != port.protocol:
            log.warning(
                "consul service %s has instances on port %d with protocols %s and %s; keeping %s",
                name, port.number, known.protocol.value, port.protocol.value, known.protocol.value,
            )  # fmt: skip
        else:
            ports.setdefault(port.number, port)
        external = external or bool(instance.meta.get(EXTERNAL_META))
    return Service(
        hostname=service_hostname(name),
        namespace=NAMESPACE,
        ports=tuple(ports[number] for number in sorted(ports)),
        address="0.0.0.0",
        resolution=Resolution.PASSTHROUGH if external else Resolution.CLIENT_SIDE_LB,
        mesh_external=external,
    )


def convert_endpoint(service: Service, instance: ConsulInstance) -> Endpoint:
    port = service.port(instance.port) or convert_port(
        instance.port, instance.meta.get(PROTOCOL_META, "")
    )
    return Endpoint(
        hostname=service.hostname,
        service_port=port,
        address=instance.address,
        port=instance.port,
        labels=convert_labels(instance.tags),
        namespace=NAMESPACE,
        workload_name=instance.service_id,
        locality=instance.datacenter,
    )


def convert_catalog(
    instances_by_service: Mapping[str, Iterable[ConsulInstance]],
) -> RegistrySnapshot:
    """The whole view: a service for each name with instances, endpoints for passing ones.
    (Consul keeps a name in its catalog after its last instance is gone: no instance, no
    service.)"""
    services: dict[str, Service] = {}
    endpoints: dict[tuple[str, int], tuple[Endpoint, ...]] = {}
    for name in sorted(instances_by_service):
        instances = sorted(instances_by_service[name], key=lambda i: (i.node, i.service_id))
        if not instances:
            continue
        service = convert_service(name, instances)
        services[service.hostname] = service
        for port in service.ports:
            endpoints[(service.hostname, port.number)] = tuple(
                convert_endpoint(service, i)
                for i in instances
                if i.passing and i.port == port.number
            )
    return RegistrySnapshot(services=services, endpoints=endpoints)
