"""Eureka applications to the service model: pure functions, as Istio's eureka adapter had.

The rules are Istio's (`pilot/pkg/serviceregistry/eureka/conversion.go`, 0.2-0.8):
- the host is the instance's `hostName` (not its VIP); instances of every application that
  share a hostName make one service, in namespace `default`, VIP 0.0.0.0, client-side LB;
- only instances whose status is UP become endpoints (Istio also dropped the service of a
  host with no UP instance; here it stays known with no endpoints, so callers get a 503
  rather than an unknown host while it is down);
- an instance's ports are `port` and `securePort`, each only when enabled, named by the
  number; a service is left out when no instance has an enabled port;
- the protocol comes from the metadata key `istio.protocol` (TCP when missing or unknown);
  two instances disagreeing on a port's protocol: the first wins, with a warning;
- labels are the metadata minus `istio.protocol` and `@class`; the endpoint's address is
  `ipAddr`.
Instances arrive as `EurekaInstance`s, built from py-eureka-client's model objects.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from pilot.model.service import Endpoint, Port, Protocol, Resolution, Service
from pilot.registry.snapshot import RegistrySnapshot

log = logging.getLogger(__name__)

NAMESPACE = "default"
PROTOCOL_METADATA = "istio.protocol"
STATUS_UP = "UP"
_NOT_LABELS = (PROTOCOL_METADATA, "@class")


@dataclasses.dataclass(frozen=True)
class EurekaInstance:
    app: str
    instance_id: str
    hostname: str
    ip_address: str
    status: str
    ports: tuple[int, ...]  # the enabled ones: port, then securePort
    metadata: Mapping[str, str]


def from_client(app: str, instance: Any) -> EurekaInstance:
    """From a `py_eureka_client.eureka_basic.Instance`."""
    ports = tuple(
        wrapper.port
        for wrapper in (instance.port, instance.securePort)
        if wrapper is not None and wrapper.enabled
    )
    return EurekaInstance(
        app=(app or instance.app or "").upper(),
        instance_id=instance.instanceId or "",
        hostname=instance.hostName or "",
        ip_address=instance.ipAddr or "",
        status=(instance.status or "").upper(),
        ports=ports,
        metadata={str(k): str(v) for k, v in (instance.metadata or {}).items()},
    )


def convert_protocol(metadata: Mapping[str, str]) -> Protocol:
    name = metadata.get(PROTOCOL_METADATA, "")
    protocol = Protocol.parse(name)
    if name and protocol is Protocol.TCP and name.lower() != "tcp":
        log.warning("eureka metadata %s=%r is not a protocol; using TCP", PROTOCOL_METADATA, name)
    return protocol


def convert_labels(metadata: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in metadata.items() if k not in _NOT_LABELS}


def convert_ports(instance: EurekaInstance) -> tuple[Port, ...]:
    protocol = convert_protocol(instance.metadata)
    return tuple(
        Port(name=str(number), number=number, protocol=protocol) for number in instance.ports
    )


def convert_applications(instances: Iterable[EurekaInstance]) -> RegistrySnapshot:
    known = sorted(
        (i for i in instances if i.hostname and i.ports), key=lambda i: (i.app, i.instance_id)
    )
    ports: dict[str, dict[int, Port]] = {}
    for instance in known:
        by_number = ports.setdefault(instance.hostname, {})
        for port in convert_ports(instance):
            first = by_number.setdefault(port.number, port)
            if first.protocol != port.protocol:
                log.warning(
                    "eureka %s:%d has conflicting protocols %s and %s; keeping %s",
                    instance.hostname, port.number, first.protocol.value, port.protocol.value,
                    first.protocol.value,
                )  # fmt: skip
    services = {
        host: Service(
            hostname=host,
            namespace=NAMESPACE,
            ports=tuple(by_number[n] for n in sorted(by_number)),
            address="0.0.0.0",
            resolution=Resolution.CLIENT_SIDE_LB,
        )
        for host, by_number in sorted(ports.items())
    }
    endpoints: dict[tuple[str, int], list[Endpoint]] = {
        (host, number): [] for host, by_number in ports.items() for number in by_number
    }
    for instance in (i for i in known if i.status == STATUS_UP):
        service = services[instance.hostname]
        for number in instance.ports:
            endpoints.setdefault((service.hostname, number), []).append(
                Endpoint(
                    hostname=service.hostname,
                    service_port=ports[service.hostname][number],
                    address=instance.ip_address,
                    port=number,
                    labels=convert_labels(instance.metadata),
                    namespace=NAMESPACE,
                    workload_name=instance.instance_id,
                )
            )
    return RegistrySnapshot(
        services=services, endpoints={key: tuple(eps) for key, eps in endpoints.items()}
    )


def apps_hashcode(statuses: Iterable[str]) -> str:
    """Eureka's reconcile hash: `STATUS_count_` per status, sorted by status (`DOWN_1_UP_3_`)."""
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return "".join(f"{status}_{counts[status]}_" for status in sorted(counts))
